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
        /**
         * The same memory as buffer {@code source} under another type (reshape, in-place update), or a
         * contiguous run of it from element {@code offset} on (a slice made a view, {@link #withSliceViews}).
         */
        ALIAS
    }

    /**
     * {@code layout}: "nd", or "nz" for a weight an Ascend kernel reads in FRACTAL_NZ ({@link Nz}).
     * {@code offset}: for an alias, the element of {@code source} where it begins (0 but for a slice's view).
     */
    public record Buffer(String name, TensorType type, Role role, String source, String layout, long offset) {
        public Buffer {
            if (offset < 0 || (offset != 0 && role != Role.ALIAS)) throw new IllegalArgumentException("buffer " + name + ": offset " + offset + " on a " + role);
        }

        public Buffer(String name, TensorType type, Role role, String source, String layout) { this(name, type, role, source, layout, 0); }

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
        List<Buffer> bound = buffers.stream().map(b -> new Buffer(b.name(), b.type().bind(bindings), b.role(), b.source(), b.layout(), b.offset())).toList();
        List<Launch> ls = launches.stream().map(l -> new Launch(l.kernel(), l.inputs(), l.outputs(), bindShapes(l.attrs(), bindings))).toList();
        return new KernelGraph(newName, bound, ls, outputs, derived);
    }

    /**
     * This graph with each slice that is one contiguous run of its source made a view: the slice's result
     * becomes an {@link Role#ALIAS} of the source from the run's first element, and its launch goes. A
     * slice is a run when every dimension before its axis is 1, as when a decode step of one token slices
     * the last axis of a joined matmul's result (fuse-linears' q, k and v). Only slices whose source is,
     * through its aliases, an activation or input become views: those are written once before they are
     * read, where a slice of state would see the state's later in-place updates. Sizes must be bound
     * where a slice is looked at; a slice with a symbolic dimension stays a launch.
     */
    public KernelGraph withSliceViews() {
        Map<String, Buffer> byName = new java.util.LinkedHashMap<>();
        for (Buffer b : buffers) byName.put(b.name(), b);
        List<Launch> kept = new java.util.ArrayList<>();
        for (Launch l : launches) {
            Long start = l.kernel() == Kernel.SLICE ? viewStart(byName, l) : null;
            if (start == null) {
                kept.add(l);
                continue;
            }
            Buffer src = byName.get(l.inputs().getFirst()), out = byName.get(l.outputs().getFirst());
            byName.put(out.name(), new Buffer(out.name(), out.type(), Role.ALIAS, src.name(), out.layout(), start));
        }
        if (kept.size() == launches.size()) return this;
        return new KernelGraph(name, List.copyOf(byName.values()), kept, outputs, derived);
    }

    /** The element of a slice launch's source where its result begins, if that result is a contiguous run of it; else null. */
    private static Long viewStart(Map<String, Buffer> byName, Launch slice) {
        Buffer src = byName.get(slice.inputs().getFirst()), out = byName.get(slice.outputs().getFirst());
        if (src == null || out == null || out.role() != Role.ACTIVATION) return null;
        Buffer root = src;
        while (root != null && root.role() == Role.ALIAS) root = byName.get(root.source());
        if (root == null || (root.role() != Role.ACTIVATION && root.role() != Role.INPUT)) return null;
        dev.moec.ir.Shape shape = src.type().shape();
        if (!shape.isStatic()) return null;
        long[] sizes = shape.sizes();
        int axis = (int) slice.attrs().i("axis");
        if (axis < 0) axis += sizes.length;
        long inner = 1;
        for (int d = 0; d < sizes.length; d++) {
            if (d < axis && sizes[d] != 1) return null;
            if (d > axis) inner *= sizes[d];
        }
        return slice.attrs().i("start") * inner;
    }

    private static Attrs bindShapes(Attrs a, Map<String, Long> bindings) {
        Map<String, Object> m = new java.util.HashMap<>();
        a.values().forEach((k, v) -> m.put(k, v instanceof dev.moec.ir.Shape s ? s.bind(bindings) : v));
        return new Attrs(m);
    }
}
