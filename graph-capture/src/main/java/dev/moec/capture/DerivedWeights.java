package dev.moec.capture;

import dev.moec.backend.KernelGraph;
import dev.moec.ir.DType;
import dev.moec.ir.TensorType;
import dev.moec.ir.interp.Interpreter;
import dev.moec.ir.interp.RefTensor;
import dev.moec.ir.interp.TensorStore;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Computes a kernel graph's derived weights (its {@link KernelGraph.Derivation}s) from the checkpoint's
 * tensors, with each op's reference semantics, and encodes them in their dtype: the weight transforms the
 * passes left in the graph (gate/up concatenation, quantization, casts, slices) cost nothing at run time.
 */
final class DerivedWeights {
    private final TensorStore store;
    private final Map<String, TensorType> types = new HashMap<>();
    private final Map<String, KernelGraph.Derivation> derivations = new HashMap<>();
    private final Map<String, RefTensor> computed = new HashMap<>();

    DerivedWeights(KernelGraph g, TensorStore store) {
        this.store = store;
        for (KernelGraph.Buffer b : g.buffers()) if (b.role() == KernelGraph.Role.WEIGHT) types.put(b.source(), b.type());
        for (KernelGraph.Derivation d : g.derived()) {
            derivations.put(d.name(), d);
            for (int i = 0; i < d.operands().size(); i++) types.putIfAbsent(d.operands().get(i), d.operandTypes().get(i));
        }
    }

    static boolean isDerived(String source) { return source.startsWith(KernelGraph.DERIVED); }

    /** The little-endian bytes of a derived weight. */
    byte[] bytes(String name) {
        RefTensor t = tensor(name);
        return encode(t, types.get(name).dtype());
    }

    private RefTensor tensor(String name) {
        RefTensor t = computed.get(name);
        if (t != null) return t;
        KernelGraph.Derivation d = derivations.get(name);
        if (d == null) {
            t = Interpreter.load(store, name, types.get(name));
        } else {
            List<RefTensor> operands = new ArrayList<>();
            for (String o : d.operands()) operands.add(tensor(o));
            t = d.op().semantics().eval(operands, d.attrs()).get(d.result());
        }
        computed.put(name, t);
        return t;
    }

    static byte[] encode(RefTensor t, DType dtype) {
        int n = t.size();
        ByteBuffer b = ByteBuffer.allocate((int) dtype.bytes(n)).order(ByteOrder.LITTLE_ENDIAN);
        switch (dtype) {
            case F32 -> { for (float v : t.f()) b.putFloat(v); }
            case BF16 -> { for (float v : t.f()) b.putShort((short) (Float.floatToRawIntBits(dev.moec.ir.interp.Reference.roundTo(DType.BF16, v)) >>> 16)); }
            case F16 -> { for (float v : t.f()) b.putShort(Float.floatToFloat16(v)); }
            case I32 -> { for (int v : t.i()) b.putInt(v); }
            case I8 -> { for (int v : t.i()) b.put((byte) v); }
            case I4 -> {
                // Two per byte, row-major, the lower-indexed element in the low nibble.
                byte[] out = b.array();
                for (int i = 0; i < n; i++) out[i / 2] |= (byte) ((t.i()[i] & 0xF) << (4 * (i % 2)));
            }
            default -> throw new IllegalArgumentException("cannot store a derived weight of dtype " + dtype);
        }
        return b.array();
    }
}
