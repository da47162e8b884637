package dev.moec.executor.cpu;

import dev.moec.backend.Kernel;
import dev.moec.backend.KernelGraph;
import dev.moec.capture.MemoryPlan;
import dev.moec.ir.DType;
import dev.moec.ir.TensorType;
import dev.moec.ir.interp.TensorStore;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A kernel graph bound to concrete sizes and to memory: weights are mapped, state and aliases shared, and
 * the activations (and integer inputs) placed in one arena at the constant offsets of the graph's static
 * {@link MemoryPlan}: the plan colours buffers whose lifetimes never overlap into the same slot, so a
 * step's activations take the planned peak, not the sum of their sizes. The arena has a float region
 * (float activations of any width, held as f32) and an integer region (indices and int8 activations, held
 * as int32), each laid out by its own plan, because a Java array holds one kind. Every buffer's storage
 * and offset is fixed when the graph is bound, and {@link #run} replays the launch list over them. A
 * decode graph is bound once at load and replayed every step.
 */
public final class CpuGraph {
    private final String name;
    private final Map<String, Buf> buffers = new HashMap<>();
    private final Kernel[] kernels;
    private final Buf[][] ins, outs;
    private final dev.moec.ir.Attrs[] attrs;
    private final long activationBytes;
    private final float[] headNorms;                                             // where the last launch is one a greedy head runs and pays for: its weight's row norms
    private GreedyHead head;                                                     // that head, made at the first greedy step
    private CapturedReplay.Replay captured;                                      // null: replayed by the loop in run
    private CapturedReplay.Replay capturedBody;                                  // every launch but the head's, where there is a head
    private CpuKernels.Ahead[] ahead;                                          // [launches] at a streaming launch, what the workers read ahead of the next one; made at the first run

    /**
     * {@code state}: the persistent arrays by state name: float[] for f32 state, a MemorySegment for a
     * packed bf16 or int8 cache (see {@link #allocateState}), int[] for other integer state. {@code panels}: where the
     * weights the matmuls stream get their copy in panels ({@link WeightPanels}), shared by a model's
     * graphs so each weight is copied once.
     */
    public CpuGraph(KernelGraph g, Map<String, Long> bindings, TensorStore weights, Map<String, Object> state, WeightPanels panels) {
        this.name = g.name();
        java.util.Set<String> paneled = WeightPanels.streamed(g);
        KernelGraph bound = g.bind(g.name(), bindings);                  // every buffer's type at these sizes
        ActivationArena arena = new ActivationArena(bound);
        for (KernelGraph.Buffer b : bound.buffers()) {
            TensorType t = b.type();
            if (!t.shape().isStatic()) throw new IllegalArgumentException("graph " + name + ": buffer " + b.name() + " " + t + " has unbound dims");
            int[] shape = toInts(t.shape().sizes());
            int n = 1;
            for (int d : shape) n *= d;
            Buf buf = switch (b.role()) {
                case WEIGHT -> {
                    TensorType stored = weights.type(b.source());
                    if (!stored.equals(t)) throw new IllegalArgumentException("weight " + b.source() + " is " + stored + " but graph " + name + " expects " + t);
                    Buf w = new Buf(b.name(), t.dtype(), shape, null, null, weights.raw(b.source()));
                    yield paneled.contains(b.name()) ? w.withPanels(panels.of(b.source(), weights), panels.vnni()) : w;
                }
                case STATE -> {
                    Object s = state.get(b.name());
                    if (s instanceof float[] fs && fs.length == n && t.dtype() == DType.F32) yield new Buf(b.name(), t.dtype(), shape, fs, null, null);
                    if (s instanceof MemorySegment bs && bs.byteSize() == t.bytes() && isPacked(t.dtype())) yield Buf.packed(b.name(), t.dtype(), shape, bs);
                    if (s instanceof int[] is && is.length == n && t.dtype() != DType.F32) yield new Buf(b.name(), t.dtype(), shape, null, is, null);
                    throw new IllegalArgumentException("state " + b.name() + " " + t + " has no matching array of " + n + " elements");
                }
                case ALIAS -> {
                    Buf src = buffers.get(b.source());
                    if (src == null) throw new IllegalArgumentException("alias " + b.name() + " of unknown buffer " + b.source());
                    yield src.alias(b.name(), t.dtype(), shape, Math.toIntExact(b.offset()));
                }
                case INPUT, ACTIVATION -> t.dtype().isFloating()          // bf16 / f16 activations (a cast's) hold rounded floats
                        ? Buf.floatsAt(b.name(), t.dtype(), shape, arena.floats, arena.offset(b.name()))
                        : Buf.intsAt(b.name(), t.dtype(), shape, arena.ints, arena.offset(b.name()));
            };
            buffers.put(b.name(), buf);
        }
        this.activationBytes = arena.bytes();
        int count = g.launches().size();
        kernels = new Kernel[count];
        ins = new Buf[count][];
        outs = new Buf[count][];
        attrs = new dev.moec.ir.Attrs[count];
        for (int l = 0; l < count; l++) {
            KernelGraph.Launch launch = g.launches().get(l);
            kernels[l] = launch.kernel();
            ins[l] = launch.inputs().stream().map(buffers::get).toArray(Buf[]::new);
            outs[l] = launch.outputs().stream().map(buffers::get).toArray(Buf[]::new);
            attrs[l] = launch.attrs();
            List<DType> types = new ArrayList<>();
            for (Buf b : ins[l]) types.add(b.dtype);
            CpuKernels.checkSupported(kernels[l], types);
        }
        KernelGraph.Launch last = count > 0 ? g.launches().getLast() : null;
        this.headNorms = last != null && last.outputs().equals(List.of(dev.moec.ir.StepAbi.LOGITS))
                && GreedyHead.runs(last.kernel(), ins[count - 1], outs[count - 1]) && GreedyHead.pays(ins[count - 1])
                ? panels.rowNorms(g.buffer(last.inputs().get(1)).source(), weights)
                : null;
    }

    public String name() { return name; }

    /** Whether a state of this dtype is held packed in bytes (bf16 and int8 caches). */
    static boolean isPacked(DType d) { return d == DType.BF16 || d == DType.I8; }

    /**
     * The zeroed storage of a state buffer of type {@code t}: what {@code state} maps its name to. A packed
     * cache lives off the heap on huge pages where they are offered ({@link PageMemory}), as the weight
     * panels do, so the Vector API's loads from segments see one kind of segment and compile to single
     * instructions: with the cache on a byte[], a process that also read bf16 weights ran a bf16 cache's
     * loads through the Vector API's Java code, and its attention took twice as long as over an f32 cache.
     */
    public static Object allocateState(TensorType t) {
        int n = Math.toIntExact(t.shape().elements());
        if (t.dtype() == DType.F32) return new float[n];
        if (isPacked(t.dtype())) return PageMemory.allocate(t.bytes(), Arena.ofAuto());
        return new int[n];
    }

    /** Generates the straight-line replay of this graph's launches (see {@link CapturedReplay}); later runs use it. */
    public CpuGraph capture() {
        captured = CapturedReplay.generate(name, kernels);
        if (headNorms != null) capturedBody = CapturedReplay.generate(name + "_body", java.util.Arrays.copyOf(kernels, kernels.length - 1));
        return this;
    }

    public boolean isCaptured() { return captured != null; }

    /** Sees each launch after it ran, with its own time: how benchmarks profile a step. */
    public interface LaunchObserver {
        void launched(int index, Kernel kernel, Buf[] inputs, Buf[] outputs, long nanos);

        /** A greedy step's last launch, which its {@link GreedyHead} ran in its place (the bf16 dot tiles, then the candidates). */
        default void headLaunched(int index, Kernel kernel, Buf[] inputs, Buf[] outputs, long nanos) {
            launched(index, kernel, inputs, outputs, nanos);
        }
    }

    /** Copies integer inputs in, replays every launch. */
    public void run(CpuKernels k, Map<String, int[]> inputs) {
        run(k, inputs, null);
    }

    /**
     * As {@link #run(CpuKernels, Map)}, timing each launch for {@code observer} when it is not null (an
     * observed run goes through the loop, captured or not).
     */
    public void run(CpuKernels k, Map<String, int[]> inputs, LaunchObserver observer) {
        copyIn(inputs);
        launches(k, kernels.length, captured, observer);
    }

    /**
     * As {@link #run(CpuKernels, Map, LaunchObserver)}, then the argmax of each row {@code rows[i]} of
     * float buffer {@code buffer} seen as rows of {@code width} values (the first index of the largest).
     * Where the last launch writes the logits through a {@link GreedyHead} and the step has at least
     * {@link GreedyHead#MIN_ROWS} rows, the head finds the same argmaxes in its place (its time reported
     * to the observer as that launch's), and the buffer is not written.
     */
    public int[] greedy(CpuKernels k, Map<String, int[]> inputs, LaunchObserver observer, String buffer, int width, int[] rows) {
        copyIn(inputs);
        int last = kernels.length - 1;
        int[] ids = null;
        if (headNorms != null && buffer.equals(dev.moec.ir.StepAbi.LOGITS)) {
            if (head == null) head = GreedyHead.of(k, ins[last], headNorms);
            launches(k, last, capturedBody, observer);
            long t0 = System.nanoTime();
            ids = head.argmax(k, rows);
            if (ids == null) k.launch(kernels[last], ins[last], outs[last], attrs[last]);   // undecided: the launch as it is
            if (observer != null && ids != null) observer.headLaunched(last, kernels[last], ins[last], outs[last], System.nanoTime() - t0);
            else if (observer != null) observer.launched(last, kernels[last], ins[last], outs[last], System.nanoTime() - t0);
        } else {
            launches(k, kernels.length, captured, observer);
        }
        if (ids == null) {
            int[] all = new int[rows.length];
            k.parallel().forEach(rows.length, 1, r -> all[r] = argmax(buffer, rows[r], width));
            ids = all;
        }
        return ids;
    }

    private void copyIn(Map<String, int[]> inputs) {
        inputs.forEach((n, data) -> {
            Buf b = buffers.get(n);
            if (b == null || b.i == null || b.elements() != data.length) {
                throw new IllegalArgumentException("graph " + name + ": input " + n + " expects " + (b == null ? "nothing" : b.elements() + " ints") + ", got " + data.length);
            }
            System.arraycopy(data, 0, b.i, b.off, data.length);
        });
    }

    /**
     * Launches [0, count): by {@code replay} (the captured code of exactly those launches) where there is
     * one and no observer, else from the loop, each timed for {@code observer} when it is not null.
     */
    private void launches(CpuKernels k, int count, CapturedReplay.Replay replay, LaunchObserver observer) {
        if (ahead == null) ahead = readAheads(k);
        if (observer == null && replay != null) {
            replay.run(k, ins, outs, attrs, ahead);
            return;
        }
        if (observer == null) {
            for (int l = 0; l < count; l++) {
                if (CapturedReplay.streams(kernels[l])) k.readAhead(ahead[l]);
                k.launch(kernels[l], ins[l], outs[l], attrs[l]);
            }
            return;
        }
        for (int l = 0; l < count; l++) {
            if (CapturedReplay.streams(kernels[l])) k.readAhead(ahead[l]);
            long t0 = System.nanoTime();
            k.launch(kernels[l], ins[l], outs[l], attrs[l]);
            observer.launched(l, kernels[l], ins[l], outs[l], System.nanoTime() - t0);
        }
    }

    /**
     * For each launch that streams panels, what the workers read while it and the launches after it run:
     * the next streaming launch's first bytes ({@link CpuKernels#readAheadOf}), and at the last one the
     * first one's, read between two steps. A grouped matmul's are made when posted, from its counts, where
     * no launch between the two writes them; else the workers read nothing there.
     */
    private CpuKernels.Ahead[] readAheads(CpuKernels k) {
        CpuKernels.Ahead[] out = new CpuKernels.Ahead[kernels.length];
        int first = -1, previous = -1;
        for (int l = 0; l < kernels.length; l++) {
            if (!CpuKernels.streamsPanels(kernels[l], ins[l])) continue;
            if (previous >= 0) out[previous] = ahead(k, previous, l);
            if (first < 0) first = l;
            previous = l;
        }
        // Across the step's end only fixed weights: a grouped matmul's counts are written anew in the next step.
        if (first >= 0 && first != previous && !CpuKernels.isGrouped(kernels[first])) out[previous] = ahead(k, previous, first);
        return out;
    }

    /** What the workers read, posted at launch {@code at}, ahead of streaming launch {@code next}. */
    private CpuKernels.Ahead ahead(CpuKernels k, int at, int next) {
        if (!CpuKernels.isGrouped(kernels[next])) {
            Parallel.ReadAhead fixed = k.readAheadOf(kernels[next], ins[next]);
            return fixed == null ? null : new CpuKernels.Ahead(kernels[next], ins[next], fixed);
        }
        Buf counts = ins[next][ins[next].length - 1];
        return writtenBetween(counts, at, next) ? null : new CpuKernels.Ahead(kernels[next], ins[next], null);
    }

    /** Whether a launch in [from, to) writes buffer {@code b}. */
    private boolean writtenBetween(Buf b, int from, int to) {
        for (int l = from; l < to; l++) for (Buf o : outs[l]) if (o == b) return true;
        return false;
    }

    /** Row {@code row} of a float buffer seen as rows of {@code width} values: a copy. */
    public float[] row(String buffer, int row, int width) {
        Buf b = buffers.get(buffer);
        int from = b.off + row * width;
        return java.util.Arrays.copyOfRange(b.f, from, from + width);
    }

    /** The argmax of one row of a float buffer, read in place ({@link Simd#argmax}: the first index of the largest). */
    public int argmax(String buffer, int row, int width) {
        Buf b = buffers.get(buffer);
        return Simd.argmax(b.f, b.off + row * width, width);
    }

    /** Bytes the activations and inputs take: the arena, as this executor stores them (4 bytes an element). */
    public long activationBytes() { return activationBytes; }

    /**
     * The arena of a bound graph: a float region and an integer region, each laid out by a memory plan of
     * the activations and inputs of its kind at 4 bytes an element (slots rounded to 64 bytes), and each
     * buffer's constant element offset in its region.
     */
    private static final class ActivationArena {
        private static final long SLOT_ALIGN = 64;
        private final Map<String, Long> offsets = new HashMap<>();
        final float[] floats;
        final int[] ints;

        ActivationArena(KernelGraph bound) {
            MemoryPlan f = MemoryPlan.of(bound, b -> b.type().dtype().isFloating(), ActivationArena::bytes);
            MemoryPlan i = MemoryPlan.of(bound, b -> !b.type().dtype().isFloating(), ActivationArena::bytes);
            offsets.putAll(f.offsets());
            offsets.putAll(i.offsets());
            floats = new float[Math.toIntExact(f.peakBytes() / 4)];
            ints = new int[Math.toIntExact(i.peakBytes() / 4)];
        }

        private static long bytes(KernelGraph.Buffer b) {
            long bytes = 4 * b.type().shape().elements();
            return (bytes + SLOT_ALIGN - 1) / SLOT_ALIGN * SLOT_ALIGN;
        }

        int offset(String buffer) { return Math.toIntExact(offsets.get(buffer) / 4); }

        long bytes() { return 4L * (floats.length + ints.length); }
    }

    public int launchCount() { return kernels.length; }

    private static int[] toInts(long[] sizes) {
        int[] out = new int[sizes.length];
        for (int j = 0; j < sizes.length; j++) out[j] = Math.toIntExact(sizes[j]);
        return out;
    }
}
