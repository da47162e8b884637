package dev.moec.executor.cpu;

import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.util.Arrays;
import java.util.Objects;

/**
 * bf16 decode tiles in x86-64 machine code: a decode step's few activation rows (f32) times a weight's
 * bf16 panels ({@link WeightPanels}' layout: a column of a panel is 32 channels in 64 bytes, each int32
 * lane two neighbouring channels) as they stream in from memory, every row in one pass.
 *
 * <p>Why machine code: the Vector API tile takes four rows a pass, so eight rows read each panel twice,
 * the first time from memory at eight FMAs a column (which asks memory for twice the bytes per second
 * that sixteen FMAs would) and the second from L2 while memory idles; the 8-row lm_head ran at two
 * thirds of the FMA peak. One Vector API pass over eight rows ran slower still from memory: its loop of
 * about 31 instructions a column leaves the out-of-order window only ten columns (640 bytes) of loads in
 * flight, and the JIT has no prefetch. These tiles take up to {@link #MAX_ROWS} rows a pass, with each
 * row's activation broadcast from memory into the FMA itself, and prefetch the panel
 * {@link #PREFETCH} bytes ahead. JMH, the 8-row lm_head ([8, 1024] x [151936, 1024]), 2 threads: the
 * Vector API tiles 16.5 ms (and 22.5-22.9 ms in a slower stretch, when these tiles took 14.8-16.0);
 * these tiles 19.1 ms without the prefetch, 16.9 prefetching 256 bytes ahead, 14.1 at 2 KB, 13.2 at
 * 4 KB, 14.8 at 8 KB and 16.6 at 16 KB. In the bench model at batch 8, the lm_head took 16.2-18.0 ms
 * a step against 21.2-21.7 for the Vector API tiles in the same minutes.
 *
 * <p>Per column: one load, a shift (the even channels as floats: bf16 is the high half of an f32) and a
 * mask (the odd ones), then for each row two FMAs into its even and odd sums, {@code acc = w * x + acc}
 * in column order, one rounding each (the loop takes columns in pairs; an odd last one is added in Java
 * with {@link Math#fma} on the same chains): the Vector API four-row tile's sums, to the bit.
 *
 * <p>Used where {@link X86Asm#runsHere} (AVX-512F, Linux x86-64, 512-bit vectors) and
 * {@code -Dmoec.bf16Tiles} is not false; elsewhere the Vector API tiles run.
 */
public final class Bf16Tiles {
    private Bf16Tiles() {}

    /** Channels of a panel ({@link Simd#PANEL_WIDTH} with AVX-512); a column is 64 bytes. */
    static final int WIDTH = 32;
    /** Rows a tile takes at most: two sums a row in zmm0..23; zmm25..30 hold two columns, their even and odd channels, and zmm31 the mask. */
    static final int MAX_ROWS = 12;
    /** How far ahead of the column it multiplies a tile prefetches its panel, in bytes ({@code -Dmoec.bf16Prefetch}; 0 for none). */
    static final int PREFETCH = Integer.getInteger("moec.bf16Prefetch", 4096);

    private static final X86Asm.Tiles TILES = new X86Asm.Tiles(key -> code((int) (key >>> 32), (int) key, PREFETCH)),
            DOT_TILES = new X86Asm.Tiles(key -> dotCode((int) (key >>> 32), (int) key, PREFETCH));
    private static final ThreadLocal<float[][]> SUMS = ThreadLocal.withInitial(() -> new float[][] {new float[8 * MAX_ROWS * WIDTH]});

    /** Whether the bf16 decode matmuls run on these tiles on this machine. */
    public static final boolean AVAILABLE = available();

    /**
     * Whether the bf16 dot-product tiles ({@link #dotSums}: AVX512_BF16's {@code vdpbf16ps}) run here, for
     * the first, approximate pass of a greedy lm_head ({@link GreedyHead}); {@code -Dmoec.bf16Dot=false}
     * turns them off.
     */
    public static final boolean DOT_AVAILABLE = AVAILABLE && X86Asm.runsHere("moec.bf16Dot", () -> dotTile(1, Integer.BYTES), "avx512f", "avx512_bf16");

    private static boolean available() {
        return Simd.PANEL_WIDTH == WIDTH && X86Asm.runsHere("moec.bf16Tiles", () -> tile(1, Float.BYTES), "avx512f");
    }

    /**
     * Rows [r0, r1) of {@code x} (row r from float x0 + r * xs, k values) times the m channels of the bf16
     * panels from byte {@code panel0} of {@code panels} (k columns each, k at least 1): channel d of row r
     * to out[oo + (r - r0) * os + d]. One call of a tile takes up to {@link #MAX_ROWS} rows over all the
     * panels.
     */
    static void rows(float[] x, int x0, int xs, int r0, int r1, MemorySegment panels, long panel0, int k, int m, float[] out, int oo, int os) {
        if (k < 1) throw new IllegalArgumentException("a bf16 tile needs at least one column");
        int count = r1 - r0, chunks = Math.ceilDiv(count, MAX_ROWS), chunk = Math.ceilDiv(count, chunks);
        int panelCount = Math.ceilDiv(m, WIDTH);
        float[][] scratch = SUMS.get();
        if (scratch[0].length < panelCount * chunk * WIDTH) scratch[0] = new float[panelCount * chunk * WIDTH];
        float[] sums = scratch[0];                                       // [panels][rows][16 even channels, 16 odd ones]
        MemorySegment sumSeg = X86Asm.heap(sums), xSeg = X86Asm.heap(x);
        long panelBytes = (long) k * WIDTH * 2;
        long w = X86Asm.address(panels, panel0, panelCount * panelBytes);
        for (int r = r0; r < r1; r += chunk) {
            int rows = Math.min(chunk, r1 - r);
            if (k >= 2) {
                long x0Bytes = (long) (x0 + r * xs) * Float.BYTES;
                Objects.checkFromIndexSize(x0Bytes, ((long) (rows - 1) * xs + k) * Float.BYTES, (long) x.length * Float.BYTES);
                // A tile takes columns in pairs and each panel after the last one's end: with k odd, a call a panel.
                int calls = k % 2 == 0 ? 1 : panelCount, each = panelCount / calls;
                MethodHandle tile = tile(rows, xs * Float.BYTES);
                for (int c = 0; c < calls; c++) {
                    try {
                        tile.invokeExact(xSeg, x0Bytes, w + c * panelBytes, X86Asm.counts(k / 2, each), sumSeg, (long) c * rows * WIDTH * Float.BYTES);
                    } catch (Throwable t) {
                        throw new IllegalStateException("bf16 tile of " + rows + " rows", t);
                    }
                }
            } else {
                Arrays.fill(sums, 0, panelCount * rows * WIDTH, 0f);
            }
            if (k % 2 == 1) addLastColumn(x, x0 + r * xs, xs, rows, panels.asSlice(panel0, panelCount * panelBytes), k, panelCount, sums);
            for (int p = 0; p < panelCount; p++) {
                int mp = Math.min(WIDTH, m - p * WIDTH);
                for (int i = 0; i < rows; i++) {
                    int at = oo + (r + i - r0) * os + p * WIDTH, from = (p * rows + i) * WIDTH;
                    for (int d = 0; d < mp; d++) out[at + d] = sums[from + (d >> 1) + (d & 1) * (WIDTH / 2)];
                }
            }
        }
    }

    /**
     * Adds column k - 1 (odd k; the tiles take columns in pairs) of every panel into the tiles' sums
     * [panels][rows][16 even, 16 odd], each sum's chain continued with one more fused multiply-add.
     * x: the first row's first value at x0, rows xs apart.
     */
    private static void addLastColumn(float[] x, int x0, int xs, int rows, MemorySegment w, int k, int panelCount, float[] sums) {
        for (int p = 0; p < panelCount; p++) {
            long column = ((long) p * k + k - 1) * WIDTH;                    // its first bf16 element
            for (int i = 0; i < rows; i++) {
                float xv = x[x0 + i * xs + k - 1];
                int from = (p * rows + i) * WIDTH;
                for (int j = 0; j < WIDTH / 2; j++) {
                    sums[from + j] = Math.fma(Simd.bf16At(w, column + 2 * j), xv, sums[from + j]);
                    sums[from + WIDTH / 2 + j] = Math.fma(Simd.bf16At(w, column + 2 * j + 1), xv, sums[from + WIDTH / 2 + j]);
                }
            }
        }
    }

    /**
     * Rows [0, rows) (at most {@link #MAX_ROWS}) of bf16 activation pairs (row r's k / 2 ints from
     * pairs[p0 + r * ps]: each the bf16 of values 2c and 2c + 1, the first in the low half) times the
     * {@code panelCount} bf16 panels from byte {@code panel0} of {@code panels} (k columns each, k even and
     * at least 2), into sums[so ...] as [panels][rows][32], a panel's channel d of row r in lane
     * {@link #dotLane}(d). Each sum is a chain of {@code vdpbf16ps} in column-pair order, so it is not the
     * f32 tiles' sum: a row's values were rounded to bf16 and every step rounds (and flushes values below
     * the smallest normal) as that instruction does; {@link GreedyHead} bounds the difference.
     */
    static void dotSums(int[] pairs, int p0, int ps, int rows, MemorySegment panels, long panel0, int k, int panelCount, float[] sums, int so) {
        if (k < 2 || k % 2 != 0) throw new IllegalArgumentException("a bf16 dot tile takes an even number of columns, not " + k);
        if (rows < 1 || rows > MAX_ROWS) throw new IllegalArgumentException("a bf16 dot tile takes 1 to " + MAX_ROWS + " rows, not " + rows);
        Objects.checkFromIndexSize((long) p0, (long) (rows - 1) * ps + k / 2, pairs.length);
        Objects.checkFromIndexSize((long) so, (long) panelCount * rows * WIDTH, sums.length);
        try {
            dotTile(rows, ps * Integer.BYTES).invokeExact(X86Asm.heap(pairs), (long) p0 * Integer.BYTES, X86Asm.address(panels, panel0, (long) panelCount * k * WIDTH * 2),
                    X86Asm.counts(k / 2, panelCount), X86Asm.heap(sums), (long) so * Float.BYTES);
        } catch (Throwable t) {
            throw new IllegalStateException("bf16 dot tile of " + rows + " rows", t);
        }
    }

    /** The lane of a dot tile's sums that holds a panel's channel d (see {@link #DOT_LANE}). */
    static int dotLane(int d) { return DOT_LANE[d]; }

    /** A {@link #dotBench} call's tile: eight rows (a batch of 8's lm_head) against one panel of 1024 columns (64 KB, in L2). */
    private static final int BENCH_ROWS = 8, BENCH_COLUMNS = 1024;

    /** Multiply-accumulates of one {@link #dotBench} call. */
    public static long dotBenchMacs() { return (long) BENCH_ROWS * WIDTH * BENCH_COLUMNS; }

    /**
     * Runs the eight-row dot tile {@code calls} times over one panel and returns one of its sums: what
     * {@link dev.moec.executor.bench.ComputePeak#measureDot} times.
     */
    public static float dotBench(int calls) {
        try (java.lang.foreign.Arena arena = java.lang.foreign.Arena.ofConfined()) {
            MemorySegment panel = arena.allocate((long) BENCH_COLUMNS * WIDTH * 2, 64);
            float[] sums = new float[BENCH_ROWS * WIDTH];
            int[] pairs = new int[BENCH_ROWS * BENCH_COLUMNS / 2];
            Arrays.fill(pairs, 0x3F803F80);                                     // bf16 ones
            MemorySegment x = MemorySegment.ofArray(pairs), out = MemorySegment.ofArray(sums);
            MethodHandle tile = dotTile(BENCH_ROWS, BENCH_COLUMNS / 2 * Integer.BYTES);
            for (int c = 0; c < calls; c++) tile.invokeExact(x, 0L, panel.address(), X86Asm.counts(BENCH_COLUMNS / 2, 1), out, 0L);
            return sums[0];
        } catch (Throwable t) {
            throw new IllegalStateException("bf16 dot tile", t);
        }
    }

    /**
     * The lane of a dot tile's sums that holds a panel's channel d. A panel column's int32 lane j holds
     * channels 2j and 2j + 1; interleaving the words of two columns within each 128-bit lane (low halves,
     * then high halves) makes lane j of the first sum channel 8 (j / 4) + j % 4, and of the second
     * 8 (j / 4) + 4 + j % 4.
     */
    private static final int[] DOT_LANE = new int[WIDTH];
    static {
        for (int j = 0; j < WIDTH / 2; j++) {
            DOT_LANE[8 * (j / 4) + j % 4] = j;
            DOT_LANE[8 * (j / 4) + 4 + j % 4] = WIDTH / 2 + j;
        }
    }

    /** The dot tile for {@code rows} rows of pairs {@code stride} bytes apart, made on first use. */
    static MethodHandle dotTile(int rows, int stride) {
        return DOT_TILES.get((long) rows << 32 | stride);
    }

    /**
     * The machine code of a dot tile: {@code void tile(x, w, pairs, out, panels)}, as {@link #code}'s but
     * x holds rows of bf16 pairs (an int each) and out [panels][rows][32] the sums {@link #DOT_LANE}
     * orders. A loop takes two columns: zmm30 and zmm27 are loaded, zmm28 and zmm29 = their words
     * interleaved (each lane two columns of one channel), and row r adds each against its pair into
     * zmm 2r and 2r + 1.
     */
    static byte[] dotCode(int rows, int stride, int prefetch) {
        if (rows < 1 || rows > MAX_ROWS) throw new IllegalArgumentException("a bf16 dot tile takes 1 to " + MAX_ROWS + " rows, not " + rows);
        return frame(rows, prefetch, Integer.BYTES, a -> {}, a -> {
            a.vpunpcklwd(28, 30, 27);
            a.vpunpckhwd(29, 30, 27);
            for (int r = 0; r < rows; r++) {
                a.vdpbf16psBroadcast(2 * r, 28, X86Asm.RDI, r * stride);
                a.vdpbf16psBroadcast(2 * r + 1, 29, X86Asm.RDI, r * stride);
            }
        });
    }

    /** The tile for {@code rows} rows whose activations lie {@code stride} bytes apart, made on first use. */
    static MethodHandle tile(int rows, int stride) {
        return TILES.get((long) rows << 32 | stride);
    }

    /**
     * The machine code of a tile: {@code void tile(x, w, pairs, out, panels)} in the registers
     * {@link X86Asm#tileArguments} sets from a call (rdi, rsi, rdx, rcx, r8). x: the first of
     * {@code rows} f32 activation rows, {@code stride} bytes apart; w: the first
     * of {@code panels} consecutive bf16 panels (at least one) of 2 * {@code pairs} columns (at least one
     * pair); out: [panels][rows][32] f32 sums, a row's 16 even channels and then its 16 odd ones. zmm31
     * holds the mask 0xFFFF0000. A loop takes two columns: zmm30 and zmm27 are loaded, zmm28 and zmm25 =
     * their lanes shifted left 16 (the even channels), zmm29 and zmm26 = masked (the odd ones), and row r
     * adds the first column's times its activation into zmm 2r and 2r + 1, then the second's (unrolled,
     * the loop ran 4-8 % faster in cache: 171 -> 158 us for the 8-row 2048 x 1024 weight on 2 threads).
     * {@code prefetch} bytes ahead of each column (0 for none) the panel is prefetched into the caches;
     * r9 and r10 keep x and the pair count for the next panel, which starts where the last one ended.
     * (An odd last column is the caller's, on the same chains: {@link #rows}.)
     */
    static byte[] code(int rows, int stride, int prefetch) {
        if (rows < 1 || rows > MAX_ROWS) throw new IllegalArgumentException("a bf16 tile takes 1 to " + MAX_ROWS + " rows, not " + rows);
        return frame(rows, prefetch, 2 * Float.BYTES, a -> {
            a.allOnes(31);
            a.vpslldImm(31, 31, 16);
        }, a -> {
            a.vpslldImm(28, 30, 16);
            a.vpandd(29, 30, 31);
            a.vpslldImm(25, 27, 16);
            a.vpandd(26, 27, 31);
            for (int r = 0; r < rows; r++) {
                a.vfmadd231psBroadcast(2 * r, 28, X86Asm.RDI, r * stride);
                a.vfmadd231psBroadcast(2 * r + 1, 29, X86Asm.RDI, r * stride);
            }
            for (int r = 0; r < rows; r++) {
                a.vfmadd231psBroadcast(2 * r, 25, X86Asm.RDI, r * stride + Float.BYTES);
                a.vfmadd231psBroadcast(2 * r + 1, 26, X86Asm.RDI, r * stride + Float.BYTES);
            }
        });
    }

    /**
     * What both tiles' code shares: {@code setup} once, then per panel the sums zmm0 .. zmm(2 rows - 1)
     * zeroed and a loop over the column pairs that loads two columns into zmm30 and zmm27 (prefetching
     * {@code prefetch} bytes ahead, none for 0), runs {@code pass} (its multiplies, x at rdi) and moves
     * w on by the two columns and x by {@code xStep} bytes; then each row's two sums stored to out and
     * out moved on. r9 and r10 keep x and the pair count for the next panel, which starts where the last
     * one ended.
     */
    private static byte[] frame(int rows, int prefetch, int xStep, java.util.function.Consumer<X86Asm> setup, java.util.function.Consumer<X86Asm> pass) {
        X86Asm a = new X86Asm();
        a.tileArguments();
        a.mov(X86Asm.R9, X86Asm.RDI);
        a.mov(X86Asm.R10, X86Asm.RDX);
        setup.accept(a);
        int panel = a.size();
        a.mov(X86Asm.RDI, X86Asm.R9);
        a.mov(X86Asm.RDX, X86Asm.R10);
        for (int z = 0; z < 2 * rows; z++) a.vpxord(z);
        int loop = a.size();
        a.vmovdqu32Load(30, X86Asm.RSI, 0);
        a.vmovdqu32Load(27, X86Asm.RSI, 2 * WIDTH);
        if (prefetch > 0) {
            a.prefetcht0(X86Asm.RSI, prefetch);
            a.prefetcht0(X86Asm.RSI, prefetch + 2 * WIDTH);
        }
        pass.accept(a);
        a.addImm(X86Asm.RSI, 4 * WIDTH);
        a.addImm(X86Asm.RDI, xStep);
        a.dec(X86Asm.RDX);
        a.jnz(loop);
        for (int r = 0; r < rows; r++) {
            a.vmovdqu32Store(X86Asm.RCX, r * WIDTH * Float.BYTES, 2 * r);
            a.vmovdqu32Store(X86Asm.RCX, (r * WIDTH + WIDTH / 2) * Float.BYTES, 2 * r + 1);
        }
        a.addImm(X86Asm.RCX, rows * WIDTH * Float.BYTES);
        a.dec(X86Asm.R8);
        a.jnz(panel);
        a.vzeroupper();
        a.ret();
        return a.bytes();
    }
}
