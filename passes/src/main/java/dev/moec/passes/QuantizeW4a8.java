package dev.moec.passes;

import dev.moec.ir.Attrs;
import dev.moec.ir.Graph;
import dev.moec.ir.Node;
import dev.moec.ir.Op;
import dev.moec.ir.Value;

import java.util.ArrayList;
import java.util.List;

/**
 * {@code quantize-w4a8}: routed experts with int4 per-channel weights and int8 per-token activations (the
 * W4A8_DYNAMIC scheme of msModelSlim's MoE releases). Only the experts: run {@code quantize-w8a8} after it
 * for the dense Linears.
 * <pre>  moe_experts(x, w, e, Wg, Wu, Wd)  ->  moe_experts_quant(x, w, e, weight_quant(Wg){4}, ..., weight_quant(Wd){4})</pre>
 */
public final class QuantizeW4a8 implements Pass {
    @Override public String name() { return "quantize-w4a8"; }

    @Override
    public Graph run(Graph g) {
        Rewrite rw = new Rewrite(g);
        for (Node n : g.nodes()) {
            if (n.op() == Op.MOE_EXPERTS) quantizeExperts(rw, n, 4);
            else rw.keep(n);
        }
        return rw.finish();
    }

    /** moe_experts -> moe_experts_quant with weights quantized to {@code bits} per (expert, output channel). */
    static void quantizeExperts(Rewrite rw, Node n, int bits) {
        List<Value> operands = new ArrayList<>(n.operands().subList(0, 3));
        for (Value w : n.operands().subList(3, 6)) {
            operands.addAll(rw.emit(Op.WEIGHT_QUANT, List.of(w.name() + ".q" + bits, w.name() + ".s" + bits), Attrs.of("bits", (long) bits), w));
        }
        rw.release(n.result());
        rw.replace(n.result(), rw.emit(Op.MOE_EXPERTS_QUANT, n.result().name(), Attrs.NONE, operands.toArray(Value[]::new)));
        rw.drop(n);
    }
}
