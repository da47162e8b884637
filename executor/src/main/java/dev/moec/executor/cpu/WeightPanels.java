package dev.moec.executor.cpu;

import dev.moec.backend.Kernel;
import dev.moec.backend.KernelGraph;
import dev.moec.ir.DType;
import dev.moec.ir.TensorType;
import dev.moec.ir.interp.TensorStore;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.LongFunction;

/**
 * The CPU's own layout for the weights its matmuls stream: each matrix's rows cut into panels of W
 * output channels, every panel stored column by column, the panel's channels of one column side by side:
 * {@code [matrices][ceil(rows / W)][cols][W]}, rows past the matrix weighing zero. It is to the CPU what
 * FRACTAL_NZ is to the Ascend matmuls: a column's channels are one or two vector loads, so a matmul
 * multiplies a broadcast activation into them with no lane sums and no transposition (see
 * {@link Simd#panelStream}, {@link Simd#widenBf16Panel} and {@link Simd#widenI8Half}), and a task's channels
 * are one contiguous run of memory.
 * <ul>
 *   <li>bf16: W = {@link Simd#PANEL_WIDTH} (two vectors), elements as stored, in channel order.
 *   <li>int8: W = {@link Simd#I8_PANEL_WIDTH} (one vector of ints), each weight w stored as w + 128
 *       ({@link Simd#biased}), channel j in byte {@link Simd#i8Slot}(j) of its column, so that byte b of
 *       every lane is L contiguous channels.
 *   <li>int8 where this machine has the {@link Vnni} tiles: W = 64, biased alike, but four neighbouring
 *       columns of a channel side by side ({@link Vnni#slot}): {@code [matrices][ceil(rows / 64)][ceil(cols / 4)][4 blocks][16 channels][4 columns]},
 *       columns past the matrix weighing zero.
 * </ul>
 *
 * <p>Made when a graph is bound, not at compile time, because W follows the machine's vectors (32 and
 * 64 with AVX-512, 16 and 32 with AVX2) and one artifact runs on both; each weight once per model, over the executor's
 * threads (the bench model's 1.4 GB in 2.5 to 5 seconds). The artifact's row-major mapping stays the
 * weight's {@link Buf#w}, for every other reader (an embedding table tied to the lm_head, the reference
 * semantics); after load its pages are no longer read by the matmuls and the page cache may drop them.
 *
 * <p>The panels are carved from slabs of {@link PageMemory} (2 MB pages where the OS gives them, so a
 * stream crosses a page boundary every 2 MB rather than every 4 KB), each panel set starting on a cache
 * line; a weight larger than a slab gets a mapping of its own.
 */
public final class WeightPanels {
    /** Bytes of one slab the panels are carved from: 32 huge pages. */
    static final long SLAB = 32 * PageMemory.HUGE_PAGE;

    private final Parallel par;
    private final boolean vnni;                                                   // int8 in Vnni's layout
    private final Map<String, MemorySegment> made = new ConcurrentHashMap<>();   // by weight source
    private final Map<String, float[]> norms = new ConcurrentHashMap<>();        // by weight source: [rows] each row's 2-norm
    private final Arena arena = Arena.ofAuto();
    private MemorySegment slab;                                                   // guarded by this
    private long slabUsed;                                                        // guarded by this
    private volatile long bytes, nanos;

    /** Panels for {@code par}'s threads, int8 in {@link Vnni}'s layout where this machine has its tiles. */
    public WeightPanels(Parallel par) {
        this.par = par;
        this.vnni = Vnni.AVAILABLE;
    }

    /** Whether its int8 panels are in {@link Vnni}'s layout. */
    boolean vnni() { return vnni; }

    /** Whether operand {@code operand} of a {@code kernel} launch is a weight read through panels when it is stored in {@code d}. */
    static boolean reads(Kernel kernel, int operand, DType d) {
        return switch (kernel) {
            case MATMUL, GROUPED_MATMUL -> operand == 1 && d == DType.BF16;
            case QUANT_MATMUL, GROUPED_QUANT_MATMUL -> operand == 2 && d == DType.I8;
            default -> false;
        };
    }

    /** The weight buffers of {@code g} that some matmul launch streams through panels. */
    static Set<String> streamed(KernelGraph g) {
        Set<String> out = new HashSet<>();
        for (KernelGraph.Launch l : g.launches()) {
            for (int o = 0; o < l.inputs().size(); o++) {
                KernelGraph.Buffer b = g.buffer(l.inputs().get(o));
                if (b.role() == KernelGraph.Role.WEIGHT && reads(l.kernel(), o, b.type().dtype())) out.add(b.name());
            }
        }
        return out;
    }

    /** Makes the panels of every weight {@code g}'s matmuls stream, from {@code weights}: what loading a model does. */
    public void prepare(KernelGraph g, TensorStore weights) {
        for (String name : streamed(g)) of(g.buffer(name).source(), weights);
    }

    /** The panels of weight {@code source} of {@code weights}, made on first use. */
    MemorySegment of(String source, TensorStore weights) {
        return made.computeIfAbsent(source, s -> make(s, weights));
    }

    /**
     * The 2-norm of each row of bf16 matrix {@code source} (from its row-major mapping), rounded up to a
     * float, made on first use over the threads: what {@link GreedyHead} bounds its approximations by. A
     * row holding a value that is not finite has a norm that is not finite.
     */
    float[] rowNorms(String source, TensorStore weights) {
        return norms.computeIfAbsent(source, s -> {
            TensorType t = weights.type(s);
            if (t.dtype() != DType.BF16 || t.shape().rank() != 2) throw new IllegalArgumentException("row norms of " + s + " " + t + ": a bf16 matrix only");
            return rowNorms(weights.raw(s), Math.toIntExact(t.shape().sizes()[0]), Math.toIntExact(t.shape().sizes()[1]), par);
        });
    }

    /** {@link #rowNorms(String, TensorStore)} of a row-major bf16 matrix of rows x cols, over {@code par}'s threads. */
    static float[] rowNorms(MemorySegment raw, int rows, int cols, Parallel par) {
        float[] out = new float[rows];
        int block = 1024;
        par.forEach(Math.ceilDiv(rows, block), 1, b -> {
            for (int r = b * block; r < Math.min(rows, (b + 1) * block); r++) {
                double sum = 0;                                          // each square exact in double; the sum's rounding is covered below
                for (int c = 0; c < cols; c++) {
                    double v = Simd.bf16At(raw, (long) r * cols + c);
                    sum += v * v;
                }
                out[r] = Math.nextUp((float) (Math.sqrt(sum) * (1 + 0x1p-40)));
            }
        });
        return out;
    }

    /** Bytes of all panels made so far. */
    public long bytes() { return bytes; }

    /** Time spent making them, in milliseconds. */
    public long millis() { return nanos / 1_000_000; }

    private synchronized MemorySegment make(String source, TensorStore weights) {
        long start = System.nanoTime();
        TensorType t = weights.type(source);
        long[] s = t.shape().sizes();
        if (s.length < 2 || s.length > 3) throw new IllegalArgumentException("weight " + source + " " + t + " is not a matrix or a stack of matrices");
        int matrices = s.length == 3 ? Math.toIntExact(s[0]) : 1, rows = Math.toIntExact(s[s.length - 2]), cols = Math.toIntExact(s[s.length - 1]);
        MemorySegment out = pack(weights.raw(source), t.dtype(), matrices, rows, cols, vnni, this::carve, par);
        bytes += out.byteSize();
        nanos += System.nanoTime() - start;
        return out;
    }

    /** {@code size} zeroed bytes from the current slab (a new one when it is full; a mapping of their own past a slab). */
    private MemorySegment carve(long size) {
        if (size > SLAB / 2) return PageMemory.allocate(size, arena);
        long at = (slabUsed + 63) & -64L;
        if (slab == null || at + size > slab.byteSize()) {
            slab = PageMemory.allocate(SLAB, arena);
            at = 0;
        }
        slabUsed = at + size;
        return slab.asSlice(at, size);
    }

    /** Bytes of {@code matrices} matrices of rows x cols elements of {@code d} in panels (int8 in {@link Vnni}'s layout where {@code vnni}). */
    static long panelBytes(DType d, int matrices, int rows, int cols, boolean vnni) {
        int w = Simd.panelWidth(d);
        long panels = (long) matrices * Math.ceilDiv(rows, w);
        return vnni && d == DType.I8 ? panels * Vnni.panelBytes(cols) : d.bytes(panels * cols * w);
    }

    /** Row-major matrices (in {@code nd}) into panels allocated from {@code arena}, one panel a task. */
    static MemorySegment pack(MemorySegment nd, DType d, int matrices, int rows, int cols, boolean vnni, Arena arena, Parallel par) {
        return pack(nd, d, matrices, rows, cols, vnni, size -> arena.allocate(size, 64), par);
    }

    /** Row-major matrices (in {@code nd}) into panels in zeroed memory from {@code allocate}, one panel a task. */
    static MemorySegment pack(MemorySegment nd, DType d, int matrices, int rows, int cols, boolean vnni, LongFunction<MemorySegment> allocate, Parallel par) {
        if (d != DType.BF16 && d != DType.I8) throw new IllegalArgumentException("no weight panels of " + d);
        int size = d.bitsPerElement() / 8, w = Simd.panelWidth(d), panels = Math.ceilDiv(rows, w);
        boolean i8 = d == DType.I8;
        long panelSize = panelBytes(d, 1, w, cols, vnni);
        MemorySegment out = allocate.apply(panelBytes(d, matrices, rows, cols, vnni));
        par.forEach(matrices * panels, 1, t -> {
            int m = t / panels, p = t % panels, mp = Math.min(w, rows - p * w);
            byte[] src = new byte[mp * cols * size], dst = new byte[Math.toIntExact(panelSize)];   // the panel's rows as stored; the panel
            MemorySegment.copy(nd, ValueLayout.JAVA_BYTE, ((long) m * rows + (long) p * w) * cols * size, src, 0, src.length);
            if (i8) {                                                    // biased, each channel in its slot; rows and columns past the matrix weigh 0
                java.util.Arrays.fill(dst, Simd.biased((byte) 0));
                for (int j = 0; j < mp; j++) {
                    for (int c = 0; c < cols; c++) dst[Math.toIntExact(vnni ? Vnni.slot(j, c) : (long) c * w + Simd.i8Slot(j))] = Simd.biased(src[j * cols + c]);
                }
            } else {
                for (int j = 0; j < mp; j++) {
                    for (int c = 0; c < cols; c++) {
                        for (int b = 0; b < size; b++) dst[(c * w + j) * size + b] = src[(j * cols + c) * size + b];
                    }
                }
            }
            MemorySegment.copy(dst, 0, out, ValueLayout.JAVA_BYTE, (long) t * dst.length, dst.length);
        });
        return out;
    }
}
