package dev.moec.backend;

import dev.moec.ir.Attrs;
import dev.moec.ir.TensorType;

import java.util.List;
import java.util.Map;

/**
 * What a device runs: named buffers and an ordered list of kernel launches over them. Buffer types may
 * still hold symbols (the prefill graph's token count T); capture binds them per batch size.
 */
public record KernelGraph(String name, List<Buffer> buffers, List<Launch> launches, List<String> outputs, List<Derivation> derived) {
    public KernelGraph {
        buffers = List.copyOf(buffers);
        launches = List.copyOf(launches);
        outputs = List.copyOf(outputs);
        derived = List.copyOf(derived);
    }

    /**
     * A weight computed from other weights at capture (a slice, cast, concatenation or quantization of
     * parameters): result {@code result} of {@code op} on the weights named {@code operands}. Its name is
     * the {@code source} of the WEIGHT buffer that reads it.
     */
    public record Derivation(String name, dev.moec.ir.Op op, List<String> operands, List<TensorType> operandTypes, Attrs attrs, int result) {
        public Derivation {
            operands = List.copyOf(operands);
            operandTypes = List.copyOf(operandTypes);
        }
    }

    /** The prefix of derived weight names; checkpoint tensor names never start with it. */
    public static final String DERIVED = "~";

    public enum Role {
        /** Fed by the caller each step (tokens, positions, slots, logit rows). */
        INPUT,
        /** Persistent across steps and updated in place (the KV cache). */
        STATE,
        /** A weight; {@code source} is its tensor name in the artifact. */
        WEIGHT,
        /** Produced by a launch. */
        ACTIVATION,
        /** The same memory as buffer {@code source} under another type (reshape, in-place update). */
        ALIAS
    }

    /** {@code layout}: "nd", or "nz" for a weight an Ascend kernel reads in FRACTAL_NZ ({@link Nz}). */
    public record Buffer(String name, TensorType type, Role role, String source, String layout) {
        public Buffer(String name, TensorType type, Role role, String source) { this(name, type, role, source, "nd"); }
    }

    public record Launch(Kernel kernel, List<String> inputs, List<String> outputs, Attrs attrs) {
        public Launch {
            inputs = List.copyOf(inputs);
            outputs = List.copyOf(outputs);
        }
    }

    public Buffer buffer(String name) {
        return buffers.stream().filter(b -> b.name().equals(name)).findFirst()
                .orElseThrow(() -> new IllegalArgumentException("kernel graph " + this.name + " has no buffer " + name));
    }

    /** A copy with symbols bound (e.g. {@code T=4, R=4} for the decode graph of batch size 4). */
    public KernelGraph bind(String newName, Map<String, Long> bindings) {
        List<Buffer> bound = buffers.stream().map(b -> new Buffer(b.name(), b.type().bind(bindings), b.role(), b.source(), b.layout())).toList();
        List<Launch> ls = launches.stream().map(l -> new Launch(l.kernel(), l.inputs(), l.outputs(), bindShapes(l.attrs(), bindings))).toList();
        return new KernelGraph(newName, bound, ls, outputs, derived);
    }

    private static Attrs bindShapes(Attrs a, Map<String, Long> bindings) {
        Map<String, Object> m = new java.util.HashMap<>();
        a.values().forEach((k, v) -> m.put(k, v instanceof dev.moec.ir.Shape s ? s.bind(bindings) : v));
        return new Attrs(m);
    }
}
