package dev.moec.ir.interp;

import dev.moec.ir.Attrs;
import dev.moec.ir.DType;
import dev.moec.ir.Dim;
import dev.moec.ir.Graph;
import dev.moec.ir.Node;
import dev.moec.ir.Param;
import dev.moec.ir.Shape;
import dev.moec.ir.TensorType;
import dev.moec.ir.Value;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The reference interpreter: evaluates a graph node by node with each op's {@link Reference} semantics.
 * Symbols bind from the input shapes; every result is checked against its declared type.
 * Weights are read from the store once and kept widened to f32.
 */
public final class Interpreter {
    private final TensorStore store;
    private final Map<String, RefTensor> weights = new ConcurrentHashMap<>();

    public Interpreter(TensorStore store) {
        this.store = store;
    }

    /** Runs {@code graph} on named inputs; returns the outputs by name. */
    public Map<String, RefTensor> run(Graph graph, Map<String, RefTensor> inputs) {
        Map<String, Long> bindings = new HashMap<>();
        Map<Value, RefTensor> env = new HashMap<>();
        for (Value in : graph.inputs()) {
            RefTensor t = inputs.get(in.name());
            if (t == null) throw new IllegalArgumentException("graph @" + graph.name() + " needs input %" + in.name());
            bind(in, t, bindings);
            env.put(in, t);
        }
        for (Param p : graph.params()) env.put(p.value(), weight(p));
        for (Node n : graph.nodes()) {
            List<RefTensor> operands = new ArrayList<>(n.operands().size());
            for (Value v : n.operands()) operands.add(env.get(v));
            List<RefTensor> results = n.op().semantics().eval(operands, bindShapes(n.attrs(), bindings));
            for (int r = 0; r < results.size(); r++) {
                Value v = n.results().get(r);
                bind(v, results.get(r), bindings);
                env.put(v, results.get(r));
            }
        }
        Map<String, RefTensor> out = new LinkedHashMap<>();
        for (Value v : graph.outputs()) out.put(v.name(), env.get(v));
        return out;
    }

    private RefTensor weight(Param p) {
        return weights.computeIfAbsent(p.tensor(), name -> load(store, name, p.value().type()));
    }

    /** A stored tensor (a {@code *} name stacks its members along a new first axis) as a RefTensor of {@code type}. */
    public static RefTensor load(TensorStore store, String name, TensorType type) {
        Param p = new Param(new Value("w", type), name);
        int[] shape = java.util.Arrays.stream(type.shape().sizes()).mapToInt(Math::toIntExact).toArray();
        List<String> members = new ArrayList<>();
        if (p.stacked()) for (int e = 0; e < shape[0]; e++) members.add(p.member(e));
        else members.add(name);
        int total = Math.toIntExact(RefTensor.volume(shape)), member = total / members.size();
        if (type.dtype().isFloating()) {
            float[] all = new float[total];
            for (int e = 0; e < members.size(); e++) {
                float[] part = store.readF32(members.get(e));
                if (part.length != member) throw new IllegalArgumentException(members.get(e) + " has " + part.length + " elements, expected " + member);
                System.arraycopy(part, 0, all, e * member, member);
            }
            return RefTensor.of(type.dtype(), shape, all);
        }
        int[] all = new int[total];
        for (int e = 0; e < members.size(); e++) {
            int[] part = store.readInts(members.get(e));
            if (part.length != member) throw new IllegalArgumentException(members.get(e) + " has " + part.length + " elements, expected " + member);
            System.arraycopy(part, 0, all, e * member, member);
        }
        return RefTensor.ofInts(type.dtype(), shape, all);
    }

    /** Binds the symbols of v's declared type to t's sizes, and checks the fixed ones. */
    private static void bind(Value v, RefTensor t, Map<String, Long> bindings) {
        TensorType type = v.type();
        int[] actual = t.shape();
        if (t.dtype() != type.dtype()) throw new IllegalStateException("%" + v.name() + " declared " + type + " but holds " + t.dtype());
        if (actual.length != type.rank()) throw new IllegalStateException("%" + v.name() + " declared " + type + " but has shape " + java.util.Arrays.toString(actual));
        for (int j = 0; j < actual.length; j++) {
            Dim d = type.shape().dim(j);
            long size = actual[j];
            long want = switch (d) {
                case Dim.Fixed f -> f.size();
                case Dim.Sym s -> bindings.computeIfAbsent(s.name(), k -> size);
                case Dim.Scaled s -> s.factor() * bindings.computeIfAbsent(s.symbol().name(), k -> size / s.factor());
            };
            if (want != actual[j]) {
                throw new IllegalStateException("%" + v.name() + " declared " + type + " but has shape " + java.util.Arrays.toString(actual)
                        + " (bindings " + bindings + ")");
            }
        }
    }

    private static Attrs bindShapes(Attrs attrs, Map<String, Long> bindings) {
        if (attrs.values().values().stream().noneMatch(v -> v instanceof Shape)) return attrs;
        Map<String, Object> bound = new HashMap<>();
        attrs.values().forEach((k, v) -> bound.put(k, v instanceof Shape s ? s.bind(bindings) : v));
        return new Attrs(bound);
    }
}
