package dev.moec.executor.cpu;

import dev.moec.backend.Kernel;
import dev.moec.ir.Attrs;
import dev.moec.ir.DType;
import dev.moec.ir.PagedCache;

import dev.moec.ir.interp.RefTensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.IntConsumer;
import java.util.function.LongBinaryOperator;

/**
 * The CPU kernel of every {@link Kernel}. Activations are f32; weights are read in place in their stored
 * dtype (bf16, f16 or f32) and widened row by row. Every kernel overwrites its whole output, because
 * captured decode graphs reuse their buffers from step to step.
 */
public final class CpuKernels implements AutoCloseable {
    private static final Set<DType> WEIGHT_DTYPES = EnumSet.of(DType.BF16, DType.F16, DType.F32);
    private static final ValueLayout.OfShort SHORT_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    /**
     * Output channels a task of a matmul that reads its weights in place takes (one to fifteen rows):
     * 128 rows stream as one run from memory; blocks of 32 left the prefetcher restarting every 32 KB, and
     * an lm_head over one row ran 10 % slower, an int8 one 15 % (JMH, 151,936 rows).
     */
    private static final int STREAM_BLOCK = 128;
    /**
     * Output channels a float panel holds (see {@link #panelRows}), and a stored bf16 one: 32 with AVX-512,
     * two vectors; 32 turned rows of 1024 floats, 128 KB, stay in L2. A stored int8 panel holds twice as
     * many ({@link Simd#I8_PANEL_WIDTH}) and widens into two float panels.
     */
    private static final int PANEL_BLOCK = Simd.PANEL_WIDTH;
    /**
     * Output channels a task of a prompt's matmul (dense, or one expert's group) takes: four panels,
     * against which each tile of six activation rows runs while it is in L1. With one panel a task, a
     * 512-row prompt's activations (2 MB, past L2) were read from L3 once per 32 channels.
     */
    private static final int PROMPT_BLOCK = 4 * PANEL_BLOCK;

    /**
     * Channels a task of a prompt's dense matmul over n outputs takes: {@link #PROMPT_BLOCK}, or fewer
     * panels where that would leave fewer than four tasks a thread (a 512-wide k_proj made four tasks of
     * 1.4 ms for two threads, and one slow task left the other thread waiting).
     */
    private int promptBlock(int n, DType type) {
        int width = Simd.panelWidth(type), panels = Math.max(1, Math.min(PROMPT_BLOCK, n / (4 * par.threads())) / width);
        return panels * width;
    }
    /**
     * Channels a task of a decode step's matmul over n outputs, k wide, takes: {@link #streamChannels}, or
     * fewer panels where that would leave a thread without a task (the 64-wide MoE router: one task of 128 KB
     * for one thread, 15 µs a layer, where two threads share it).
     */
    int streamBlock(int n, int k, DType type) {
        int width = Simd.panelWidth(type), panels = Math.max(1, Math.min(streamChannels(k, type), Math.ceilDiv(n, par.threads())) / width);
        return panels * width;
    }

    /**
     * Channels a task of a decode step's matmul from stored panels takes for a weight k wide: as many as
     * {@link #STREAM_BLOCK} channels of a 1024-wide weight hold, in whole panels, so a task streams the
     * same bytes whatever the shape (a down_proj, k = 256, took 32 KB tasks, 64 a launch at batch 1).
     */
    private static int streamChannels(int k, DType type) {
        int width = Simd.panelWidth(type);
        return Math.max(1, STREAM_BLOCK * 1024 / k / width) * width;
    }

    /**
     * A matmul's tasks over the threads: a decode step's, which stream their weights in task order, each
     * thread over its own run of them ({@link Parallel#forEachInRuns}); a prompt's guided ({@link Parallel#forEach}).
     */
    private void forEachTask(int tasks, boolean streamed, IntConsumer task) {
        if (streamed) par.forEachInRuns(tasks, 1, task);
        else par.forEach(tasks, 1, task);
    }

    /**
     * A decode step's matmul over n outputs, k wide, of {@code type} panels, as {@link #matmul} and
     * {@link #quantMatmul} cut it: {@code body} for each task's channels [o0, o1), {@link #streamBlock}
     * of them, over the threads in runs.
     */
    void forEachStreamedBlock(int n, int k, DType type, BlockBody body) { forEachBlock(n, streamBlock(n, k, type), true, body); }

    /** {@code body} for each block of {@code block} of n output channels, [o0, o1), over the threads, in runs where {@code streamed} ({@link #forEachTask}). */
    private void forEachBlock(int n, int block, boolean streamed, BlockBody body) {
        forEachTask(Math.ceilDiv(n, block), streamed, b -> body.run(b * block, Math.min(n, (b + 1) * block)));
    }

    /**
     * Bytes of its own run of a streaming launch's panels each worker reads ahead of the launch, while
     * it waits (see {@link Parallel.ReadAhead}); {@code -Dmoec.readAhead=0} turns reading ahead off. With
     * {@link #READ_AHEAD_CALLERS}, the first worker reads a megabyte, its L2.
     */
    static final long READ_AHEAD_BYTES = Long.getLong("moec.readAhead", 768 * 1024);
    /**
     * Bytes of the calling thread's run the first worker reads after its own: the calling thread runs the
     * small kernels between two matmuls and cannot read ahead itself; it finds these lines in the other
     * core's cache. docs/performance-log.md, fourteenth session.
     */
    static final long READ_AHEAD_CALLERS = Long.getLong("moec.readAheadCallers", 256 * 1024);

    /** Whether {@code kernel} is a grouped matmul, whose tasks follow the step's routing (its counts). */
    static boolean isGrouped(Kernel kernel) { return kernel == Kernel.GROUPED_MATMUL || kernel == Kernel.GROUPED_QUANT_MATMUL; }

    /** Whether a launch of {@code kernel} over {@code in} is a matmul of a decode step that streams panels. */
    static boolean streamsPanels(Kernel kernel, Buf[] in) {
        return switch (kernel) {
            case MATMUL, GROUPED_MATMUL -> in[1].panels != null && in[0].elements() / in[1].dim(-1) < PANEL_ROWS;
            case QUANT_MATMUL -> in[2].panels != null && in[0].elements() / in[2].dim(-1) < PANEL_ROWS;
            case GROUPED_QUANT_MATMUL -> in[2].panels != null && in[0].dim(0) < PANEL_ROWS;
            default -> false;
        };
    }

    /**
     * What the workers read ahead of a decode launch of {@code kernel} over {@code in} that streams panels
     * (null for any other): the first {@link #READ_AHEAD_BYTES} of the panels each worker will stream
     * first, its run of tasks cut as {@link #forEachStreamedBlock} and {@link #forEachGroupBlock} cut them
     * and {@link Parallel#forEachInRuns} hands them out, then, for the first worker, the first
     * {@link #READ_AHEAD_CALLERS} of the calling thread's run. A grouped matmul's tasks follow the step's
     * routing, so its read-ahead is made once its counts are written, from them.
     */
    Parallel.ReadAhead readAheadOf(Kernel kernel, Buf[] in) {
        if (READ_AHEAD_BYTES <= 0 || par.threads() < 2 || !streamsPanels(kernel, in)) return null;
        boolean grouped = isGrouped(kernel);
        boolean quant = kernel == Kernel.QUANT_MATMUL || kernel == Kernel.GROUPED_QUANT_MATMUL;
        Buf w = quant ? in[2] : in[1];
        DType type = quant ? DType.I8 : DType.BF16;
        int n = w.dim(-2), k = w.dim(-1), width = Simd.panelWidth(type);
        long panelBytes = w.vnni ? Vnni.panelBytes(k) : type.bytes((long) k * width);
        int block = grouped ? streamChannels(k, type) : streamBlock(n, k, type), blocks = Math.ceilDiv(n, block);
        Groups gs = grouped ? groups(in[0], w, in[quant ? 4 : 2]) : null;
        int tasks = grouped ? gs.size() * blocks : blocks;
        LongBinaryOperator bytes = (task, end) -> {                  // the first byte of a task's panels, or the end of them
            int matrix = grouped ? gs.expert()[(int) task / blocks] : 0, o0 = (int) (task % blocks) * block;
            return end == 0 ? panelOf(matrix, n, o0, type) * panelBytes
                    : (panelOf(matrix, n, 0, type) + Math.ceilDiv(Math.min(n, o0 + block), width)) * panelBytes;
        };
        int ranges = Math.min(par.threads(), tasks);
        long[][] out = new long[par.threads() - 1][];
        for (int t = 1; t <= out.length; t++) {
            out[t - 1] = t >= ranges ? new long[0] : runBytes(bytes, (int) ((long) tasks * t / ranges), (int) ((long) tasks * (t + 1) / ranges), READ_AHEAD_BYTES);
            if (t == 1 && READ_AHEAD_CALLERS > 0 && ranges > 1) {
                long[] own = out[0], other = runBytes(bytes, 0, tasks / ranges, READ_AHEAD_CALLERS);
                out[0] = Arrays.copyOf(own, own.length + other.length);
                System.arraycopy(other, 0, out[0], own.length, other.length);
            }
        }
        return new Parallel.ReadAhead(w.panels, out);
    }

    /** The byte ranges of tasks [first, last) in order, touching ones joined, up to {@code cap} bytes in all: {from, to, from, to, ...}. */
    private static long[] runBytes(LongBinaryOperator bytes, int first, int last, long cap) {
        long[] out = new long[8];
        int size = 0;
        long left = cap;
        for (int task = first; task < last && left > 0; task++) {
            long a = bytes.applyAsLong(task, 0), b = Math.min(bytes.applyAsLong(task, 1), a + left);
            left -= b - a;
            if (size > 0 && out[size - 1] == a) {
                out[size - 1] = b;
                continue;
            }
            if (size == out.length) out = Arrays.copyOf(out, 2 * size);
            out[size++] = a;
            out[size++] = b;
        }
        return Arrays.copyOf(out, size);
    }

    /** A task of {@link #forEachStreamedBlock}: output channels [o0, o1). */
    interface BlockBody { void run(int o0, int o1); }

    /** The kernels' threads. */
    Parallel parallel() { return par; }

    /**
     * What the workers read ahead of a streaming launch, posted before an earlier one: made once where the
     * weights it streams are fixed ({@code fixed}), else at each post from the launch's buffers (a grouped
     * matmul's experts, from its counts).
     */
    record Ahead(Kernel kernel, Buf[] in, Parallel.ReadAhead fixed) {}

    /** Posts {@code a} to the workers ({@link Parallel#readAhead}; null: nothing to read): the captured replay's call before each matmul. */
    void readAhead(Ahead a) {
        par.readAhead(a == null ? null : a.fixed() != null ? a.fixed() : readAheadOf(a.kernel(), a.in()));
    }

    /**
     * Activation rows the int4 row loop (a decode step's experts under W4A8) runs over at a time against a
     * block of weight rows read in place. Four f32 rows of a 1024-wide model (16 KB) stay in L1 beside
     * the weights; eight (32 KB, the whole L1) made every activation load go to L2, 20 % slower (JMH).
     */
    private static final int ROW_TILE = 4;

    private final Parallel par;

    public CpuKernels(Parallel par) {
        this.par = par;
    }

    /** Stops the worker threads. */
    @Override public void close() { par.close(); }

    /**
     * Refuses a launch whose weight dtypes have no CPU kernel, at compile time for {@code --target cpu} and
     * again when a graph is bound; the message names the kernel and the dtype pair, so a model never fails
     * in the middle of a step.
     */
    public static void checkSupported(Kernel k, List<DType> operandTypes) {
        List<Integer> weightOperands = switch (k) {
            case EMBEDDING -> List.of(0);
            case RMS_NORM, MATMUL, GROUPED_MATMUL -> List.of(1);
            case ADD_RMS_NORM, ADD_RMS_NORM_DYNAMIC_QUANT -> List.of(2);
            case MOE_EXPERTS -> List.of(3, 4, 5);
            case FUSED_INFER_ATTENTION_MLA, MLA_ATTENTION, SPARSE_FLASH_ATTENTION, MLA_ATTENTION_SPARSE -> List.of(3);
            case HEAD_MATMUL, CAUSAL_CONV1D -> List.of(1);
            case LAYER_NORM -> List.of(1, 2);
            case WEIGHT_QUANT -> List.of(0);
            default -> List.of();
        };
        for (int w : weightOperands) {
            if (!WEIGHT_DTYPES.contains(operandTypes.get(w))) refuse(k, operandTypes, "weights must be one of " + WEIGHT_DTYPES);
        }
        if ((k == Kernel.QUANT_MATMUL || k == Kernel.QUANT_MATMUL_STATIC) && operandTypes.get(k == Kernel.QUANT_MATMUL ? 2 : 1) != DType.I8) {
            refuse(k, operandTypes, "the weight must be i8");
        }
        if (k == Kernel.GROUPED_QUANT_MATMUL && operandTypes.get(2) != DType.I8 && operandTypes.get(2) != DType.I4) refuse(k, operandTypes, "the weight must be i8 or i4");
        if (k == Kernel.MOE_EXPERTS_QUANT) {
            for (int w : List.of(3, 5, 7)) {
                if (operandTypes.get(w) != DType.I8 && operandTypes.get(w) != DType.I4) refuse(k, operandTypes, "the expert weights must be i8 or i4");
            }
        }
    }

    /** {@link #checkSupported} for every launch of a kernel graph: what {@code moec compile --target cpu} checks before writing. */
    public static void checkSupported(dev.moec.backend.KernelGraph g) {
        for (dev.moec.backend.KernelGraph.Launch l : g.launches()) {
            checkSupported(l.kernel(), l.inputs().stream().map(b -> g.buffer(b).type().dtype()).toList());
        }
    }

    private static void refuse(Kernel k, List<DType> types, String why) {
        throw new IllegalArgumentException("kernel " + k.name().toLowerCase() + " has no CPU implementation for operand dtypes " + types + " (" + why + ")");
    }

    /** Per-channel scales (or biases) as floats: a weight's widened once and kept ({@link Buf#weightFloats}). */
    private static float[] scales(Buf ws) { return ws.isWeight() ? ws.weightFloats() : ws.floats(); }

    /** Weights widened once for the reference-backed kernels (weights never change). */
    private final Map<Buf, RefTensor> weightCache = java.util.Collections.synchronizedMap(new IdentityHashMap<>());

    public void launch(Kernel k, Buf[] in, Buf[] out, Attrs a) {
        boolean binary = k == Kernel.ADD || k == Kernel.MUL || k == Kernel.SUB || k == Kernel.DIV;
        boolean unary = k == Kernel.SIGMOID || k == Kernel.SOFTPLUS || k == Kernel.EXP || k == Kernel.NEG || k == Kernel.RELU || k == Kernel.SCALE
                || k == Kernel.SLICE || k == Kernel.REPEAT || k == Kernel.HADAMARD || k == Kernel.TAKE_ALONG || k == Kernel.CAST || k == Kernel.GROUP_LIMIT;
        if ((binary && (in[0].isWeight() || in[1].isWeight() || !Arrays.equals(in[0].shape, in[1].shape)))
                || (unary && in[0].isWeight()) || (k == Kernel.CONCAT && (in[0].isWeight() || in[1].isWeight()))) {
            reference(k, in, out, a);                       // broadcasting elementwise ops, and weight operands, go this way too
            return;
        }
        switch (k) {
            case EMBEDDING -> embedding(in[0], in[1], out[0]);
            case RMS_NORM -> rmsNorm(in[0], in[1], out[0], (float) a.f("eps"), offset(a));
            case MATMUL -> matmul(in[0], in[1], out[0]);
            case ROTARY_EMBEDDING -> rope(in[0], in[1], out[0], a);
            case KV_CACHE_WRITE -> kvWrite(in[0], in[1], in[2], in[3], in[4]);
            case ATTENTION -> attention(in[0], in[1], in[2], in[3], in[4], in[5], out[0], (float) a.f("scale"));
            case SOFTMAX -> softmax(in[0], out[0]);
            case TOPK -> topk(in[0], out[0], out[1], (int) a.i("k"));
            case RENORM -> renorm(in[0], out[0]);
            case MOE_EXPERTS -> moeExperts(in[0], in[1], in[2], in[3], in[4], in[5], out[0]);
            case SILU -> silu(in[0], out[0]);
            case MUL -> mul(in[0], in[1], out[0]);
            case ADD -> add(in[0], in[1], out[0]);
            case SUB -> binary(in[0], in[1], out[0], (p, q) -> p - q);
            case DIV -> binary(in[0], in[1], out[0], (p, q) -> p / q);
            case SIGMOID -> unary(in[0], out[0], v -> (float) dev.moec.ir.interp.Reference.sigmoidOf(v));
            case SOFTPLUS -> unary(in[0], out[0], v -> (float) dev.moec.ir.interp.Reference.softplusOf(v));
            case EXP -> unary(in[0], out[0], v -> (float) Math.exp(v));
            case NEG -> unary(in[0], out[0], v -> -v);
            case RELU -> unary(in[0], out[0], v -> Math.max(v, 0f));
            case SCALE -> {
                double f = a.f("factor");
                unary(in[0], out[0], v -> (float) (v * f));
            }
            case L2_NORM -> l2Norm(in[0], out[0], a.f("eps"));
            case SLICE -> slice(in[0], out[0], (int) a.i("axis"), (int) a.i("start"), (int) a.i("end"));
            case CONCAT -> concat(in[0], in[1], out[0], (int) a.i("axis"));
            case REPEAT -> repeat(in[0], out[0], (int) a.i("axis"), (int) a.i("times"));
            case TAKE_ALONG -> takeAlong(in[0], in[1], out[0]);
            case HADAMARD -> hadamard(in[0], out[0], a.f("scale"));
            case MOE_GATING_TOPK -> gatingTopk(in[0], in[1], out[0], out[1], a);
            case GROUP_LIMIT -> groupLimit(in[0], out[0], (int) a.i("groups"), (int) a.i("keep"), a.s("select"));
            case HEAD_MATMUL -> headMatmul(in[0], in[1], out[0]);
            case WEIGHT_QUANT -> weightQuant(in[0], out[0], out[1], (int) a.i("bits"));
            case MOE_EXPERTS_QUANT -> moeExpertsQuant(in, out[0]);
            case CAST -> {
                DType to = DType.parse(a.s("dtype"));
                unary(in[0], out[0], v -> dev.moec.ir.interp.Reference.roundTo(to, v));
            }
            case INDEXER_TOPK -> indexerTopk(in[0], in[1], in[2], in[3], in[4], in[5], out[0], (int) a.i("topk"), a.f("scale"));
            case STATIC_QUANT -> staticQuant(in[0], in[1], in[2], out[0]);
            case QUANT_MATMUL_STATIC -> quantMatmulStatic(in[0], in[1], in[2], in[3], out[0]);
            case CAUSAL_CONV1D -> causalConv1d(in[0], in[1], in[2], in[3], in[4], out[0], out[1]);
            case GATED_DELTA_RULE -> gatedDeltaRule(in[0], in[1], in[2], in[3], in[4], in[5], in[6], in[7], out[0], out[1]);
            case LAYER_NORM -> layerNorm(in[0], in[1], in[2], out[0], a.f("eps"));
            case FUSED_INFER_ATTENTION -> attention(in[0], in[1], in[2], in[3], in[4], in[5], out[0], (float) a.f("scale"));
            case FUSED_INFER_ATTENTION_MLA, MLA_ATTENTION -> mlaAttention(in[0], in[1], in[2], in[3], in[4], in[5], in[6], null, out[0], a);
            case SPARSE_FLASH_ATTENTION, MLA_ATTENTION_SPARSE -> mlaAttention(in[0], in[1], in[2], in[3], in[4], in[5], in[6], in[7], out[0], a);
            case ADD_RMS_NORM -> addRmsNorm(in[0], in[1], in[2], out[1], out[0], null, null, (float) a.f("eps"), offset(a));
            case ROPE_COS_SIN -> ropeCosSin(in[0], out[0], out[1], a);
            case APPLY_ROTARY -> applyRotary(in[0], in[1], in[2], out[0], (int) a.i("rotary_dim"), a.has("interleaved") && a.b("interleaved"));
            case MOE_GATING_TOPK_SOFTMAX -> {
                softmaxInto(in[0], out[0], out[1], (int) a.i("k"));
                if (a.b("renorm")) renorm(out[0], out[0]);
            }
            case MOE_DISPATCH -> moeDispatch(in[0], in[1], out[0], out[1], out[2]);
            case MOE_DISPATCH_QUANT -> moeDispatchQuant(in[0], in[1], out[0], out[1], out[2], out[3]);
            case GROUPED_MATMUL -> groupedMatmul(in[0], in[1], in[2], out[0]);
            case SWIGLU -> swiglu(in[0], out[0]);
            case SWIGLU_QUANT -> swigluQuant(in[0], out[0], out[1]);
            case MOE_COMBINE -> moeCombine(in[0], in[1], in[2], out[0]);
            case DYNAMIC_QUANT -> dynamicQuant(in[0], out[0], out[1]);
            case QUANT_MATMUL -> quantMatmul(in[0], in[1], in[2], in[3], out[0]);
            case ADD_RMS_NORM_DYNAMIC_QUANT -> addRmsNorm(in[0], in[1], in[2], out[1], null, out[0], out[2], (float) a.f("eps"), offset(a));
            case GROUPED_QUANT_MATMUL -> groupedQuantMatmul(in[0], in[1], in[2], in[3], in[4], out[0]);
            case KV_CACHE_WRITE_INT8 -> kvWriteInt8(in[0], in[1], in[2], in[3], in[4], in[5]);
            default -> reference(k, in, out, a);               // a kernel added without a CPU loop runs its op's semantics
            case FUSED_INFER_ATTENTION_INT8 -> attention(in[0], in[1], in[2], in[3], in[4], in[5], in[6], in[7], out[0], (float) a.f("scale"));
        }
    }

    /** Runs the op's reference semantics on the buffers and copies the results into the outputs (states included). */
    void reference(Kernel k, Buf[] in, Buf[] out, Attrs a) {
        List<RefTensor> operands = new java.util.ArrayList<>(in.length);
        for (Buf b : in) operands.add(b.isWeight() ? weightCache.computeIfAbsent(b, CpuKernels::widen) : view(b));
        List<RefTensor> results = k.op().semantics().eval(operands, a);
        for (int r = 0; r < out.length; r++) {
            RefTensor t = results.get(r);
            if (out[r].isPacked()) pack(t, out[r]);
            else if (t.isInt()) System.arraycopy(t.i(), 0, out[r].i, out[r].off, t.size());
            else System.arraycopy(t.f(), 0, out[r].f, out[r].off, t.size());
        }
    }

    /**
     * An activation or state buffer as a RefTensor over the same array (the semantics never write
     * operands); a packed bf16 or int8 cache is widened into a copy.
     */
    private static RefTensor view(Buf b) {
        if (b.isPacked()) {
            int n = b.elements();
            if (b.dtype == DType.BF16) {
                float[] f = new float[n];
                Simd.widenBf16(b.w, 0, n, f);
                return RefTensor.of(b.dtype, b.shape, f);
            }
            int[] i = new int[n];
            Simd.widenI8(b.w, 0, n, i);
            return RefTensor.ofInts(b.dtype, b.shape, i);
        }
        return b.f != null ? RefTensor.of(b.dtype, b.shape, b.floatValues()) : RefTensor.ofInts(b.dtype, b.shape, b.intValues());
    }

    /** A semantics result into a packed cache buffer. */
    private static void pack(RefTensor t, Buf out) {
        for (int j = 0; j < t.size(); j++) {
            if (out.dtype == DType.BF16) out.w.setAtIndex(SHORT_LE, j, Simd.toBf16(t.f()[j]));
            else out.w.set(ValueLayout.JAVA_BYTE, j, (byte) t.i()[j]);
        }
    }

    private static RefTensor widen(Buf b) {
        int n = b.elements(), cols = b.dim(-1);
        if (b.dtype.isFloating()) {
            float[] all = new float[n], row = new float[cols];
            for (int r = 0; r < n / cols; r++) {
                b.weightRow(r, cols, row);
                System.arraycopy(row, 0, all, r * cols, cols);
            }
            return RefTensor.of(b.dtype, b.shape, all);
        }
        int[] all = new int[n], row = new int[cols];
        for (int r = 0; r < n / cols; r++) {
            b.intRow(r, cols, row);
            System.arraycopy(row, 0, all, r * cols, cols);
        }
        return RefTensor.ofInts(b.dtype, b.shape, all);
    }

    private static float offset(Attrs a) { return a.has("weight_offset") ? (float) a.f("weight_offset") : 0f; }

    /** out[t, :] = table[index[t], :] */
    void embedding(Buf table, Buf index, Buf out) {
        int rows = table.dim(0), width = out.elements() / Math.max(1, index.elements());
        float[] dst = out.f;
        for (int t = 0; t < index.elements(); t++) {
            int r = index.i[index.off + t];
            if (r < 0 || r >= rows) throw new IndexOutOfBoundsException("embedding index " + r + " outside table " + table);
            if (table.isWeight()) {
                float[] row = new float[width];
                table.weightRow(r, width, row);
                System.arraycopy(row, 0, dst, out.off + t * width, width);
            } else {
                System.arraycopy(table.f, table.off + r * width, dst, out.off + t * width, width);
            }
        }
    }

    /**
     * out = x / sqrt(mean(x^2) + eps) * w, per row of the last dimension; rows over the threads in takes
     * of at least {@link #NORM_TAKE} values.
     */
    void rmsNorm(Buf x, Buf w, Buf out, float eps, float offset) {
        int d = w.dim(0), rows = x.elements() / d;
        float[] weight = normWeight(w, offset);
        par.forEach(rows, Math.max(1, NORM_TAKE / d), r -> Simd.rmsNormRow(x.f, x.off + r * d, d, eps, weight, out.f, out.off + r * d));
    }

    /**
     * Values a take of a row-wise norm holds at least: eight rows of a 1024-wide model. A decode step's
     * q_norm (16 heads of 128 at batch 1) went over both threads in two takes of eight heads, 1.75 µs hot
     * where one thread takes 1.0, and left half of q in the other core's cache for the rotary after it.
     */
    private static final int NORM_TAKE = 8 * 1024;

    /**
     * The fused residual add and norm, row by row in one pass over the threads: sum = x + residual, then
     * rms_norm(sum) into {@code normed}, or (where {@code normed} is null) quantized per row into
     * {@code q} and {@code scale} as dynamic_quant does. Each row's add, norm and quantization run while
     * the row is in L1, and a launch forks the threads once instead of three times.
     */
    void addRmsNorm(Buf x, Buf residual, Buf w, Buf sum, Buf normed, Buf q, Buf scale, float eps, float offset) {
        int d = w.dim(0), rows = sum.elements() / d;
        float[] weight = normWeight(w, offset);
        par.forEach(rows, 8, r -> {
            int sr = sum.off + r * d;
            Simd.add(x.f, x.off + r * d, residual.f, residual.off + r * d, sum.f, sr, d);
            if (normed != null) {
                Simd.rmsNormRow(sum.f, sr, d, eps, weight, normed.f, normed.off + r * d);
                return;
            }
            float[] row = PanelScratch.get().normed(d);
            Simd.rmsNormRow(sum.f, sr, d, eps, weight, row, 0);
            scale.f[scale.off + r] = Simd.quantizeRow(row, 0, d, q.i, q.off + r * d);
        });
    }

    /** A norm's weight (a buffer, by identity) and the offset its op adds to it. */
    private record NormWeight(Buf w, float offset) {
        float[] widen() {
            float[] f = new float[w.dim(0)];
            w.weightRow(0, f.length, f);
            for (int j = 0; j < f.length; j++) f[j] += offset;
            return f;
        }
    }

    /** Norm weights plus their offsets as floats, widened once per weight (weights never change). */
    private final Map<NormWeight, float[]> normWeights = new java.util.concurrent.ConcurrentHashMap<>();

    private float[] normWeight(Buf w, float offset) {
        NormWeight key = new NormWeight(w, offset);
        return w.isWeight() ? normWeights.computeIfAbsent(key, NormWeight::widen) : key.widen();
    }

    /**
     * out[r, n] = sum_k x[r, k] * w[n, k]. A weight stored in panels (every bf16 weight of a loaded model)
     * runs through {@link #storedPanelRows}; any other is widened a row at a time, each row read once for
     * all rows of x.
     */
    void matmul(Buf x, Buf w, Buf out) {
        int n = w.dim(0), k = w.dim(1), rows = x.elements() / k, xo = x.off, oo = out.off;
        float[] xs = x.f, dst = out.f;
        if (w.panels != null) {
            BlockBody block = (o0, o1) -> storedPanelRows(xs, xo, k, 0, rows, w.panels, panelOf(0, n, o0, DType.BF16), DType.BF16, o1 - o0, null, dst, oo + o0, n);
            if (rows >= PANEL_ROWS) forEachBlock(n, promptBlock(n, DType.BF16), false, block);
            else forEachStreamedBlock(n, k, DType.BF16, block);
            return;
        }
        par.forEach(Math.ceilDiv(n, STREAM_BLOCK), 1, b -> {
            float[] row = new float[k];
            for (int o = b * STREAM_BLOCK; o < Math.min(n, (b + 1) * STREAM_BLOCK); o++) {
                w.weightRow(o, k, row);
                for (int r = 0; r < rows; r++) dst[oo + r * n + o] = dot(xs, xo + r * k, row, 0, k);
            }
        });
    }

    /** Rotary embedding: the cos/sin table of the positions, then the rotation (as rope_cos_sin + apply_rotary). */
    void rope(Buf x, Buf positions, Buf out, Attrs a) {
        int half = (int) a.i("rotary_dim") / 2, tokens = positions.elements();
        Buf cos = new Buf("cos", DType.F32, new int[]{tokens, half}, new float[tokens * half], null, null);
        Buf sin = new Buf("sin", DType.F32, new int[]{tokens, half}, new float[tokens * half], null, null);
        ropeCosSin(positions, cos, sin, a);
        applyRotary(x, cos, sin, out, 2 * half, a.has("interleaved") && a.b("interleaved"));
    }

    /** Each rotary launch's inverse frequencies, by its attributes: the same every step (26 µs a step at batch 1 when made anew). */
    private final Map<Attrs, double[]> inverseFrequencies = new java.util.concurrent.ConcurrentHashMap<>();

    /** cos and sin of position * inv_freq[i] (YaRN-blended frequencies come from the op's reference definition). */
    void ropeCosSin(Buf positions, Buf cos, Buf sin, Attrs a) {
        double[] invFreq = inverseFrequencies.computeIfAbsent(a, dev.moec.ir.interp.Reference::ropeInverseFrequencies);
        int half = invFreq.length;
        for (int t = 0; t < positions.elements(); t++) {
            for (int i = 0; i < half; i++) {
                double angle = positions.i[positions.off + t] * invFreq[i];
                cos.f[cos.off + t * half + i] = (float) Math.cos(angle);
                sin.f[sin.off + t * half + i] = (float) Math.sin(angle);
            }
        }
    }

    /** Rotates the pairs of the first rotaryDim dims of each head: NeoX (i, i + half) or interleaved (2i, 2i + 1). */
    void applyRotary(Buf x, Buf cos, Buf sin, Buf out, int rotaryDim, boolean interleaved) {
        int tokens = x.dim(0), heads = x.dim(1), hd = x.dim(2), half = rotaryDim / 2;
        float[] xs = x.f, dst = out.f;
        int shift = out.off - x.off;                                    // out element j is dst[x.off + j + shift]
        if (dst != xs || shift != 0) System.arraycopy(xs, x.off, dst, out.off, x.elements());
        par.forEach(tokens, 8, t -> {
            for (int h = 0; h < heads; h++) {
                int base = x.off + (t * heads + h) * hd;
                if (!interleaved) {                                      // NeoX halves: vector loops
                    Simd.rotateHalves(xs, base, half, cos.f, cos.off + t * half, sin.f, sin.off + t * half, dst, base + shift);
                    continue;
                }
                for (int i = 0; i < half; i++) {                         // interleaved pairs (2i, 2i + 1)
                    int p = base + 2 * i, q = p + 1;
                    float c = cos.f[cos.off + t * half + i], s = sin.f[sin.off + t * half + i], x1 = xs[p], x2 = xs[q];
                    dst[p + shift] = x1 * c - x2 * s;
                    dst[q + shift] = x2 * c + x1 * s;
                }
            }
        });
    }

    /** The addressing of a paged cache [NB, BS, ...] through its block table [S, MB]. */
    private static PagedCache paged(String op, Buf cache, Buf table) {
        return new PagedCache(op, table.intValues(), table.dim(1), cache.dim(1), cache.dim(0));
    }

    /**
     * kv[t] into the paged cache at (slots[t], positions[t]), in place; padding tokens (slot < 0) write
     * nothing. A bf16 cache stores each value rounded to bf16.
     */
    void kvWrite(Buf cache, Buf kv, Buf table, Buf slots, Buf positions) {
        PagedCache paged = paged("kv_write", cache, table);
        int row = cache.dim(2) * cache.dim(3);
        boolean bf16 = cache.dtype == DType.BF16;
        for (int t = 0; t < slots.elements(); t++) {
            int s = slots.i[slots.off + t];
            if (s < 0) continue;
            int at = paged.row(s, positions.i[positions.off + t]) * row, src = kv.off + t * row;
            if (!bf16) System.arraycopy(kv.f, src, cache.f, cache.off + at, row);
            else Simd.storeBf16(kv.f, src, cache.w, at, row);
        }
    }

    /** Positions one attention task covers at most: a task's K and V rows stay in L2. */
    private static final int ATTENTION_PART = 256;
    /**
     * Consecutive tokens of one sequence (a prompt) one attention task takes together: each K and V row
     * it reads serves all of them. One token at a time, a 512-token prompt read every
     * cached row once per later token, 0.5 GB a layer from L3 and memory.
     */
    private static final int QUERY_TILE = 12;
    /**
     * Tokens from which a tile scores through turned panels of K ({@link Simd#turn}, {@link Simd#panel6}:
     * the tile's tokens of one head broadcast against 32 positions at a time, no lane sums), where fewer
     * take four heads by four positions ({@link Simd#dot4x4}, sixteen lane sums per 128 FMAs at head
     * width 128).
     */
    private static final int PANEL_TOKENS = 4;

    /**
     * Causal attention over the cache (f32, or bf16 or int8 read in place). Tokens are taken in tiles of up to
     * {@link #QUERY_TILE} consecutive tokens of one sequence. A lone token's positions 0..positions[t] are
     * cut into parts, one per thread at batch 1 (two per thread were slower in an in-process A/B: each
     * part pays its own softmax and merge); a tile's are not. A lone token's task first reads its part's K
     * and V rows in, side by side, ahead of the scores ({@link #touch}, {@link #touchPacked}); a prompt's
     * tile reads each row for all its tokens, from a cache its own prompt has just written. One task takes
     * a part (or a tile) for every head: it reads the K and V rows position by position (all KV heads of a
     * position lie together), scoring the query heads that share a KV head four at a time, for each token
     * of its tile while the rows are in L1. A token in one part is finished by its task; otherwise each
     * part leaves its running max, sum and weighted values, and the parts are merged (flash-decoding).
     * Positions are found through the block table, and walked in runs that lie in one cache block, whose
     * rows are consecutive: four query heads score four positions at a time ({@link Simd#dot4x4}) and sum
     * four heads' values at a time ({@link Simd#pv4}); a tile of {@link #PANEL_TOKENS} or more scores
     * through turned panels of K instead, which sums each score in another order (both are held to the
     * op's definition in tests). A bf16 or int8 cache is read in its own bytes (the read-ahead too,
     * {@link #touchPacked}), and its rows are widened {@link #PANEL_BLOCK} positions at a time into the
     * task's scratch (an int8 row times its scale, as the op's definition dequantizes it), where the same
     * loops read them: attention over a packed cache gives bit for bit what it gives over an f32 cache
     * holding the values it widens to.
     */
    void attention(Buf q, Buf kc, Buf vc, Buf table, Buf slots, Buf positions, Buf out, float scale) {
        attention(q, kc, null, vc, null, table, slots, positions, out, scale);
    }

    /** {@link #attention} over an f32, bf16 or int8 cache; an int8 cache's rows scaled by {@code ks} and {@code vs} (one per row and KV head). */
    void attention(Buf q, Buf kc, Buf ks, Buf vc, Buf vs, Buf table, Buf slots, Buf positions, Buf out, float scale) {
        PagedCache paged = paged("attention", kc, table);
        int tokens = q.dim(0), heads = q.dim(1), hd = q.dim(2);
        int kvHeads = kc.dim(2), vd = vc.dim(3), group = heads / kvHeads, bs = kc.dim(1);
        boolean packed = kc.dtype != DType.F32;                        // bf16 or int8, widened a run at a time
        float[] qs = q.f, dst = out.f;
        int qo = q.off, oo = out.off;
        AttentionPlan plan = PanelScratch.get().attentionPlan(tokens);  // the launching thread's: nothing allocated a step
        int[] slot = plan.slot, last = plan.last;                       // per token: its sequence and its position
        for (int t = 0; t < tokens; t++) {
            slot[t] = slots.i[slots.off + t];
            last[t] = positions.i[positions.off + t];
        }
        int[] tileStart = plan.tileStart;
        int tiles = 0;
        for (int t = 0; t < tokens; ) {
            int e = t + 1;
            if (slot[t] >= 0) while (e < tokens && e - t < QUERY_TILE && slot[e] == slot[t]) e++;
            tileStart[tiles++] = t;
            t = e;
        }
        tileStart[tiles] = tokens;
        int wanted = Math.ceilDiv(par.threads(), tiles);               // parts a lone token needs for every thread to work
        int[] parts = plan.parts, first = plan.first, reach = plan.reach;
        first[0] = 0;
        for (int i = 0; i < tiles; i++) {
            reach[i] = 0;
            for (int t = tileStart[i]; t < tileStart[i + 1]; t++) reach[i] = Math.max(reach[i], slot[t] < 0 ? 0 : last[t] + 1);
            int n = reach[i];
            parts[i] = n == 0 || tileStart[i + 1] - tileStart[i] > 1 ? 1 : Math.min(n, Math.max(wanted, Math.ceilDiv(n, ATTENTION_PART)));
            first[i + 1] = first[i] + parts[i];
        }
        int tasks = first[tiles], stride = heads * (vd + 2);
        float[] partial = plan.partials(tasks * stride);                // per task of a split token, at task * stride: [heads][max, sum, vd values]
        par.forEach(tasks, 1, index -> {
            int task = tasks - 1 - index, i = 0;                         // the latest tiles, which read the most, first
            while (first[i + 1] <= task) i++;
            int ta = tileStart[i], tiled = tileStart[i + 1] - ta, s = slot[ta], part = task - first[i];
            if (s < 0) {
                Arrays.fill(dst, oo + ta * heads * vd, oo + (ta + 1) * heads * vd, 0f);
                return;
            }
            int n = reach[i], from = (int) ((long) n * part / parts[i]), to = (int) ((long) n * (part + 1) / parts[i]), m = to - from;
            PanelScratch scratch = PanelScratch.get();
            float[] score = scratch.scores(tiled * heads * m), four = scratch.four;   // score [tiled, heads, m]
            float[] spill = scratch.spill;
            // Over a bf16 or int8 cache a run's rows are widened (int8 ones dequantized) into wide,
            // PANEL_BLOCK positions at a time, and the loops below read them there as they read an f32
            // cache's rows in place.
            float[] wide = packed ? scratch.widened(PANEL_BLOCK * kvHeads * Math.max(hd, vd)) : null;
            float[] kf = packed ? wide : kc.f, vf = packed ? wide : vc.f;
            int ko = packed ? 0 : kc.off, vo = packed ? 0 : vc.off;
            if (tiled == 1) {
                long width = kc.dtype.bytes(1);
                scratch.touched += packed ? touchPacked(paged, s, from, to, kc.w, (long) kvHeads * hd * width, vc.w, (long) kvHeads * vd * width)
                        : touch(paged, s, from, to, kc.f, kc.off, kvHeads * hd, vc.f, vc.off, kvHeads * vd);
            }
            for (int j0 = from; j0 < to; ) {                             // runs of positions within one cache block
                int base = paged.row(s, j0), run = Math.min(to - j0, bs - j0 % bs);
                if (packed) {
                    run = Math.min(run, PANEL_BLOCK);
                    widen(kc, ks, base * kvHeads, run * kvHeads, hd, wide);
                    base = 0;
                }
                if (tiled >= PANEL_TOKENS) {                             // a prompt's tile: K rows turned into panels
                    float[] turned = scratch.turned(hd * PANEL_BLOCK);   // [hd, PANEL_BLOCK]
                    for (int jb = 0; jb < run; jb += PANEL_BLOCK) {
                        int mm = Math.min(PANEL_BLOCK, run - jb), sb = j0 - from + jb;
                        for (int kvh = 0; kvh < kvHeads; kvh++) {
                            Simd.turn(kf, ko + ((base + jb) * kvHeads + kvh) * hd, kvHeads * hd, hd, mm, turned);
                            for (int h = kvh * group; h < (kvh + 1) * group; h++) {
                                for (int u = 0; u < tiled; u += 6) {
                                    Simd.panel6(qs, qo + ((ta + u) * heads + h) * hd, heads * hd, Math.min(6, tiled - u), turned, 0, hd, null,
                                            score, (u * heads + h) * m + sb, heads * m, mm, spill);
                                }
                            }
                        }
                    }
                    j0 += run;
                    continue;
                }
                for (int kvh = 0; kvh < kvHeads; kvh++) {
                    int h0 = kvh * group, g = 0;
                    for (; g + 4 <= group; g += 4) {                     // four query heads share each K row
                        int jj = 0;
                        for (; jj + 4 <= run; jj += 4) {                 // and four K rows each query row: 16 FMAs per 8 loads
                            int kb = ko + ((base + jj) * kvHeads + kvh) * hd;
                            for (int u = 0; u < tiled; u++) {
                                int t = ta + u;
                                if (j0 + jj > last[t]) continue;         // all four positions after this token
                                Simd.dot4x4(qs, qo + (t * heads + h0 + g) * hd, hd, kf, kb, kvHeads * hd, hd, score, (u * heads + h0 + g) * m + j0 - from + jj, m, spill);
                            }
                        }
                        for (; jj < run; jj++) {
                            int kb = ko + ((base + jj) * kvHeads + kvh) * hd;
                            for (int u = 0; u < tiled; u++) {
                                int t = ta + u, sb = (u * heads + h0 + g) * m + j0 - from + jj;
                                if (j0 + jj > last[t]) continue;
                                Simd.dotx4(qs, qo + (t * heads + h0 + g) * hd, hd, kf, kb, hd, four, 0);
                                for (int c = 0; c < 4; c++) score[sb + c * m] = four[c];
                            }
                        }
                    }
                    for (; g < group; g++) {
                        for (int jj = 0; jj < run; jj++) {
                            int kb = ko + ((base + jj) * kvHeads + kvh) * hd;
                            for (int u = 0; u < tiled; u++) {
                                int t = ta + u;
                                if (j0 + jj > last[t]) continue;
                                score[(u * heads + h0 + g) * m + j0 - from + jj] = Simd.dot(qs, qo + (t * heads + h0 + g) * hd, kf, kb, hd);
                            }
                        }
                    }
                }
                j0 += run;
            }
            float[] max = scratch.maxima(tiled * heads), sum = scratch.sums(tiled * heads);
            for (int u = 0; u < tiled; u++) {
                int seen = Math.min(m, last[ta + u] + 1 - from);         // this token's positions in the part
                for (int h = 0; h < heads; h++) {
                    int row = (u * heads + h) * m;
                    float mx = Simd.scaleMax(score, row, seen, scale);
                    max[u * heads + h] = mx;
                    sum[u * heads + h] = Simd.expShifted(score, row, seen, mx);
                }
            }
            float[] acc = scratch.values(tiled * heads * vd);
            for (int j0 = from; j0 < to; ) {
                int base = paged.row(s, j0), run = Math.min(to - j0, bs - j0 % bs);
                if (packed) {
                    run = Math.min(run, PANEL_BLOCK);
                    widen(vc, vs, base * kvHeads, run * kvHeads, vd, wide);
                    base = 0;
                }
                for (int kvh = 0; kvh < kvHeads; kvh++) {
                    int h0 = kvh * group, vb = vo + (base * kvHeads + kvh) * vd;
                    for (int u = 0; u < tiled; u++) {
                        int t = ta + u, r = Math.min(run, last[t] + 1 - j0), g = 0;   // this token's positions of the run
                        if (r <= 0) continue;
                        int sb = (u * heads + h0) * m + j0 - from, ab = (u * heads + h0) * vd;
                        for (; g + 4 <= group; g += 4) {                 // four heads share each V row, their sums in registers
                            Simd.pv4(score, sb + g * m, m, vf, vb, kvHeads * vd, r, vd, acc, ab + g * vd, vd);
                        }
                        for (; g < group; g++) {
                            for (int jj = 0; jj < r; jj++) Simd.axpy(score[sb + g * m + jj], vf, vb + jj * kvHeads * vd, acc, ab + g * vd, vd);
                        }
                    }
                }
                j0 += run;
            }
            if (parts[i] == 1) {
                for (int u = 0; u < tiled; u++) {
                    for (int h = 0; h < heads; h++) {
                        int at = u * heads + h;
                        Simd.divide(acc, at * vd, sum[at], dst, oo + ((ta + u) * heads + h) * vd, vd);
                    }
                }
                return;
            }
            for (int h = 0, at = task * stride; h < heads; h++, at += vd + 2) {
                partial[at] = max[h];
                partial[at + 1] = sum[h];
                System.arraycopy(acc, h * vd, partial, at + 2, vd);
            }
        });
        for (int i = 0; i < tiles; i++) {                               // merge the parts of split tokens
            int t = tileStart[i];
            if (parts[i] == 1) continue;
            float[] acc = plan.merged(vd);
            for (int h = 0; h < heads; h++) {
                float max = Float.NEGATIVE_INFINITY, sum = 0;
                for (int part = 0; part < parts[i]; part++) max = Math.max(max, partial[(first[i] + part) * stride + h * (vd + 2)]);
                Arrays.fill(acc, 0, vd, 0f);
                for (int part = 0; part < parts[i]; part++) {
                    int at = (first[i] + part) * stride + h * (vd + 2);
                    float w = Simd.exp(partial[at] - max);
                    sum += partial[at + 1] * w;
                    Simd.axpy(w, partial, at + 2, acc, 0, vd);
                }
                Simd.divide(acc, 0, sum, dst, oo + (t * heads + h) * vd, vd);
            }
        }
    }

    /**
     * Reads one float of every 64-byte line of the K and the V cache rows of positions [from, to) of
     * sequence s ({@code kRow} floats a row of k from {@code ko}, {@code vRow} of v from {@code vo}), so that
     * they all come in from memory at once, many lines in flight, before the loops that use them; returns
     * their sum, which the caller keeps so the reads stay. The Vector API has no prefetch instruction, and
     * the hardware prefetcher, following one stride at a time, brought a decode step's cache rows in far
     * below the memory bandwidth: a part's rows (at most {@link #ATTENTION_PART} positions, 512 KB of K and
     * as much of V at the bench model's width) stay in L2 and L3, and read ahead this way the step's
     * attention took 1.39 instead of 1.76 ms at batch 1 and 5.8 instead of 8.6 ms at batch 8 (128
     * positions, in-process A/B). K and V are read side by side, a line of each in turn, where they were
     * read one before the scores and the other before the weighted sum: two streams keep more lines in
     * flight than one (cold 160 KB regions, two threads: 0.46-0.69 times as long in four of five windows,
     * 0.99 in the fifth). In the model, the two forms alternating every 8 steps in one process, batch 1's
     * attention took 0.61-1.01 times as long (median 0.86, ten windows of two runs); batch 8's, whose
     * tasks read a whole sequence's rows, 0.92, 1.14 and 1.00.
     */
    static float touch(PagedCache paged, int s, int from, int to, float[] k, int ko, int kRow, float[] v, int vo, int vRow) {
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;                          // four sums: the reads do not wait on one add chain
        int bs = paged.blockSize();
        for (int j0 = from; j0 < to; ) {
            int run = Math.min(to - j0, bs - j0 % bs), row = paged.row(s, j0);
            int i = ko + row * kRow, iEnd = i + run * kRow, u = vo + row * vRow, uEnd = u + run * vRow;
            for (; i + 16 < iEnd && u + 16 < uEnd; i += 32, u += 32) {
                s0 += k[i];
                s1 += v[u];
                s2 += k[i + 16];
                s3 += v[u + 16];
            }
            for (; i < iEnd; i += 16) s0 += k[i];
            for (; u < uEnd; u += 16) s1 += v[u];
            j0 += run;
        }
        return s0 + s1 + s2 + s3;
    }

    /**
     * {@link #touch} over a packed cache, bf16 or int8 ({@code k} and {@code v} its bytes, rows of
     * {@code kRow} and {@code vRow} bytes): one byte of every 64-byte line, K and V side by side; returns
     * their sum.
     */
    static int touchPacked(PagedCache paged, int s, int from, int to, MemorySegment k, long kRow, MemorySegment v, long vRow) {
        int s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        int bs = paged.blockSize();
        for (int j0 = from; j0 < to; ) {
            int run = Math.min(to - j0, bs - j0 % bs), row = paged.row(s, j0);
            long i = row * kRow, iEnd = i + run * kRow, u = row * vRow, uEnd = u + run * vRow;
            for (; i + 64 < iEnd && u + 64 < uEnd; i += 128, u += 128) {
                s0 += k.get(ValueLayout.JAVA_BYTE, i);
                s1 += v.get(ValueLayout.JAVA_BYTE, u);
                s2 += k.get(ValueLayout.JAVA_BYTE, i + 64);
                s3 += v.get(ValueLayout.JAVA_BYTE, u + 64);
            }
            for (; i < iEnd; i += 64) s0 += k.get(ValueLayout.JAVA_BYTE, i);
            for (; u < uEnd; u += 64) s1 += v.get(ValueLayout.JAVA_BYTE, u);
            j0 += run;
        }
        return s0 + s1 + s2 + s3;
    }

    /** Rows [r0, r0 + rows) of a packed cache d wide into dst as floats: bf16 widened, int8 times its row's scale. */
    private static void widen(Buf cache, Buf scale, int r0, int rows, int d, float[] dst) {
        if (cache.dtype == DType.I8) Simd.dequantI8Rows(cache.w, r0, rows, d, scale.f, scale.off, dst);
        else Simd.widenBf16(cache.w, (long) r0 * d, rows * d, dst);
    }

    /**
     * Multi-head latent attention with W_UK and W_UV absorbed (the form FIA's MLA mode runs): per (token,
     * head), q_nope is taken into the latent space once, qL = W_UK(h)^T q_nope (C values); each cached row
     * [c_kv | k_pe] then scores qL . c_kv + q_pe . k_pe, the softmax weights sum the latent rows, and W_UV(h)
     * expands that sum to the head's values. The same value as the op's un-absorbed definition (which
     * expands every cached row by w_kv_b), in C instead of H * (nope + v) work per cached row. With
     * {@code indices} (sparse MLA), only the listed positions at or before the token's are read, in order.
     */
    void mlaAttention(Buf qn, Buf qp, Buf cache, Buf w, Buf table, Buf slots, Buf positions, Buf indices, Buf out, Attrs a) {
        PagedCache paged = paged("mla_attention", cache, table);
        int tokens = qn.dim(0), heads = qn.dim(1), dn = qn.dim(2), dr = qp.dim(2), c = w.dim(1), row = cache.dim(3);
        int v = (int) a.i("v_head_dim"), per = dn + v, k = indices == null ? 0 : indices.dim(1);
        float scale = (float) a.f("scale");
        boolean inPlace = inPlaceBf16(w);
        par.forEach(tokens * heads, 1, th -> {
            int t = th / heads, h = th % heads, s = slots.i[slots.off + t], ob = out.off + (t * heads + h) * v;
            if (s < 0) {
                Arrays.fill(out.f, ob, ob + v, 0f);
                return;
            }
            float[] wRow = inPlace ? null : new float[c], qL = new float[c];
            for (int d = 0; d < dn; d++) {                       // qL = sum_d q_nope[d] * W_UK row d
                float q = qn.f[qn.off + (t * heads + h) * dn + d];
                long wr = (long) h * per + d;
                if (inPlace) Simd.axpyBf16(q, w.w, wr * c, qL, 0, c);
                else {
                    w.weightRow(wr, c, wRow);
                    Simd.axpy(q, wRow, 0, qL, 0, c);
                }
            }
            int[] keys;
            int n = 0;
            if (indices == null) {
                keys = new int[positions.i[positions.off + t] + 1];
                for (int j = 0; j <= positions.i[positions.off + t]; j++) keys[n++] = j;
            } else {
                keys = new int[k];
                for (int m = 0; m < k; m++) {
                    int j = indices.i[indices.off + t * k + m];
                    if (j >= 0 && j <= positions.i[positions.off + t]) keys[n++] = j;
                }
            }
            if (n == 0) {                                        // no position to attend: zeros, as the definition gives
                Arrays.fill(out.f, ob, ob + v, 0f);
                return;
            }
            float[] score = new float[n];
            float max = Float.NEGATIVE_INFINITY;
            for (int m = 0; m < n; m++) {
                int base = cache.off + paged.row(s, keys[m]) * row;
                score[m] = (Simd.dot(qL, 0, cache.f, base, c) + Simd.dot(qp.f, qp.off + (t * heads + h) * dr, cache.f, base + c, dr)) * scale;
                max = Math.max(max, score[m]);
            }
            float sum = Simd.expShifted(score, 0, n, max);
            float[] latent = new float[c];
            for (int m = 0; m < n; m++) Simd.axpy(score[m] / sum, cache.f, cache.off + paged.row(s, keys[m]) * row, latent, 0, c);
            for (int d = 0; d < v; d++) {                        // out = W_UV(h) latent
                long wr = (long) h * per + dn + d;
                if (inPlace) out.f[ob + d] = Simd.dotBf16(latent, 0, w.w, wr * c, c);
                else {
                    w.weightRow(wr, c, wRow);
                    out.f[ob + d] = Simd.dot(latent, 0, wRow, 0, c);
                }
            }
        });
    }

    /** The int8 cache write, in place: each (token, head) row quantized with scale max|kv| / 127, one byte a value. */
    void kvWriteInt8(Buf cache, Buf scale, Buf kv, Buf table, Buf slots, Buf positions) {
        PagedCache paged = paged("kv_write_int8", cache, table);
        int heads = cache.dim(2), d = cache.dim(3);
        for (int t = 0; t < slots.elements(); t++) {
            int s = slots.i[slots.off + t];
            if (s < 0) continue;
            int at = paged.row(s, positions.i[positions.off + t]);
            for (int h = 0; h < heads; h++) {
                int src = kv.off + (t * heads + h) * d, row = at * heads + h;
                float max = 0;
                for (int j = 0; j < d; j++) max = Math.max(max, Math.abs(kv.f[src + j]));
                float sc = max / 127f;
                scale.f[scale.off + row] = sc;
                for (int j = 0; j < d; j++) {
                    int v = max == 0 ? 0 : (int) Math.max(-127, Math.min(127, Math.rint(kv.f[src + j] / sc)));
                    cache.w.set(ValueLayout.JAVA_BYTE, (long) row * d + j, (byte) v);
                }
            }
        }
    }

    void softmax(Buf x, Buf out) {
        int n = x.dim(-1);
        float[] xs = x.f, dst = out.f;
        par.forEach(x.elements() / n, 1, r -> {
            int xr = x.off + r * n, or = out.off + r * n;
            float max = Float.NEGATIVE_INFINITY;
            for (int j = 0; j < n; j++) max = Math.max(max, xs[xr + j]);
            double sum = 0;
            double[] e = new double[n];                                  // each exp once: the same values the definition takes twice
            for (int j = 0; j < n; j++) sum += e[j] = Math.exp(xs[xr + j] - max);
            for (int j = 0; j < n; j++) dst[or + j] = (float) (e[j] / sum);
        });
    }

    /** The k largest of each row, descending; equal values keep the lower index first. */
    void topk(Buf x, Buf values, Buf indices, int k) {
        int n = x.dim(-1);
        float[] xs = x.f;
        int[] best = indices.i;
        par.forEach(x.elements() / n, 1, r -> {
            int xr = x.off + r * n, br = indices.off + r * k;
            boolean[] taken = new boolean[n];
            for (int s = 0; s < k; s++) {
                int pick = -1;
                for (int j = 0; j < n; j++) {
                    if (!taken[j] && (pick < 0 || xs[xr + j] > xs[xr + pick])) pick = j;
                }
                taken[pick] = true;
                best[br + s] = pick;
                values.f[values.off + r * k + s] = xs[xr + pick];
            }
        });
    }

    void renorm(Buf x, Buf out) {
        int n = x.dim(-1);
        par.forEach(x.elements() / n, 16, r -> {
            int xr = x.off + r * n, or = out.off + r * n;
            float sum = 0;
            for (int j = 0; j < n; j++) sum += x.f[xr + j];
            for (int j = 0; j < n; j++) out.f[or + j] = x.f[xr + j] / sum;
        });
    }

    /**
     * Routed SwiGLU experts, expert by expert: the tokens routed to expert e are gathered, its gate/up
     * weights are read once for all of them, then its down projection, scaled by the router weight.
     */
    void moeExperts(Buf x, Buf weights, Buf experts, Buf gate, Buf up, Buf down, Buf out) {
        int tokens = x.dim(0), hidden = x.dim(1), k = weights.dim(1), xo = x.off, oo = out.off;
        int expertCount = gate.dim(0), inter = gate.dim(1);
        float[] dst = out.f;
        Arrays.fill(dst, oo, oo + tokens * hidden, 0f);
        for (int e = 0; e < expertCount; e++) {
            int[] routed = new int[tokens * k];
            float[] scale = new float[tokens * k];
            int m = 0;
            for (int t = 0; t < tokens; t++) {
                for (int s = 0; s < k; s++) {
                    int ex = experts.i[experts.off + t * k + s];
                    if (ex < 0 || ex >= expertCount) throw new IndexOutOfBoundsException("expert " + ex + " outside 0.." + (expertCount - 1));
                    if (ex == e) {
                        routed[m] = t;
                        scale[m++] = weights.f[weights.off + t * k + s];
                    }
                }
            }
            if (m == 0) continue;
            int count = m, expert = e;
            float[] act = new float[count * inter];
            par.forEach(Math.ceilDiv(inter, STREAM_BLOCK), 1, b -> {
                float[] g = new float[hidden], u = new float[hidden];
                for (int i = b * STREAM_BLOCK; i < Math.min(inter, (b + 1) * STREAM_BLOCK); i++) {
                    gate.weightRow((long) expert * inter + i, hidden, g);
                    up.weightRow((long) expert * inter + i, hidden, u);
                    for (int r = 0; r < count; r++) {
                        float gv = dot(x.f, xo + routed[r] * hidden, g, 0, hidden), uv = dot(x.f, xo + routed[r] * hidden, u, 0, hidden);
                        act[r * inter + i] = gv / (1f + (float) Math.exp(-gv)) * uv;
                    }
                }
            });
            par.forEach(Math.ceilDiv(hidden, STREAM_BLOCK), 1, b -> {
                float[] d = new float[inter];
                for (int o = b * STREAM_BLOCK; o < Math.min(hidden, (b + 1) * STREAM_BLOCK); o++) {
                    down.weightRow((long) expert * hidden + o, inter, d);
                    for (int r = 0; r < count; r++) dst[oo + routed[r] * hidden + o] += scale[r] * dot(act, r * inter, d, 0, inter);
                }
            });
        }
    }

    /** softmax over the last dim into a scratch row, then its top k (the gating kernel's first half). */
    void softmaxInto(Buf x, Buf values, Buf indices, int k) {
        float[] probs = new float[x.elements()];
        softmax(x, new Buf("probs", DType.F32, x.shape, probs, null, null));
        topk(new Buf("probs", DType.F32, x.shape, probs, null, null), values, indices, k);
    }

    /** Rows (t, k) sorted stably by expert: a counting sort over the expert ids, then the rows copied over the threads. */
    void moeDispatch(Buf x, Buf experts, Buf rowsX, Buf rows, Buf counts) {
        int k = experts.dim(1), hidden = x.dim(1);
        int[] dest = route(experts, rows, counts);
        par.forEach(experts.elements(), 16, src -> System.arraycopy(x.f, x.off + (src / k) * hidden, rowsX.f, rowsX.off + dest[src] * hidden, hidden));
    }

    /**
     * {@link #moeDispatch} with the rows quantized as {@link #dynamicQuant} quantizes them: each token once
     * (a prompt's 512 rather than its 4096 rows), then its int8 row and scale copied to its K places. Per-row
     * quantization of a copy is the copy of the row's quantization, so this is the definition to the bit.
     */
    void moeDispatchQuant(Buf x, Buf experts, Buf rowsQ, Buf rowsScale, Buf rows, Buf counts) {
        int k = experts.dim(1), hidden = x.dim(1), tokens = x.dim(0);
        int[] dest = route(experts, rows, counts);
        par.forEach(tokens, 1, t -> {
            int first = dest[t * k], at = rowsQ.off + first * hidden;
            float scale = Simd.quantizeRow(x.f, x.off + t * hidden, hidden, rowsQ.i, at);
            rowsScale.f[rowsScale.off + first] = scale;
            for (int c = 1; c < k; c++) {
                int r = dest[t * k + c];
                System.arraycopy(rowsQ.i, at, rowsQ.i, rowsQ.off + r * hidden, hidden);
                rowsScale.f[rowsScale.off + r] = scale;
            }
        });
    }

    /**
     * The routing of a dispatch: counts[e] = rows for expert e, rows[r] = the source t * K + k of row r
     * (sorted stably by expert), and the row of each source, returned.
     */
    private static int[] route(Buf experts, Buf rows, Buf counts) {
        int n = experts.elements(), e = counts.elements();
        int[] ids = experts.i, count = counts.i;
        int io = experts.off, co = counts.off;
        Arrays.fill(count, co, co + e, 0);
        for (int s = 0; s < n; s++) {
            int ex = ids[io + s];
            if (ex < 0 || ex >= e) throw new IndexOutOfBoundsException("expert " + ex + " outside 0.." + (e - 1));
            count[co + ex]++;
        }
        int[] next = new int[e], dest = new int[n];
        for (int j = 1; j < e; j++) next[j] = next[j - 1] + count[co + j - 1];
        for (int src = 0; src < n; src++) {
            int r = next[ids[io + src]]++;
            rows.i[rows.off + r] = src;
            dest[src] = r;
        }
        return dest;
    }

    /**
     * Consecutive row groups times each expert's weight [N, K]: through {@link #storedPanelRows} where the
     * weight is stored in panels, else each expert's rows widened once per group.
     */
    void groupedMatmul(Buf x, Buf w, Buf counts, Buf out) {
        int k = x.dim(1), n = w.dim(1), xo = x.off, oo = out.off;
        forEachGroupBlock(groups(x, w, counts), out, n, w.panels != null ? streamChannels(k, DType.BF16) : STREAM_BLOCK, (expert, from, count, o0, o1) -> {
            if (w.panels != null) {
                storedPanelRows(x.f, xo, k, from, from + count, w.panels, panelOf(expert, n, o0, DType.BF16), DType.BF16, o1 - o0, null, out.f, oo + from * n + o0, n);
                return;
            }
            float[] row = new float[k];
            for (int o = o0; o < o1; o++) {
                w.weightRow((long) expert * n + o, k, row);
                for (int r = from; r < from + count; r++) out.f[oo + r * n + o] = dot(x.f, xo + r * k, row, 0, k);
            }
        });
    }

    interface GroupBlock { void run(int expert, int from, int count, int o0, int o1); }

    /**
     * A decode step's grouped matmul over the panels of {@code w} ({@code type}), cut as
     * {@link #groupedMatmul} and {@link #groupedQuantMatmul} cut it: {@code body} for each (group, block of
     * output channels), over the threads in runs; the rows of {@code out} past the groups zeroed.
     */
    void forEachStreamedGroupBlock(Buf x, Buf w, Buf counts, DType type, Buf out, GroupBlock body) {
        forEachGroupBlock(groups(x, w, counts), out, w.dim(-2), streamChannels(w.dim(-1), type), body);
    }

    /**
     * The non-empty expert groups of a grouped matmul's rows: group g is expert[g]'s count[g] consecutive
     * rows from from[g] (counts[e] rows for expert e, in order, clipped to x's rows); {@code end} is the
     * first row past them, {@code most} and {@code fewest} the largest and smallest group.
     */
    private record Groups(int size, int[] expert, int[] from, int[] count, int end, int most, int fewest) {}

    private static Groups groups(Buf x, Buf w, Buf counts) {
        int m = x.dim(0), experts = w.dim(0);
        int[] expert = new int[experts], from = new int[experts], count = new int[experts];
        int groups = 0, start = 0, most = 0, fewest = Integer.MAX_VALUE;
        for (int e = 0; e < experts; e++) {
            int c = Math.min(counts.i[counts.off + e], m - start);
            if (c > 0) {
                expert[groups] = e;
                from[groups] = start;
                count[groups++] = c;
                most = Math.max(most, c);
                fewest = Math.min(fewest, c);
            }
            start += Math.max(c, 0);
        }
        return new Groups(groups, expert, from, count, Math.min(start, m), most, fewest);
    }

    /**
     * The groups times blocks of output channels [o0, o1): one parallel loop over every (group, block)
     * pair, so a decode step's few rows per expert still spread over all threads in one fork; the rows
     * past the groups are zeroed. Blocks are {@link #PROMPT_BLOCK} channels when some group has a
     * panel's rows, else {@code streamBlock} (each thread over its own run of them: {@link Parallel#forEachInRuns}).
     */
    private void forEachGroupBlock(Groups gs, Buf out, int n, int streamBlock, GroupBlock body) {
        Arrays.fill(out.f, out.off + gs.end() * n, out.off + out.elements(), 0f);   // the groups' rows are all written
        boolean prompt = gs.most() >= PANEL_ROWS;
        int block = prompt ? PROMPT_BLOCK : streamBlock, blocks = Math.ceilDiv(n, block);
        forEachTask(gs.size() * blocks, !prompt, idx -> {
            int g = idx / blocks, o0 = (idx % blocks) * block;
            body.run(gs.expert()[g], gs.from()[g], gs.count()[g], o0, Math.min(n, o0 + block));
        });
    }

    void swiglu(Buf x, Buf out) {
        int n = out.dim(-1), rows = out.elements() / n;
        par.forEach(rows, 16, r -> {
            int xr = x.off + r * 2 * n;
            Simd.swiglu(x.f, xr, x.f, xr + n, out.f, out.off + r * n, n);
        });
    }

    /**
     * out[t] = sum_k weights[t, k] * y[row of (t, k)], as the op defines it: in double, each token's rows
     * added in the order of the rows, so the result is the definition's to the bit; the tokens run over
     * the threads.
     */
    void moeCombine(Buf y, Buf rows, Buf weights, Buf out) {
        int tokens = weights.dim(0), k = weights.dim(1), hidden = y.dim(1), n = rows.elements();
        int[] rowOf = new int[tokens * k];                               // the row holding source (t, k), or -1
        Arrays.fill(rowOf, -1);
        for (int r = 0; r < n; r++) rowOf[rows.i[rows.off + r]] = r;
        par.forEach(tokens, 4, t -> {
            int[] mine = new int[k], at = new int[k];
            double[] w = new double[k];
            int m = 0;
            for (int s = 0; s < k; s++) if (rowOf[t * k + s] >= 0) mine[m++] = rowOf[t * k + s];
            Arrays.sort(mine, 0, m);
            for (int q = 0; q < m; q++) {
                int r = mine[q];
                w[q] = weights.f[weights.off + rows.i[rows.off + r]];
                at[q] = y.off + r * hidden;
            }
            Simd.weightedRowsDouble(w, y.f, at, m, out.f, out.off + t * hidden, hidden);
        });
    }

    /**
     * {@link #swiglu} then {@link #dynamicQuant}, a row at a time: each row's activations go through the
     * launching thread's scratch while they are in L1, and the rows over the threads in takes of at least
     * {@link #NORM_TAKE} values; bit for bit the two kernels' result.
     */
    void swigluQuant(Buf x, Buf q, Buf scale) {
        int n = q.dim(-1), rows = q.elements() / n;
        par.forEach(rows, Math.max(1, NORM_TAKE / n), r -> {
            float[] act = PanelScratch.get().normed(n);
            int xr = x.off + r * 2 * n;
            Simd.swiglu(x.f, xr, x.f, xr + n, act, 0, n);
            scale.f[scale.off + r] = Simd.quantizeRow(act, 0, n, q.i, q.off + r * n);
        });
    }

    /**
     * Per row: scale = max|x| / 127, q = round(x / scale), the rows over the threads in takes of at least
     * {@link #NORM_TAKE} values: a batch-1 step's eight SwiGLU rows of 256 run on the calling thread, where
     * a fork over both threads cost more than the rows.
     */
    void dynamicQuant(Buf x, Buf q, Buf scale) {
        int n = x.dim(-1), rows = x.elements() / n;
        par.forEach(rows, Math.max(1, NORM_TAKE / n), r -> scale.f[scale.off + r] = Simd.quantizeRow(x.f, x.off + r * n, n, q.i, q.off + r * n));
    }

    /**
     * The first n int8 values of x as exact floats, for the float-accumulated int8 loops: converted in
     * chunks over the threads into the launching thread's scratch array (a prompt's grouped matmul
     * converts 4096 rows, 16 MB, per launch).
     */
    private float[] exact(Buf x, int n) { return asFloats(x, n, 0, 1f); }

    /** The first n int8 values of x as floats times {@link Simd#STREAM_X_SCALE}, for the streamed int8 tiles ({@link Simd#panelStream}). */
    private float[] streamed(Buf x, int n) { return asFloats(x, n, 1, Simd.STREAM_X_SCALE); }

    /**
     * {@link #streamed} for the rows (of k values) of the groups that stream, those of fewer than
     * {@link #PANEL_ROWS} rows; other rows are left as they were. A prompt's grouped matmul has a few
     * such groups among 4096 rows.
     */
    private static float[] streamed(Buf x, int k, Groups groups) {
        float[] xf = PanelScratch.get().exact(1, x.elements());
        for (int g = 0; g < groups.size(); g++) {
            if (groups.count()[g] < PANEL_ROWS) Simd.exact(x.i, x.off + groups.from()[g] * k, xf, groups.from()[g] * k, groups.count()[g] * k, Simd.STREAM_X_SCALE);
        }
        return xf;
    }

    private float[] asFloats(Buf x, int n, int slot, float scale) {
        float[] xf = PanelScratch.get().exact(slot, n);
        int chunk = 1 << 15;
        par.forEach(Math.ceilDiv(n, chunk), 1, c -> Simd.exact(x.i, x.off + c * chunk, xf, c * chunk, Math.min(chunk, n - c * chunk), scale));
        return xf;
    }

    /**
     * int8 activation rows as bytes for the {@link Vnni} tiles: row r at byte r * stride of {@code q}, its k
     * values then zeros up to the stride ({@link Vnni#paddedColumns}); {@code sums[r]} the row's sum.
     */
    private record Int8Rows(byte[] q, int stride, int[] sums) {}

    /** The first {@code rows} rows of k int8 values of x as {@link Int8Rows}, in the launching thread's scratch, chunks of rows over the threads. */
    private Int8Rows int8Rows(Buf x, int rows, int k) {
        int stride = Vnni.paddedColumns(k), chunk = Math.max(1, (1 << 15) / stride);
        PanelScratch scratch = PanelScratch.get();
        byte[] q = scratch.bytes(rows * stride);
        int[] sums = scratch.rowSums(rows);
        par.forEach(Math.ceilDiv(rows, chunk), 1, c -> {
            for (int r = c * chunk; r < Math.min(rows, (c + 1) * chunk); r++) {
                sums[r] = Simd.toBytes(x.i, x.off + r * k, k, q, r * stride);
                Arrays.fill(q, r * stride + k, (r + 1) * stride, (byte) 0);
            }
        });
        return new Int8Rows(q, stride, sums);
    }

    /** int8 x int8 accumulated in int, times the row's and the channel's scales. */
    void quantMatmul(Buf x, Buf xs, Buf w, Buf ws, Buf out) {
        int n = w.dim(0), k = w.dim(1), rows = x.elements() / k;
        float[] wScale = scales(ws);
        boolean prompt = rows >= PANEL_ROWS, floats = w.panels != null && !w.vnni;
        Int8Rows xq = w.vnni ? int8Rows(x, rows, k) : null;
        float[] xf = floats && prompt ? exact(x, rows * k) : null, xstream = floats && !prompt ? streamed(x, rows * k) : null;
        BlockBody block = (o0, o1) -> quantRows(x, xq, xf, xstream, null, xs, w, wScale, 0, k, n, 0, rows, o0, o1, out);
        if (prompt) forEachBlock(n, w.panels != null ? promptBlock(n, DType.I8) : streamBlock(n, k, DType.I8), false, block);
        else forEachStreamedBlock(n, k, DType.I8, block);
    }

    /** Grouped int8 rows times int8 or int4 expert weights, with per-row and per-(expert, channel) scales. */
    void groupedQuantMatmul(Buf x, Buf xs, Buf w, Buf ws, Buf counts, Buf out) {
        int k = x.dim(1), n = w.dim(1);
        float[] wScale = scales(ws);
        boolean int4 = inPlaceI4(w, k);
        Groups groups = groups(x, w, counts);
        // Exact floats for int8 panels and for int4 groups turned into panels (PANEL_ROWS rows or more); the
        // activations split by even and odd element (W4A8) for int4 groups too small for a panel.
        boolean floats = w.panels != null && !w.vnni;
        Int8Rows xq = w.vnni ? int8Rows(x, x.dim(0), k) : null;
        float[] xf = groups.most() >= PANEL_ROWS && (floats || int4) ? exact(x, x.elements()) : null;
        float[] xstream = floats && groups.fewest() < PANEL_ROWS ? streamed(x, k, groups) : null;
        int[][] split = int4 && groups.fewest() < PANEL_ROWS ? Simd.splitEvenOdd(x.i, x.off, x.dim(0), k) : null;
        forEachGroupBlock(groups, out, n, w.panels != null ? streamChannels(k, DType.I8) : STREAM_BLOCK, (expert, from, count, o0, o1) ->
                quantRows(x, xq, xf, xstream, split, xs, w, wScale, (long) expert * n, k, n, from, from + count, o0, o1, out));
    }

    /**
     * Rows [r0, r1) of an int8 matmul by its output channels [o0, o1), whose weight rows and scales are
     * {@code base + o}: out[r, o] = (x row r . weight row) * x_scale[r] * w_scale, the dot exact in int32.
     * int8 weights stored in panels (every int8 weight of a loaded model) run through the {@link Vnni}
     * tiles where their panels are in its layout ({@code xq} the rows as bytes), else through
     * {@link #storedPanelRows}. int4 weights (read in place, two a byte) are turned into panels from
     * {@link #PANEL_ROWS} rows on ({@link #panelRows}); fewer rows read them against the activations split
     * by even and odd element ({@code split}), {@link #ROW_TILE} rows at a time. Other weights are widened a row at a time. {@code xf} is x as
     * exact floats, for the panels widened for {@link #PANEL_ROWS} rows or more; {@code xstream} is x as
     * {@link #streamed} floats, for the panels streamed for fewer; any may be null where no rows need it.
     */
    private static void quantRows(Buf x, Int8Rows xq, float[] xf, float[] xstream, int[][] split, Buf xs, Buf w, float[] wScale, long base, int k, int n,
                                  int r0, int r1, int o0, int o1, Buf out) {
        boolean int4 = inPlaceI4(w, k);
        int count = r1 - r0;
        if (w.panels != null || (int4 && count >= PANEL_ROWS)) {
            int m = o1 - o0;
            int[] acc = PanelScratch.get().acc(count * m);
            long panel = w.panels != null ? panelOf(Math.toIntExact(base / n), n, o0, DType.I8) : -1;
            if (w.vnni) {
                Vnni.rows(xq.q(), xq.stride(), xq.sums(), r0, r1, w.panels, panel * Vnni.panelBytes(k), k, m, acc);
            } else if (w.panels != null) {
                storedPanelRows(count >= PANEL_ROWS ? xf : xstream, 0, k, r0, r1, w.panels, panel, DType.I8, m, acc, null, 0, 0);
            } else {
                panelRows(xf, 0, k, r0, r1, w.w, base + o0, w.dtype, m, acc);
            }
            for (int r = 0; r < count; r++) Simd.dequant(acc, r * m, xs.f[xs.off + r0 + r], wScale, (int) base + o0, m, out.f, out.off + (r0 + r) * n + o0);
            return;
        }
        int[] row = int4 ? null : new int[k], acc = new int[count];
        int tile = int4 ? ROW_TILE : count;
        for (int t0 = r0; t0 < r1; t0 += tile) {
            int t1 = Math.min(r1, t0 + tile);
            for (int o = o0; o < o1; o++) {
                long wr = base + o;
                if (int4) {
                    for (int r = t0; r < t1; r++) acc[r - t0] = Simd.dotI4(split[0], split[1], r * (k / 2), w.w, wr * k, k);
                } else {
                    w.intRow(wr, k, row);
                    for (int r = t0; r < t1; r++) acc[r - t0] = Simd.dotI8(x.i, x.off + r * k, row, k);
                }
                for (int r = t0; r < t1; r++) out.f[out.off + r * n + o] = Simd.dequant(acc[r - t0], xs.f[xs.off + r], wScale[(int) wr]);
            }
        }
    }

    /** n elements from src at so to dst at dst0, float or integer storage alike. */
    private static void copy(Buf src, int so, Buf dst, int d0, int n) {
        if (src.f != null) System.arraycopy(src.f, src.off + so, dst.f, dst.off + d0, n);
        else System.arraycopy(src.i, src.off + so, dst.i, dst.off + d0, n);
    }

    /** Dims before and after {@code axis} multiplied: the outer blocks and the inner run of a data-movement op. */
    private static int[] outerInner(Buf x, int axis) {
        int ax = axis < 0 ? axis + x.shape.length : axis, outer = 1, inner = 1;
        for (int d = 0; d < ax; d++) outer *= x.shape[d];
        for (int d = ax + 1; d < x.shape.length; d++) inner *= x.shape[d];
        return new int[] {outer, inner, x.shape[ax]};
    }

    /** x[..., start:end, ...] along {@code axis}. */
    void slice(Buf x, Buf out, int axis, int start, int end) {
        int[] oi = outerInner(x, axis);
        int n = end - start;
        for (int o = 0; o < oi[0]; o++) copy(x, (o * oi[2] + start) * oi[1], out, o * n * oi[1], n * oi[1]);
    }

    /** x and y joined along {@code axis}. */
    void concat(Buf x, Buf y, Buf out, int axis) {
        int[] ox = outerInner(x, axis), oy = outerInner(y, axis);
        int p = ox[2], q = oy[2], inner = ox[1];
        for (int o = 0; o < ox[0]; o++) {
            copy(x, o * p * inner, out, o * (p + q) * inner, p * inner);
            copy(y, o * q * inner, out, (o * (p + q) + p) * inner, q * inner);
        }
    }

    /** Each index along {@code axis} repeated {@code times} times in place (repeat_interleave). */
    void repeat(Buf x, Buf out, int axis, int times) {
        int[] oi = outerInner(x, axis);
        int len = oi[2], inner = oi[1];
        for (int o = 0; o < oi[0]; o++) {
            for (int j = 0; j < len; j++) {
                for (int r = 0; r < times; r++) copy(x, (o * len + j) * inner, out, ((o * len + j) * times + r) * inner, inner);
            }
        }
    }

    /** out[r, s] = x[r, index[r, s]] over the last dimension. */
    void takeAlong(Buf x, Buf index, Buf out) {
        int n = x.dim(-1), k = index.dim(-1);
        for (int r = 0; r < index.elements() / k; r++) {
            for (int s = 0; s < k; s++) {
                int j = index.i[index.off + r * k + s];
                if (j < 0 || j >= n) throw new IndexOutOfBoundsException("take_along index " + j + " outside 0.." + (n - 1));
                out.f[out.off + r * k + s] = x.f[x.off + r * n + j];
            }
        }
    }

    /** scale * H x per row of the last dimension (a power of two), the butterflies in double as the op defines them. */
    void hadamard(Buf x, Buf out, double scale) {
        int n = x.dim(-1);
        par.forEach(x.elements() / n, 4, r -> {
            double[] v = new double[n];
            for (int j = 0; j < n; j++) v[j] = x.f[x.off + r * n + j];
            dev.moec.ir.interp.Reference.hadamardInPlace(v);
            for (int j = 0; j < n; j++) out.f[out.off + r * n + j] = (float) (v[j] * scale);
        });
    }

    /**
     * The gated delta rule as its step recurrence, in place on the state (the op's output state aliases its
     * input): per token, S = S e^g; S += k (v - S^T k)^T beta; o = S^T q, with a slot's state reset at
     * position 0. Heads are independent, so each task runs one head through all tokens in order; the
     * rank-one updates are Vector API row loops over the state [dk, dv]. A graph that asks for the chunked
     * form (chunk_size) gets this same recurrence: the two agree to rounding (tested on the interpreter).
     */
    void gatedDeltaRule(Buf q, Buf k, Buf v, Buf g, Buf beta, Buf state, Buf slots, Buf positions, Buf out, Buf stateOut) {
        int tokens = q.dim(0), heads = q.dim(1), dk = q.dim(2), dv = v.dim(2), slotCount = state.dim(0);
        float[] st = stateOut.f;
        int so = stateOut.off;                                          // 0 when the output state aliases the state, as graphs bind it
        if (st != state.f || so != state.off) System.arraycopy(state.f, state.off, st, so, state.elements());
        par.forEach(heads, 1, h -> {
            float[] mem = new float[dv];
            for (int t = 0; t < tokens; t++) {
                int s = slots.i[slots.off + t], ob = out.off + (t * heads + h) * dv, vb = v.off + (t * heads + h) * dv;
                if (s < 0) {
                    Arrays.fill(out.f, ob, ob + dv, 0f);
                    continue;
                }
                if (s >= slotCount) throw new IndexOutOfBoundsException("gated_delta_rule slot " + s + " outside state [" + slotCount + "]");
                int sb = so + (s * heads + h) * dk * dv, qb = q.off + (t * heads + h) * dk, kb = k.off + (t * heads + h) * dk;
                if (positions.i[positions.off + t] == 0) Arrays.fill(st, sb, sb + dk * dv, 0f);
                float decay = (float) Math.exp(g.f[g.off + t * heads + h]), b = beta.f[beta.off + t * heads + h];
                Arrays.fill(mem, 0f);
                for (int i = 0; i < dk; i++) {                          // decay, and mem = S^T k on the decayed S
                    Simd.scale(decay, st, sb + i * dv, dv);
                    Simd.axpy(k.f[kb + i], st, sb + i * dv, mem, 0, dv);
                }
                for (int j = 0; j < dv; j++) mem[j] = (v.f[vb + j] - mem[j]) * b;     // the update, delta
                Arrays.fill(out.f, ob, ob + dv, 0f);
                for (int i = 0; i < dk; i++) {                          // S += k delta^T, and o = S^T q
                    Simd.axpy(k.f[kb + i], mem, 0, st, sb + i * dv, dv);
                    Simd.axpy(q.f[qb + i], st, sb + i * dv, out.f, ob, dv);
                }
            }
        });
    }

    /**
     * Depthwise causal convolution over each sequence's time axis, in place on the state (the last K-1
     * inputs of each slot, reset at position 0), summed in double as the op defines it. Channels are
     * independent, so each task takes a run of channels through all tokens in order.
     */
    void causalConv1d(Buf x, Buf w, Buf state, Buf slots, Buf positions, Buf out, Buf stateOut) {
        int tokens = x.dim(0), channels = x.dim(1), k = w.dim(1), hist = k - 1, slotCount = state.dim(0), run = 256;
        float[] st = stateOut.f, ws = new float[channels * k];
        int so = stateOut.off;                                          // 0 when the output state aliases the state, as graphs bind it
        if (st != state.f || so != state.off) System.arraycopy(state.f, state.off, st, so, state.elements());
        for (int ch = 0; ch < channels; ch++) {                   // the weight [C, K], widened once
            float[] row = new float[k];
            w.weightRow(ch, k, row);
            System.arraycopy(row, 0, ws, ch * k, k);
        }
        par.forEach(Math.ceilDiv(channels, run), 1, c -> {
            int c0 = c * run, c1 = Math.min(channels, c0 + run);
            for (int t = 0; t < tokens; t++) {
                int s = slots.i[slots.off + t];
                if (s < 0) {
                    Arrays.fill(out.f, out.off + t * channels + c0, out.off + t * channels + c1, 0f);
                    continue;
                }
                if (s >= slotCount) throw new IndexOutOfBoundsException("causal_conv1d slot " + s + " outside state [" + slotCount + "]");
                int base = so + s * hist * channels;
                if (positions.i[positions.off + t] == 0) for (int i = 0; i < hist; i++) Arrays.fill(st, base + i * channels + c0, base + i * channels + c1, 0f);
                for (int ch = c0; ch < c1; ch++) {
                    out.f[out.off + t * channels + ch] = dev.moec.ir.interp.Reference.causalConvAt(ws, k, ch, x.f[x.off + t * channels + ch], st, base, channels);
                }
                for (int i = 0; i + 1 < hist; i++) System.arraycopy(st, base + (i + 1) * channels + c0, st, base + i * channels + c0, c1 - c0);
                if (hist > 0) System.arraycopy(x.f, x.off + t * channels + c0, st, base + (hist - 1) * channels + c0, c1 - c0);
            }
        });
    }

    /** Per-row symmetric weight quantization to int8 or int4 (scale = max|w| / qmax), as the op defines it. */
    void weightQuant(Buf w, Buf q, Buf scale, int bits) {
        int qmax = (1 << (bits - 1)) - 1, k = w.dim(-1), rows = w.elements() / k;
        par.forEach(rows, 16, r -> {
            float[] row = new float[k];
            w.weightRow(r, k, row);
            scale.f[scale.off + r] = dev.moec.ir.interp.Reference.weightQuantRow(row, 0, k, qmax, q.i, q.off + r * k);
        });
    }

    /**
     * The unfused quantized SwiGLU experts (what fuse-moe turns into the dispatch / grouped chain), token by
     * token over the threads: the token quantized per row, its routed experts' gate and up rows in int32
     * (int8 read in place, other widths widened), SiLU(g) * u quantized again, the down rows, and the
     * weighted sum in double, all as the op defines them.
     */
    void moeExpertsQuant(Buf[] in, Buf out) {
        Buf x = in[0], weights = in[1], experts = in[2], gate = in[3], up = in[5], down = in[7];
        float[] sg = scales(in[4]), su = scales(in[6]), sd = scales(in[8]);
        int tokens = x.dim(0), hidden = x.dim(1), k = weights.dim(1), inter = gate.dim(1), count = gate.dim(0);
        par.forEach(tokens, 1, t -> {
            int[] qx = new int[hidden], qa = new int[inter], row = new int[Math.max(hidden, inter)];
            double xs = dev.moec.ir.interp.Reference.quantizeRow(x.f, x.off + t * hidden, hidden, qx, 0);
            double[] acc = new double[hidden];
            float[] act = new float[inter];
            for (int s = 0; s < k; s++) {
                int e = experts.i[experts.off + t * k + s];
                if (e < 0 || e >= count) throw new IndexOutOfBoundsException("expert " + e + " outside 0.." + (count - 1));
                for (int i = 0; i < inter; i++) {
                    long r = (long) e * inter + i;
                    double g = int8Dot(qx, gate, r, hidden, row) * xs * sg[e * inter + i], u = int8Dot(qx, up, r, hidden, row) * xs * su[e * inter + i];
                    act[i] = (float) (g / (1 + Math.exp(-g)) * u);
                }
                double as = dev.moec.ir.interp.Reference.quantizeRow(act, 0, inter, qa, 0);
                for (int o = 0; o < hidden; o++) {
                    acc[o] += weights.f[weights.off + t * k + s] * (int8Dot(qa, down, (long) e * hidden + o, inter, row) * as * sd[e * hidden + o]);
                }
            }
            for (int o = 0; o < hidden; o++) out.f[out.off + t * hidden + o] = (float) acc[o];
        });
    }

    /** An int8 activation row . an integer weight row (int8 read in place, others widened into scratch), exact. */
    private static long int8Dot(int[] x, Buf w, long row, int n, int[] scratch) {
        if (inPlaceI8(w)) return Simd.dotI8(x, 0, w.w, row * n, n);
        w.intRow(row, n, scratch);
        return Simd.dotI8(x, 0, scratch, n);
    }

    /** Each row's experts outside its {@code keep} best groups set to -inf, as the op defines it. */
    void groupLimit(Buf x, Buf out, int groups, int keep, String select) {
        int e = x.dim(-1);
        par.forEach(x.elements() / e, 8, r -> {
            double[] row = new double[e];
            for (int j = 0; j < e; j++) row[j] = x.f[x.off + r * e + j];
            boolean[] kept = dev.moec.ir.interp.Reference.keptExperts(row, groups, keep, select);
            for (int j = 0; j < e; j++) out.f[out.off + r * e + j] = kept[j] ? x.f[x.off + r * e + j] : Float.NEGATIVE_INFINITY;
        });
    }

    /** out[t, h] = W[h] x[t, h] per head, weight rows widened once per task and summed in double as the op defines it. */
    void headMatmul(Buf x, Buf w, Buf out) {
        int tokens = x.dim(0), heads = x.dim(1), k = x.dim(2), n = w.dim(1);
        par.forEach(heads, 1, h -> {
            float[] rows = new float[n * k], row = new float[k];
            for (int o = 0; o < n; o++) {
                w.weightRow((long) h * n + o, k, row);
                System.arraycopy(row, 0, rows, o * k, k);
            }
            for (int t = 0; t < tokens; t++) {
                for (int o = 0; o < n; o++) out.f[out.off + (t * heads + h) * n + o] = (float) dev.moec.ir.interp.Reference.dot(x.f, x.off + (t * heads + h) * k, rows, o * k, k);
            }
        });
    }

    /**
     * Grouped top-k routing (DeepSeek, MiniMax): the scores of all tokens, then each token's choice of
     * experts and weights over the threads, by the op's own definition (the same experts, the same bits).
     */
    void gatingTopk(Buf x, Buf bias, Buf weights, Buf experts, Attrs a) {
        int tokens = x.dim(0), e = x.dim(1), k = (int) a.i("k");
        float[] scores = dev.moec.ir.interp.Reference.gatingScores(view(x), a);
        float[] b = scales(bias);
        par.forEach(tokens, 8, t -> dev.moec.ir.interp.Reference.gatingChoice(scores, t * e, e, b, a, weights.f, weights.off + t * k, experts.i, experts.off + t * k));
    }

    /**
     * The DeepSeek-V3.2 lightning indexer: per token, score[s] = scale * sum_h w[t, h] * relu(q[t, h] . k[s])
     * over its positions s (through the block table), and the topk best positions, -1 padded. The tokens
     * run in parallel; each is computed in double and ranked as the op defines it, so the choice is the
     * op's exactly (a tie broken differently would change which positions the sparse attention reads).
     */
    void indexerTopk(Buf q, Buf kc, Buf w, Buf table, Buf slots, Buf positions, Buf out, int topk, double scale) {
        PagedCache paged = paged("indexer_topk", kc, table);
        int tokens = q.dim(0), heads = q.dim(1), d = q.dim(2);
        par.forEach(tokens, 1, t -> {
            Arrays.fill(out.i, out.off + t * topk, out.off + (t + 1) * topk, -1);
            if (slots.i[slots.off + t] < 0) return;
            int n = positions.i[positions.off + t] + 1;
            double[] score = new double[n];
            for (int s = 0; s < n; s++) {
                int kb = kc.off + paged.row(slots.i[slots.off + t], s) * d;
                double acc = 0;
                for (int h = 0; h < heads; h++) acc += w.f[w.off + t * heads + h] * Math.max(0, dev.moec.ir.interp.Reference.dot(q.f, q.off + (t * heads + h) * d, kc.f, kb, d));
                score[s] = acc * scale;
            }
            int[] best = dev.moec.ir.interp.Reference.topIndices(score, Math.min(topk, n));
            System.arraycopy(best, 0, out.i, out.off + t * topk, best.length);
        });
    }

    /** Static W8A8 activation quantization: clamp(round(x / scale + offset), -128, 127), in double as the op defines it. */
    void staticQuant(Buf x, Buf scale, Buf offset, Buf out) {
        double sc = scales(scale)[0], off = scales(offset)[0];
        int n = x.elements(), chunk = 1 << 14;
        par.forEach(Math.ceilDiv(n, chunk), 1, c -> {
            for (int j = c * chunk; j < Math.min(n, (c + 1) * chunk); j++) out.i[out.off + j] = dev.moec.ir.interp.Reference.staticQuantOf(x.f[x.off + j], sc, off);
        });
    }

    /**
     * Static W8A8 matmul: (int8 x . int8 weight + quant_bias) * deq_scale per output channel, the int8 rows
     * read in place and summed exactly in int32, so the result is the op's to the bit.
     */
    void quantMatmulStatic(Buf x, Buf w, Buf bias, Buf deq, Buf out) {
        int n = w.dim(0), k = w.dim(1), rows = x.elements() / k;
        float[] deqScale = scales(deq);
        int[] qBias = quantBias(bias);
        boolean inPlace = inPlaceI8(w);
        float[] xf = inPlace && rows >= 4 ? exact(x, rows * k) : null;
        par.forEach(Math.ceilDiv(n, STREAM_BLOCK), 1, b -> {
            int[] row = inPlace ? null : new int[k], acc = new int[rows];
            for (int o = b * STREAM_BLOCK; o < Math.min(n, (b + 1) * STREAM_BLOCK); o++) {
                if (inPlace) i8Rows(x.i, x.off, xf, k, 0, rows, w.w, o, acc);
                else {
                    w.intRow(o, k, row);
                    for (int r = 0; r < rows; r++) acc[r] = Simd.dotI8(x.i, x.off + r * k, row, k);
                }
                for (int r = 0; r < rows; r++) out.f[out.off + r * n + o] = (float) (((long) acc[r] + qBias[o]) * (double) deqScale[o]);
            }
        });
    }

    /** The int32 quant_bias of a static matmul, read once per weight. */
    private final Map<Buf, int[]> biasCache = java.util.Collections.synchronizedMap(new IdentityHashMap<>());

    private int[] quantBias(Buf bias) {
        java.util.function.Function<Buf, int[]> read = b -> {
            int[] v = new int[b.elements()];
            b.intRow(0, v.length, v);
            return v;
        };
        return bias.isWeight() ? biasCache.computeIfAbsent(bias, read) : read.apply(bias);
    }

    private interface Unary { float of(float v); }

    private interface Binary { float of(float p, float q); }

    /** out = f(x) element by element, in chunks over the threads: the unary elementwise ops, each as its op defines it. */
    void unary(Buf x, Buf out, Unary f) {
        int n = out.elements(), chunk = 1 << 14, xo = x.off, oo = out.off;
        par.forEach((n + chunk - 1) / chunk, 1, c -> {
            for (int j = c * chunk; j < Math.min(n, (c + 1) * chunk); j++) out.f[oo + j] = f.of(x.f[xo + j]);
        });
    }

    /** out = f(a, b) element by element (same shapes), in chunks over the threads. */
    void binary(Buf a, Buf b, Buf out, Binary f) {
        int n = out.elements(), chunk = 1 << 14, ao = a.off, bo = b.off, oo = out.off;
        par.forEach((n + chunk - 1) / chunk, 1, c -> {
            for (int j = c * chunk; j < Math.min(n, (c + 1) * chunk); j++) out.f[oo + j] = f.of(a.f[ao + j], b.f[bo + j]);
        });
    }

    /** x / sqrt(sum(x^2) + eps) per row of the last dimension, summed in double as the op defines it. */
    void l2Norm(Buf x, Buf out, double eps) {
        int d = x.dim(-1), rows = x.elements() / d;
        par.forEach(rows, 4, r -> dev.moec.ir.interp.Reference.l2NormRow(x.f, x.off + r * d, d, eps, out.f, out.off + r * d));
    }

    /** (x - mean) / sqrt(var + eps) * w + b per row, in double as the op defines it; w and b widened once. */
    void layerNorm(Buf x, Buf w, Buf b, Buf out, double eps) {
        int d = w.dim(0), rows = x.elements() / d;
        float[] ws = new float[d], bs = new float[d];
        w.weightRow(0, d, ws);
        b.weightRow(0, d, bs);
        par.forEach(rows, 4, r -> dev.moec.ir.interp.Reference.layerNormRow(x.f, x.off + r * d, ws, bs, eps, out.f, out.off + r * d));
    }

    void silu(Buf x, Buf out) { unary(x, out, v -> v / (1f + (float) Math.exp(-v))); }

    void mul(Buf a, Buf b, Buf out) { binary(a, b, out, (p, q) -> p * q); }

    /** out = a + b element by element (same shapes), a vector loop in chunks over the threads. */
    void add(Buf a, Buf b, Buf out) {
        int n = out.elements(), chunk = 1 << 14;
        par.forEach(Math.ceilDiv(n, chunk), 1, c -> Simd.add(a.f, a.off + c * chunk, b.f, b.off + c * chunk, out.f, out.off + c * chunk, Math.min(chunk, n - c * chunk)));
    }

    static float dot(float[] a, int ao, float[] b, int bo, int n) {
        return Simd.dot(a, ao, b, bo, n);
    }

    /** The panel of a weight stored in panels of {@code type} holding channel o0 (a panel's first) of matrix {@code matrix} of n rows. */
    private static long panelOf(int matrix, int n, int o0, DType type) {
        int width = Simd.panelWidth(type);
        if (o0 % width != 0) throw new IllegalArgumentException("channel " + o0 + " does not start a " + type + " panel of " + width);
        return (long) matrix * Math.ceilDiv(n, width) + o0 / width;
    }

    /** Weights the row-major vector loops read in place from the mapping (MLA's bf16, static W8A8's int8); other dtypes are widened per row. */
    private static boolean inPlaceBf16(Buf w) { return w.isWeight() && w.dtype == DType.BF16; }

    private static boolean inPlaceI8(Buf w) { return w.isWeight() && w.dtype == DType.I8; }

    /** int4 weights are read in place, two a byte, when every row starts on a byte (an even row length). */
    private static boolean inPlaceI4(Buf w, int cols) { return w.isWeight() && w.dtype == DType.I4 && cols % 2 == 0; }

    /**
     * Activation rows from which a matmul widens each weight panel once into floats for six-row tiles
     * ({@link #storedPanelRows}; int4 experts turn theirs, {@link #panelRows}) instead of multiplying the
     * weights as they stream in: from here on the widening is shared by enough rows to pay for the float
     * panel's trip through L2 (JMH, int8 q_proj at 8 rows, row-major then: 442 to 338 µs).
     */
    static final int PANEL_ROWS = 16;

    /**
     * A thread's scratch, kept between launches: a weight panel and its results, the int8 activations as
     * floats, and the register loops' spill. A prefill's grouped matmul runs a thousand (expert, block) tasks,
     * and a fresh 128 KB panel for each was garbage enough to slow it by a third.
     */
    private static final class PanelScratch {
        private static final ThreadLocal<PanelScratch> OF_THREAD = ThreadLocal.withInitial(PanelScratch::new);
        private final float[][] turned = new float[PROMPT_BLOCK / PANEL_BLOCK][0];   // each [k, PANEL_BLOCK]: a panel turned (Simd.turn)
        private int[] acc = new int[0];                                     // [activation rows, rows]
        private final float[][] exact = {new float[0], new float[0]};      // each [activation rows, k]: int8 activations as floats, exact and streamed
        private float[] normed = new float[0];                              // [hidden] or [intermediate]: one row normed, or one SwiGLU row, before it is quantized
        private byte[] bytes = new byte[0];                                 // [activation rows, k padded]: int8 activations for the VNNI tiles
        private int[] rowSums = new int[0];                                 // [activation rows]: their sums
        private float[] scores = new float[0];                              // [tokens, heads, positions]: an attention task's scores
        private float[] maxima = new float[0], sums = new float[0];         // [tokens, heads]: their running max and sum of exps
        private float[] values = new float[0];                              // [tokens, heads, head_dim]: their weighted sums of values
        private float[] widened = new float[0];                             // [PANEL_BLOCK, kv_heads, head_dim]: a packed cache's rows as floats
        final float[] four = new float[4];                                  // four heads' scores of one position
        final float[] spill = new float[Simd.SPILL];
        float touched;                                                      // what touch() read, kept so its reads are not dropped
        final float[] block = new float[16 * Simd.PANEL_WIDTH];             // [PANEL_BLOCK, 16]: one column block widened, for Simd.turn
        private java.lang.foreign.MemorySegment rows = java.lang.foreign.MemorySegment.NULL;   // [PANEL_BLOCK, k] weights as stored, off the heap

        /**
         * A copy of a panel's weight rows: read from the mapping in one run, then turned from L2. Turned
         * straight from the mapping, 32 rows read 16 bytes at a time from 32 places, the prefetcher fell
         * behind and the experts' gate_up of a prompt took a third longer (JMH, weights from memory).
         */
        java.lang.foreign.MemorySegment rows(long bytes) {
            if (rows.byteSize() < bytes) rows = java.lang.foreign.Arena.ofAuto().allocate(bytes, 64);
            return rows;
        }

        static PanelScratch get() { return OF_THREAD.get(); }

        /** Arrays up to this many elements (16 MB) are kept for the next launch; a longer prompt's are not. */
        private static final int KEEP = 1 << 22;

        float[] turned(int n) { return turned(0, n); }

        float[] turned(int i, int n) {
            float[] a = fit(turned[i], n);
            if (a.length <= KEEP) turned[i] = a;
            return a;
        }

        int[] acc(int n) {
            int[] a = acc.length >= n ? acc : new int[n];
            if (a.length <= KEEP) acc = a;
            return a;
        }

        float[] normed(int n) { return normed = fit(normed, n); }

        /** The int8 activations as bytes for the VNNI tiles ({@link Int8Rows}). */
        byte[] bytes(int n) {
            byte[] a = bytes.length >= n ? bytes : new byte[n];
            if (a.length <= KEEP) bytes = a;
            return a;
        }

        /** Their rows' sums. */
        int[] rowSums(int n) {
            int[] a = rowSums.length >= n ? rowSums : new int[n];
            if (a.length <= KEEP) rowSums = a;
            return a;
        }

        /** Array {@code slot} (0: exact floats, 1: streamed) of the int8 activations as floats. */
        float[] exact(int slot, int n) {
            float[] a = fit(exact[slot], n);
            if (a.length <= KEEP) exact[slot] = a;
            return a;
        }

        /*
         * An attention task's arrays, kept from task to task: a prompt's tiles took a fresh score array of
         * 12 x 16 x 512 floats each, 430 MB a 512-token prompt, and without transparent huge pages the
         * page faults of a growing heap were two fifths of attention's samples in a profile.
         */

        /** Scores, as the last task left them: a task reads only the ones it wrote. */
        float[] scores(int n) {
            float[] a = fit(scores, n);
            if (a.length <= KEEP) scores = a;
            return a;
        }

        float[] maxima(int n) { return maxima = fit(maxima, n); }

        float[] sums(int n) { return sums = fit(sums, n); }

        /** Room for a packed (bf16 or int8) cache's rows of up to {@link #PANEL_BLOCK} positions, widened. */
        float[] widened(int n) { return widened = fit(widened, n); }

        /** Weighted sums of values, their first n zeroed. */
        float[] values(int n) {
            float[] a = fit(values, n);
            if (a == values) Arrays.fill(a, 0, n, 0f);
            else if (a.length <= KEEP) values = a;
            return a;
        }

        /** {@code have} if it holds n elements, else a new array of n. */
        private static float[] fit(float[] have, int n) { return have.length >= n ? have : new float[n]; }

        private AttentionPlan attention = new AttentionPlan(0);

        /** The launching thread's {@link AttentionPlan}, for a launch of up to {@code tokens} tokens. */
        AttentionPlan attentionPlan(int tokens) {
            if (attention.slot.length < tokens) attention = new AttentionPlan(tokens);
            return attention;
        }
    }

    /**
     * A decode attention launch's bookkeeping, kept by the launching thread from launch to launch: each
     * launch took fresh arrays for it (its tiles, the parts of split tokens and their partial sums), and a
     * decode step's garbage, until the heap's first collection, lands on untouched pages whose first write
     * faults (docs/performance-log.md, twelfth session). Sized for {@code tokens} tokens; the partial sums grow as needed.
     */
    static final class AttentionPlan {
        final int[] slot, last, tileStart, parts, first, reach;
        private float[] partials = new float[0], merged = new float[0];

        AttentionPlan(int tokens) {
            slot = new int[tokens];
            last = new int[tokens];
            tileStart = new int[tokens + 1];
            parts = new int[tokens];
            first = new int[tokens + 1];
            reach = new int[tokens];
        }

        /** Room for the partial sums of a launch's split tokens: n floats, written by its tasks. */
        float[] partials(int n) { return partials = PanelScratch.fit(partials, n); }

        /** A merge's accumulator of n floats. */
        float[] merged(int n) { return merged = PanelScratch.fit(merged, n); }
    }

    /**
     * Rows [r0, r1) of x (int8 values as exact floats, row r at x0 + r * k) times quantized weight rows wr0
     * .. wr0 + m - 1 read in place (int4 experts, or int8 not stored in panels; m at most
     * {@link #PROMPT_BLOCK}) for a prompt's rows: the weight rows widened into floats and turned, a panel of
     * {@link #PANEL_BLOCK} at a time, so each column's channels are contiguous ({@link Simd#turn}); then
     * {@link #panelTiles}: acc[(r - r0) * m + d] = the dot product exactly in int32.
     */
    private static void panelRows(float[] x, int x0, int k, int r0, int r1, java.lang.foreign.MemorySegment w, long wr0, DType type, int m, int[] acc) {
        PanelScratch scratch = PanelScratch.get();
        float[][] turned = new float[Math.ceilDiv(m, PANEL_BLOCK)][];
        for (int p = 0; p < turned.length; p++) {
            turned[p] = scratch.turned(p, k * PANEL_BLOCK);                 // [k, PANEL_BLOCK]
            int mp = Math.min(PANEL_BLOCK, m - p * PANEL_BLOCK);
            long from = (wr0 + (long) p * PANEL_BLOCK) * k, bytes = type.bytes((long) mp * k);
            java.lang.foreign.MemorySegment rows = scratch.rows(bytes);  // the panel's weight rows, read in one run
            java.lang.foreign.MemorySegment.copy(w, type.bytes(from), rows, 0, bytes);
            Simd.turn(rows, 0, type, k, mp, turned[p], scratch.block);
        }
        panelTiles(x, x0, k, r0, r1, turned, false, m, acc, null, 0, 0, scratch.spill);
    }

    /**
     * {@link #panelRows} for a weight stored in panels ({@link WeightPanels}): its panels from
     * {@code panel0} on (of k columns each, in the weight's {@code type}) and m channels in all. A prompt's
     * rows (from {@link #PANEL_ROWS} on) widen each panel once into floats (straight conversions, no
     * transposition; an int8 panel into two) for {@link #panelTiles}, x exact floats. Fewer rows, a decode
     * step's, multiply the stored panels as they stream in ({@link Simd#panelStream}), up to
     * {@link Simd#streamRows} rows a pass, each int8 panel {@link Simd#BIASED_TERMS} columns at a time so
     * the rows' passes find them in L1; int8 x there is {@link #streamed}, and the weights' bias, 128 times
     * each row's sum, is taken back at the end.
     */
    private static void storedPanelRows(float[] x, int x0, int k, int r0, int r1, java.lang.foreign.MemorySegment panels, long panel0, DType type,
                                        int m, int[] acc, float[] out, int oo, int os) {
        PanelScratch scratch = PanelScratch.get();
        boolean bf16 = type == DType.BF16;
        int width = Simd.panelWidth(type), count = Math.ceilDiv(m, width);
        if (r1 - r0 >= PANEL_ROWS) {
            float[][] turned = new float[Math.ceilDiv(m, PANEL_BLOCK)][];
            for (int p = 0; p < turned.length; p++) {
                turned[p] = scratch.turned(p, k * PANEL_BLOCK);
                if (bf16) Simd.widenBf16Panel(panels, type.bytes((panel0 + p) * k * PANEL_BLOCK), k, turned[p]);
                else Simd.widenI8Half(panels, (panel0 + p / 2) * k * width, k, p % 2, turned[p]);   // an int8 panel is two float ones
            }
            panelTiles(x, x0, k, r0, r1, turned, bf16, m, acc, out, oo, os, scratch.spill);
            return;
        }
        if (bf16 && Bf16Tiles.AVAILABLE && k > 0) {
            Bf16Tiles.rows(x, x0, k, r0, r1, panels, type.bytes(panel0 * k * width), k, m, out, oo, os);
            return;
        }
        if (!bf16) Arrays.fill(acc, 0, (r1 - r0) * m, 0);
        int chunk = bf16 ? k : Simd.BIASED_TERMS, tile = Simd.streamRows(type);
        for (int p = 0; p < count; p++) {
            int mp = Math.min(width, m - p * width);
            for (int c0 = 0; c0 < k; c0 += chunk) {
                int len = Math.min(k - c0, chunk);
                long wb = type.bytes(((panel0 + p) * k + c0) * width);
                for (int r = r0; r < r1; r += tile) {
                    int rows = Math.min(tile, r1 - r);
                    if (bf16) Simd.panelStream(x, x0 + r * k, k, rows, panels, wb, type, len, null, out, oo + (r - r0) * os + p * width, os, mp, scratch.spill);
                    else Simd.panelStream(x, x0 + r * k + c0, k, rows, panels, wb, type, len, acc, null, (r - r0) * m + p * width, m, mp, scratch.spill);
                }
            }
        }
        if (bf16) return;
        for (int r = r0; r < r1; r++) {
            int bias = 128 * Simd.streamRowSum(x, x0 + r * k, k), at = (r - r0) * m;
            for (int d = 0; d < m; d++) acc[at + d] -= bias;
        }
    }

    /** Rows [r0, r1) times float panels {@code turned} (m channels in all), six rows at a time against every panel while they are in L1; results as {@link #panelRows}'. */
    private static void panelTiles(float[] x, int x0, int k, int r0, int r1, float[][] turned, boolean bf16, int m,
                                   int[] acc, float[] out, int oo, int os, float[] spill) {
        if (!bf16) Arrays.fill(acc, 0, (r1 - r0) * m, 0);
        int chunk = bf16 ? k : Simd.EXACT_TERMS;
        for (int c0 = 0; c0 < k; c0 += chunk) {
            int len = Math.min(k - c0, chunk);
            for (int r = r0; r < r1; r += 6) {                           // the six rows stay in L1 across the panels
                for (int p = 0; p < turned.length; p++) {
                    int mp = Math.min(PANEL_BLOCK, m - p * PANEL_BLOCK), rows = Math.min(6, r1 - r);
                    if (bf16) Simd.panel6(x, x0 + r * k, k, rows, turned[p], 0, k, null, out, oo + (r - r0) * os + p * PANEL_BLOCK, os, mp, spill);
                    else Simd.panel6(x, x0 + r * k + c0, k, rows, turned[p], c0, len, acc, null, (r - r0) * m + p * PANEL_BLOCK, m, mp, spill);
                }
            }
        }
    }

    /**
     * acc[r - r0] = int8 x row r (ints from x0 on; floats from 0 in xf) . int8 weight row wr in int32, for r in [r0, r1). Four rows at a time share each weight load (float-accumulated, exact; {@code xf} is x as
     * floats); two remaining rows share it in int32, and a last one runs the single-row int32 loop on {@code x}.
     */
    private static void i8Rows(int[] x, int x0, float[] xf, int k, int r0, int r1, java.lang.foreign.MemorySegment w, long wr, int[] acc) {
        int r = r0;
        for (; r + 4 <= r1; r += 4) Simd.dotI8x4(xf, r * k, k, w, wr * k, k, acc, r - r0);
        for (; r + 2 <= r1; r += 2) Simd.dotI8x2(x, x0 + r * k, k, w, wr * k, k, acc, r - r0);
        for (; r < r1; r++) acc[r - r0] = Simd.dotI8(x, x0 + r * k, w, wr * k, k);
    }
}
