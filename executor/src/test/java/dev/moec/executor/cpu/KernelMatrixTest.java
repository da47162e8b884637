package dev.moec.executor.cpu;

import dev.moec.backend.Kernel;
import dev.moec.ir.Attrs;
import dev.moec.ir.DType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.List;
import java.util.Arrays;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The kernel test matrix: each hand-written weight-reading kernel, for every weight dtype it supports,
 * against its op's reference semantics on the same buffers (weights bound as a loaded model binds them:
 * the artifact's row-major mapping, with a copy in panels where a matmul streams them); every other pair
 * is refused naming the kernel and the dtypes. Row counts cover the one-row, two-, four- and eight-row
 * and tail paths of the vector loops and a prompt's six-row tiles.
 */
class KernelMatrixTest {
    private static final ValueLayout.OfShort SHORT_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat FLOAT_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final int K = 72, N = 170, EXPERTS = 4;          // N: last blocks of 42 streamed and 10 paneled outputs, not multiples of 4

    @ParameterizedTest(name = "{0} with {1} weights, {2} rows")
    @CsvSource({
            "MATMUL, BF16, 1", "MATMUL, BF16, 2", "MATMUL, BF16, 3", "MATMUL, BF16, 7", "MATMUL, BF16, 8", "MATMUL, BF16, 19",
            "MATMUL, F16, 5", "MATMUL, F32, 4",
            "GROUPED_MATMUL, BF16, 5", "GROUPED_MATMUL, BF16, 9", "GROUPED_MATMUL, BF16, 40", "GROUPED_MATMUL, F16, 6", "GROUPED_MATMUL, F32, 3",
            "QUANT_MATMUL, I8, 1", "QUANT_MATMUL, I8, 2", "QUANT_MATMUL, I8, 6", "QUANT_MATMUL, I8, 7", "QUANT_MATMUL, I8, 19",
            "GROUPED_QUANT_MATMUL, I8, 5", "GROUPED_QUANT_MATMUL, I8, 9", "GROUPED_QUANT_MATMUL, I8, 40",
            "QUANT_MATMUL_STATIC, I8, 1", "QUANT_MATMUL_STATIC, I8, 6", "GROUPED_QUANT_MATMUL, I4, 9", "GROUPED_QUANT_MATMUL, I4, 40",
            "EMBEDDING, BF16, 5", "EMBEDDING, F16, 5", "EMBEDDING, F32, 5"})
    void supportedPairsMatchTheReferenceSemantics(Kernel kernel, DType weight, int rows) {
        SplittableRandom r = new SplittableRandom(kernel.ordinal() * 31L + weight.ordinal() * 7L + rows);
        try (Arena arena = Arena.ofShared()) {                 // the kernels read weights from their worker threads
            Buf[] in = inputs(kernel, weight, rows, r, arena);
            CpuKernels.checkSupported(kernel, java.util.Arrays.stream(in).map(b -> b.dtype).toList());
            int outRows = rows;
            int width = kernel == Kernel.EMBEDDING ? K : N;
            Buf fast = new Buf("out", DType.F32, new int[] {outRows, width}, new float[outRows * width], null, null);
            Buf oracle = new Buf("out", DType.F32, new int[] {outRows, width}, new float[outRows * width], null, null);
            CpuKernels k = new CpuKernels(new Parallel(2));
            k.launch(kernel, in, new Buf[] {fast}, Attrs.of());
            k.reference(kernel, in, new Buf[] {oracle}, Attrs.of());
            if (weight == DType.I8 && kernel != Kernel.QUANT_MATMUL_STATIC) assertArrayEquals(oracle.f, fast.f);   // int8 panels: the op's bits
            for (int j = 0; j < fast.f.length; j++) {
                assertEquals(oracle.f[j], fast.f[j], 1e-4f * (1 + Math.abs(oracle.f[j])), kernel + " " + weight + " element " + j);
            }
            assertSameAtArenaOffsets(k, kernel, in, new Buf[] {fast}, Attrs.of());
            k.close();
        }
    }

    /**
     * The panel layout: channel j of panel p, column c, is weight row p * W + j, column c; rows past the
     * matrix weigh zero. bf16 holds it as stored, in channel order; int8 biased by 128, in byte
     * {@link Simd#i8Slot}(j) of the column, and each half of an int8 panel widens back to its weights; or,
     * in the VNNI layout (where this machine has it), in byte {@link Vnni#slot}(j, c) of the panel, its
     * columns padded to whole groups of four with zero weights.
     */
    @ParameterizedTest(name = "{0}, VNNI layout {1}")
    @CsvSource({"BF16, false", "I8, false", "I8, true"})
    void weightPanelsHoldEveryWeightInPlace(DType type, boolean vnni) {
        assumeTrue(!vnni || Vnni.AVAILABLE, "no VNNI tiles on this machine");
        int w = Simd.panelWidth(type), matrices = 2, rows = w + 3, cols = 5, size = type == DType.BF16 ? 2 : 1;
        try (Arena arena = Arena.ofShared(); Parallel par = new Parallel(2)) {
            Buf nd = weight("w", type, new SplittableRandom(3), arena, matrices, rows, cols);
            MemorySegment p = WeightPanels.pack(nd.w, type, matrices, rows, cols, vnni, arena, par);
            assertEquals(WeightPanels.panelBytes(type, matrices, rows, cols, vnni), p.byteSize());
            int stored = vnni ? Vnni.paddedColumns(cols) : cols;
            assertEquals((long) matrices * 2 * stored * w * size, p.byteSize());
            for (int m = 0; m < matrices; m++) {
                for (int panel = 0; panel < 2; panel++) {
                    float[][] halves = new float[2][cols * Simd.PANEL_WIDTH];
                    if (type == DType.I8 && !vnni) for (int h = 0; h < 2; h++) Simd.widenI8Half(p, ((long) m * 2 + panel) * cols * w, cols, h, halves[h]);
                    for (int c = 0; c < stored; c++) {
                        for (int j = 0; j < w; j++) {
                            int row = panel * w + j;
                            long column = (((long) m * 2 + panel) * cols + c) * w;
                            for (int b = 0; b < size; b++) {
                                byte want = row < rows && c < cols ? nd.w.get(ValueLayout.JAVA_BYTE, (((long) m * rows + row) * cols + c) * size + b) : 0;
                                if (vnni) {
                                    long at = ((long) m * 2 + panel) * Vnni.panelBytes(cols) + Vnni.slot(j, c);
                                    assertEquals(Simd.biased(want), p.get(ValueLayout.JAVA_BYTE, at), "matrix " + m + " row " + row + " column " + c);
                                } else if (type == DType.I8) {
                                    assertEquals(Simd.biased(want), p.get(ValueLayout.JAVA_BYTE, column + Simd.i8Slot(j)), "matrix " + m + " row " + row + " column " + c);
                                    assertEquals(want, halves[j / Simd.PANEL_WIDTH][c * Simd.PANEL_WIDTH + j % Simd.PANEL_WIDTH], "widened, matrix " + m + " row " + row + " column " + c);
                                } else {
                                    assertEquals(want, p.get(ValueLayout.JAVA_BYTE, (column + j) * size + b), "matrix " + m + " row " + row + " column " + c);
                                }
                            }
                        }
                    }
                }
            }
            assertThrows(IllegalArgumentException.class, () -> nd.withPanels(arena.allocate(p.byteSize() - 1), vnni));
        }
    }

    /**
     * int8 matmuls (weights in panels, streamed for one and six rows, widened for a prompt's) and int4
     * experts (turned into panels for a prompt's rows, at least {@link CpuKernels#PANEL_ROWS}): with rows
     * longer than one exact run of the largest products, the results are still the op's to the bit, dense
     * and grouped; for narrow weights and odd widths (a partial panel, int4's scalar turn) and for full
     * panels of widths in multiples of 16 (int4's turn in registers) beside a partial one.
     */
    @ParameterizedTest(name = "{0}, full panels {1}, {2} weights, {3} rows")
    @CsvSource({"QUANT_MATMUL, false, I8, 23", "GROUPED_QUANT_MATMUL, false, I8, 23", "QUANT_MATMUL, true, I8, 23",
            "GROUPED_QUANT_MATMUL, true, I8, 23", "GROUPED_QUANT_MATMUL, false, I4, 23", "GROUPED_QUANT_MATMUL, true, I4, 23",
            "QUANT_MATMUL, true, I8, 1", "QUANT_MATMUL, false, I8, 6", "GROUPED_QUANT_MATMUL, true, I8, 6"})
    void panelInt8MatmulsAreExactPastOneChunk(Kernel kernel, boolean full, DType type, int rows) {
        int k = full ? 2 * Simd.EXACT_TERMS + 16 : Simd.EXACT_CHUNK + 40, n = full ? 2 * Simd.PANEL_WIDTH + 5 : 6;
        SplittableRandom r = new SplittableRandom(kernel.ordinal() * 2L + (full ? 1 : 0));
        try (Arena arena = Arena.ofShared()) {
            Buf x = int8("x", r, rows, k);
            for (int j = 0; j < x.i.length; j++) if (j % 7 != 0) x.i[j] = -128;
            boolean grouped = kernel == Kernel.GROUPED_QUANT_MATMUL;
            Buf w = grouped ? weight("w", type, r, arena, 2, n, k) : weight("w", type, r, arena, n, k);
            byte largest = type == DType.I4 ? (byte) 0x88 : (byte) -128;             // int4: -8 in both nibbles
            for (long j = 0; j < w.w.byteSize(); j++) if (j % 5 != 0) w.w.set(ValueLayout.JAVA_BYTE, j, largest);
            Buf xs = positive("xs", r, rows), ws = grouped ? positive("ws", r, 2, n) : positive("ws", r, n);
            for (boolean vnni : layouts(type)) {                                  // as a model binds it; int4 experts stay row-major
                Buf bound = type == DType.I8 ? paneled(w, arena, vnni) : w;
                Buf[] in = grouped
                        ? new Buf[] {x, xs, bound, ws, new Buf("counts", DType.I32, new int[] {2}, null, new int[] {rows - 1, 1}, null)}
                        : new Buf[] {x, xs, bound, ws};
                Buf fast = new Buf("out", DType.F32, new int[] {rows, n}, new float[rows * n], null, null);
                Buf oracle = new Buf("out", DType.F32, new int[] {rows, n}, new float[rows * n], null, null);
                CpuKernels cpu = new CpuKernels(new Parallel(2));
                cpu.launch(kernel, in, new Buf[] {fast}, Attrs.of());
                cpu.reference(kernel, in, new Buf[] {oracle}, Attrs.of());
                cpu.close();
                assertArrayEquals(oracle.f, fast.f, "VNNI layout " + vnni);
            }
        }
    }

    /** The int8 panel layouts this machine can run for weights of {@code type}: the Vector API's, and VNNI's where it has the tiles. */
    private static boolean[] layouts(DType type) {
        return type == DType.I8 && Vnni.AVAILABLE ? new boolean[] {false, true} : new boolean[] {false};
    }

    /**
     * Grouped int8 (weights in panels) and int4 matmuls where every group has a prompt's rows (int4: only
     * turned panels, so no even/odd split is prepared) and where none has (int4: no exact floats), to the bit.
     */
    @ParameterizedTest(name = "{0} weights, groups of {1} and {2} rows")
    @CsvSource({"I8, 20, 17", "I4, 20, 17", "I8, 3, 5", "I4, 3, 5"})
    void groupedQuantMatmulsPrepareOnlyWhatTheirGroupsRead(DType type, int first, int second) {
        int k = 64, n = 2 * Simd.PANEL_WIDTH + 3, rows = first + second;
        SplittableRandom r = new SplittableRandom(first * 7L + type.ordinal());
        try (Arena arena = Arena.ofShared()) {
            Buf w = weight("w", type, r, arena, 2, n, k), x = int8("x", r, rows, k), xs = positive("xs", r, rows), ws = positive("ws", r, 2, n);
            for (boolean vnni : layouts(type)) {
                Buf[] in = {x, xs, type == DType.I8 ? paneled(w, arena, vnni) : w, ws,
                        new Buf("counts", DType.I32, new int[] {2}, null, new int[] {first, second}, null)};
                Buf fast = new Buf("out", DType.F32, new int[] {rows, n}, new float[rows * n], null, null);
                Buf oracle = new Buf("out", DType.F32, new int[] {rows, n}, new float[rows * n], null, null);
                CpuKernels cpu = new CpuKernels(new Parallel(2));
                cpu.launch(Kernel.GROUPED_QUANT_MATMUL, in, new Buf[] {fast}, Attrs.of());
                cpu.reference(Kernel.GROUPED_QUANT_MATMUL, in, new Buf[] {oracle}, Attrs.of());
                cpu.close();
                assertArrayEquals(oracle.f, fast.f, "VNNI layout " + vnni);
            }
        }
    }

    /**
     * Grouped-query attention over a paged cache against its op's definition: groups of 4 and 8 query
     * heads per KV head (the four-head and four-position loops) and of 1, head and value widths off the
     * vector width (the loops' tails), blocks of 8 out of order so the position runs break at block ends,
     * several tokens of one sequence (a prompt) beside a decode token of another and a padding token;
     * f32 and bf16 caches.
     */
    @ParameterizedTest(name = "{0} heads over {1} KV heads, {2} cache")
    @CsvSource({"8, 2, F32", "8, 1, F32", "3, 3, F32", "8, 2, BF16"})
    void attentionMatchesItsDefinition(int heads, int kvHeads, DType cache) {
        int hd = 40, vd = 72, bs = 8, blocks = 7, tokens = 6;
        SplittableRandom r = new SplittableRandom(heads * 31L + kvHeads + cache.ordinal());
        Buf q = floats("q", r, tokens, heads, hd);
        Buf kc = floats("k_cache", r, blocks, bs, kvHeads, hd), vc = floats("v_cache", r, blocks, bs, kvHeads, vd);
        if (cache == DType.BF16) {
            kc = packedBf16(kc);
            vc = packedBf16(vc);
        }
        Buf table = new Buf("block_table", DType.I32, new int[] {2, 4}, null, new int[] {5, 2, 6, 0, 3, 1, -1, -1}, null);
        Buf slots = new Buf("slots", DType.I32, new int[] {tokens}, null, new int[] {0, 0, 0, 0, 1, -1}, null);
        Buf positions = new Buf("positions", DType.I32, new int[] {tokens}, null, new int[] {3, 13, 20, 29, 11, 0}, null);
        attentionMatches(new Buf[] {q, kc, vc, table, slots, positions}, Attrs.of("scale", 0.15), r, tokens, heads, vd);
    }

    /**
     * A lone decode token (batch 1) is cut into one part per thread, whose running maxima, sums and
     * weighted values are merged: its 30 positions over blocks out of order, f32 and bf16 caches.
     */
    @ParameterizedTest(name = "{0} cache")
    @CsvSource({"F32", "BF16"})
    void aLoneTokensPartsMergeToItsDefinition(DType cache) {
        int heads = 8, kvHeads = 2, hd = 40, vd = 72, bs = 8, blocks = 5;
        SplittableRandom r = new SplittableRandom(23 + cache.ordinal());
        Buf q = floats("q", r, 1, heads, hd);
        Buf kc = floats("k_cache", r, blocks, bs, kvHeads, hd), vc = floats("v_cache", r, blocks, bs, kvHeads, vd);
        if (cache == DType.BF16) {
            kc = packedBf16(kc);
            vc = packedBf16(vc);
        }
        Buf table = new Buf("block_table", DType.I32, new int[] {1, 4}, null, new int[] {4, 1, 3, 0}, null);
        Buf slots = new Buf("slots", DType.I32, new int[] {1}, null, new int[] {0}, null);
        Buf positions = new Buf("positions", DType.I32, new int[] {1}, null, new int[] {29}, null);
        attentionMatches(new Buf[] {q, kc, vc, table, slots, positions}, Attrs.of("scale", 0.15), r, 1, heads, vd);
    }

    /**
     * The read-ahead of a part's cache rows reads the first float of every 64-byte line of exactly the
     * K and V rows of its positions, through the block table, K and V of different widths: ones there and
     * a thousand everywhere else sum to the count of those lines.
     */
    @Test
    void touchReadsEveryLineOfThePartsRowsAndNothingElse() {
        int bs = 4, blocks = 5, kRow = 40, vRow = 24, ko = 3, vo = 5;     // rows of 2.5 and 1.5 lines: lines start mid-row too
        dev.moec.ir.PagedCache paged = new dev.moec.ir.PagedCache("attention", new int[] {4, 1, 3, 0, 2, -1}, 3, bs, blocks);
        float[] k = marked(paged, ko, kRow, blocks * bs), v = marked(paged, vo, vRow, blocks * bs);
        assertEquals(linesOf(paged, 4 * kRow) + linesOf(paged, 4 * vRow), CpuKernels.touch(paged, 0, 2, 9, k, ko, kRow, v, vo, vRow), 0f);
    }

    /**
     * {@link CpuKernels#touchPacked}, as above over a packed cache (bf16 or int8): one byte of every
     * 64-byte line of the part's rows, rows of 2.5 and 1.5 lines.
     */
    @Test
    void touchOfAPackedCacheReadsEveryLineOfThePartsRowsAndNothingElse() {
        int bs = 4, blocks = 5, kRow = 160, vRow = 96;                     // bytes a row
        dev.moec.ir.PagedCache paged = new dev.moec.ir.PagedCache("attention", new int[] {4, 1, 3, 0, 2, -1}, 3, bs, blocks);
        MemorySegment k = markedBytes(paged, kRow, blocks * bs), v = markedBytes(paged, vRow, blocks * bs);
        assertEquals(linesOf(paged, kRow) + linesOf(paged, vRow), CpuKernels.touchPacked(paged, 0, 2, 9, k, kRow, v, vRow));
    }

    /** {@link #marked} in bytes: 100 everywhere, zeros in slot 0's rows of positions [2, 9) but ones at each run's every 64th byte. */
    private static MemorySegment markedBytes(dev.moec.ir.PagedCache paged, int row, int rows) {
        MemorySegment seg = Arena.ofAuto().allocate((long) rows * row);
        seg.fill((byte) 100);
        for (int p = 2; p < 9; p++) seg.asSlice((long) paged.row(0, p) * row, row).fill((byte) 0);
        for (int p = 2; p < 9; ) {
            int run = Math.min(9 - p, paged.blockSize() - p % paged.blockSize()), start = paged.row(0, p) * row;
            for (int i = start; i < start + run * row; i += 64) seg.set(ValueLayout.JAVA_BYTE, i, (byte) 1);
            p += run;
        }
        return seg;
    }

    /** The 64-byte lines of slot 0's rows of {@code row} bytes (floats: four bytes each), positions [2, 9), counted from each run's start. */
    private static int linesOf(dev.moec.ir.PagedCache paged, int row) {
        int lines = 0, bs = paged.blockSize();
        for (int p = 2; p < 9; ) {
            int run = Math.min(9 - p, bs - p % bs);
            lines += Math.ceilDiv(run * row, 64);
            p += run;
        }
        return lines;
    }

    /** A cache of {@code rows} rows of {@code row} floats from {@code off}: a thousand everywhere, zeros in slot 0's rows of positions [2, 9) but ones at each run's every 16th float. */
    private static float[] marked(dev.moec.ir.PagedCache paged, int off, int row, int rows) {
        float[] a = new float[off + rows * row];
        Arrays.fill(a, 1000f);
        for (int p = 2; p < 9; p++) {                                     // slot 0, positions [2, 9): three blocks, runs of 2, 4 and 1
            int start = off + paged.row(0, p) * row;
            for (int i = start; i < start + row; i++) a[i] = 0f;
        }
        for (int p = 2; p < 9; ) {
            int run = Math.min(9 - p, paged.blockSize() - p % paged.blockSize()), start = off + paged.row(0, p) * row;
            for (int i = start; i < start + run * row; i += 16) a[i] = 1f;
            p += run;
        }
        return a;
    }

    /** Attention on these inputs against its op's definition, within float rounding, and the same bits at arena offsets. */
    private static void attentionMatches(Buf[] in, Attrs a, SplittableRandom r, int tokens, int heads, int vd) {
        attentionMatches(Kernel.ATTENTION, in, a, r, tokens, heads, vd);
    }

    /** {@link #attentionMatches} for {@code kernel} (f32 and bf16 caches, or int8 ones with their scales). */
    private static void attentionMatches(Kernel kernel, Buf[] in, Attrs a, SplittableRandom r, int tokens, int heads, int vd) {
        Buf fast = floats("out", r, tokens, heads, vd), oracle = floats("out", r, tokens, heads, vd);
        CpuKernels k = new CpuKernels(new Parallel(2));
        k.launch(kernel, in, new Buf[] {fast}, a);
        k.reference(kernel, in, new Buf[] {oracle}, a);
        for (int j = 0; j < fast.f.length; j++) assertEquals(oracle.f[j], fast.f[j], 1e-5f * (1 + Math.abs(oracle.f[j])), "element " + j);
        assertSameAtArenaOffsets(k, kernel, in, new Buf[] {fast}, a);
        k.close();
    }

    /**
     * A prompt's attention over an f32 cache: fifteen tokens of one sequence (a tile of twelve and one of
     * three), two out of order, scored through turned panels of K (head width a multiple of 16 and cache
     * blocks of 32 positions, so whole panels are turned in registers) and against the op's definition.
     */
    @Test
    void promptAttentionThroughPanelsMatchesItsDefinition() {
        int heads = 8, kvHeads = 2, hd = 64, vd = 48, bs = 32, blocks = 3, tokens = 15;
        SplittableRandom r = new SplittableRandom(17);
        Buf q = floats("q", r, tokens, heads, hd);
        Buf kc = floats("k_cache", r, blocks, bs, kvHeads, hd), vc = floats("v_cache", r, blocks, bs, kvHeads, vd);
        Buf table = new Buf("block_table", DType.I32, new int[] {1, 3}, null, new int[] {2, 0, 1}, null);
        int[] pos = new int[tokens];
        for (int t = 0; t < tokens; t++) pos[t] = 45 + t;
        pos[3] = 46;
        pos[1] = 48;
        Buf slots = new Buf("slots", DType.I32, new int[] {tokens}, null, new int[tokens], null);
        Buf positions = new Buf("positions", DType.I32, new int[] {tokens}, null, pos, null);
        attentionMatches(new Buf[] {q, kc, vc, table, slots, positions}, Attrs.of("scale", 0.125), r, tokens, heads, vd);
    }

    /**
     * Attention over a bf16 or int8 cache widens its rows (an int8 row times its scale) and runs the f32
     * cache's loops on them: it meets the op's definition, and gives bit for bit what an f32 cache holding
     * the widened values gives: a prompt of fifteen tokens (a tile of twelve
     * through turned panels and one of three through the four-by-four loops) beside a decode token of
     * another sequence and a padding token, over blocks of 64 out of order (runs longer than the widened
     * block of 32, and cut by the blocks); and a lone token cut into parts, one a thread.
     */
    @ParameterizedTest(name = "{0} cache")
    @CsvSource({"BF16", "I8"})
    void attentionOverAPackedCacheIsTheF32CachesOfItsValuesToTheBit(DType cache) {
        int heads = 8, kvHeads = 2, hd = 64, vd = 48, bs = 64, blocks = 4, tokens = 17;
        SplittableRandom r = new SplittableRandom(29);
        Buf q = floats("q", r, tokens, heads, hd);
        Buf kc = floats("k_cache", r, blocks, bs, kvHeads, hd), vc = floats("v_cache", r, blocks, bs, kvHeads, vd);
        boolean int8 = cache == DType.I8;
        Buf kscale = int8 ? positive("k_scale", r, blocks, bs, kvHeads) : null, vscale = int8 ? positive("v_scale", r, blocks, bs, kvHeads) : null;
        Buf kb = int8 ? packedI8(r, kc) : packedBf16(kc), vb = int8 ? packedI8(r, vc) : packedBf16(vc);
        Buf kw = widened(kb, kscale, kc), vw = widened(vb, vscale, vc);
        Buf table = new Buf("block_table", DType.I32, new int[] {2, 2}, null, new int[] {2, 0, 3, 1}, null);
        int[] pos = new int[tokens], slot = new int[tokens];
        for (int t = 0; t < 15; t++) pos[t] = 70 + t;
        pos[3] = 71;
        pos[1] = 73;
        slot[15] = 1;
        pos[15] = 100;
        slot[16] = -1;
        Buf slots = new Buf("slots", DType.I32, new int[] {tokens}, null, slot, null);
        Buf positions = new Buf("positions", DType.I32, new int[] {tokens}, null, pos, null);
        Attrs a = Attrs.of("scale", 0.125);
        Kernel kernel = int8 ? Kernel.FUSED_INFER_ATTENTION_INT8 : Kernel.ATTENTION;
        Buf lone = new Buf("q", DType.F32, new int[] {1, heads, hd}, Arrays.copyOfRange(q.f, 15 * heads * hd, 16 * heads * hd), null, null);
        Buf loneSlot = new Buf("slots", DType.I32, new int[] {1}, null, new int[] {1}, null);
        Buf lonePos = new Buf("positions", DType.I32, new int[] {1}, null, new int[] {100}, null);
        try (CpuKernels k = new CpuKernels(new Parallel(2))) {
            for (Buf[] in : List.of(new Buf[] {q, table, slots, positions}, new Buf[] {lone, table, loneSlot, lonePos})) {
                int n = in[0].dim(0);
                Buf[] packedIn = int8 ? new Buf[] {in[0], kb, kscale, vb, vscale, in[1], in[2], in[3]} : new Buf[] {in[0], kb, vb, in[1], in[2], in[3]};
                attentionMatches(kernel, packedIn, a, r, n, heads, vd);
                Buf fromPacked = floats("out", r, n, heads, vd), fromF32 = floats("out", r, n, heads, vd);
                k.launch(kernel, packedIn, new Buf[] {fromPacked}, a);
                k.launch(Kernel.ATTENTION, new Buf[] {in[0], kw, vw, in[1], in[2], in[3]}, new Buf[] {fromF32}, a);
                assertArrayEquals(fromF32.f, fromPacked.f, n + " tokens");
            }
        }
    }

    /** An int8 cache of random values (its float twin only gives the shape). */
    private static Buf packedI8(SplittableRandom r, Buf like) {
        MemorySegment seg = Arena.ofAuto().allocate(like.elements(), 64);
        for (int j = 0; j < like.elements(); j++) seg.set(ValueLayout.JAVA_BYTE, j, (byte) r.nextInt(-127, 128));
        return Buf.packed(like.name, DType.I8, like.shape, seg);
    }

    /** An f32 cache holding the values a packed cache widens to (int8 times its row's scale), in the shape of {@code like}. */
    private static Buf widened(Buf packed, Buf scale, Buf like) {
        float[] f = new float[like.elements()];
        int d = like.shape[like.shape.length - 1];
        if (packed.dtype == DType.I8) {
            for (int j = 0; j < f.length; j++) f[j] = packed.w.get(ValueLayout.JAVA_BYTE, j) * scale.f[j / d];
        } else {
            Simd.widenBf16(packed.w, 0, f.length, f);
        }
        return new Buf(like.name, DType.F32, like.shape, f, null, null);
    }

    /**
     * Dispatch sorts rows by expert exactly as its op does (and its quantized form quantizes them as its op
     * does), and combine sums them back as its op does, to the bit.
     */
    @Test
    void dispatchAndCombineAreTheirDefinitions() {
        int tokens = 9, k = 3, hidden = 43, experts = 5;                  // hidden past a multiple of the lanes: the scalar tail too
        SplittableRandom r = new SplittableRandom(5);
        Buf x = floats("x", r, tokens, hidden), ids = new Buf("experts", DType.I32, new int[] {tokens, k}, null, new int[tokens * k], null);
        for (int j = 0; j < ids.i.length; j++) ids.i[j] = r.nextInt(experts);
        Attrs a = Attrs.of("num_experts", (long) experts);
        java.util.function.Supplier<Buf[]> plain = () -> new Buf[] {floats("rows_x", r, tokens * k, hidden), ints("rows", tokens * k), ints("counts", experts)};
        java.util.function.Supplier<Buf[]> quantized = () -> new Buf[] {new Buf("rows_xq", DType.I8, new int[] {tokens * k, hidden}, null, new int[tokens * k * hidden], null),
                floats("rows_xs", r, tokens * k), ints("rows", tokens * k), ints("counts", experts)};
        CpuKernels kernels = new CpuKernels(new Parallel(2));
        Buf[] fast = plain.get();
        for (Kernel kernel : List.of(Kernel.MOE_DISPATCH, Kernel.MOE_DISPATCH_QUANT)) {      // the quantized form's rows as dynamic_quant of each row
            Buf[] launched = kernel == Kernel.MOE_DISPATCH ? fast : quantized.get(), oracle = kernel == Kernel.MOE_DISPATCH ? plain.get() : quantized.get();
            kernels.launch(kernel, new Buf[] {x, ids}, launched, a);
            kernels.reference(kernel, new Buf[] {x, ids}, oracle, a);
            for (int o = 0; o < oracle.length; o++) {
                if (oracle[o].f != null) assertArrayEquals(oracle[o].f, launched[o].f, kernel + " output " + o);
                else assertArrayEquals(oracle[o].i, launched[o].i, kernel + " output " + o);
            }
            assertSameAtArenaOffsets(kernels, kernel, new Buf[] {x, ids}, launched, a);
        }
        Buf y = floats("y", r, tokens * k, hidden), weights = positive("weights", r, tokens, k);
        Buf[] in = {y, fast[1], weights};
        Buf out = floats("out", r, tokens, hidden), expected = floats("out", r, tokens, hidden);
        kernels.launch(Kernel.MOE_COMBINE, in, new Buf[] {out}, Attrs.of());
        kernels.reference(Kernel.MOE_COMBINE, in, new Buf[] {expected}, Attrs.of());
        assertArrayEquals(expected.f, out.f);
        assertSameAtArenaOffsets(kernels, Kernel.MOE_COMBINE, in, new Buf[] {out}, Attrs.of());
        kernels.close();
    }

    /** An f32 buffer's values as a packed bf16 cache (rounded to nearest even, as a bf16 cache stores them). */
    private static Buf packedBf16(Buf f32) {
        MemorySegment seg = Arena.ofAuto().allocate(2L * f32.elements(), 64);   // off the heap, as CpuGraph.allocateState keeps a cache
        for (int j = 0; j < f32.elements(); j++) seg.setAtIndex(SHORT_LE, j, Simd.toBf16(f32.f[j]));
        return Buf.packed(f32.name, DType.BF16, f32.shape, seg);
    }

    /**
     * The absorbed MLA kernel (W_UK into the query, W_UV after the latent sum) against the op's un-absorbed
     * definition: three tokens of two sequences over a paged latent cache (blocks out of order), one padding
     * token, and for the sparse form index lists with repeats, future and -1 entries, one of them empty.
     */
    @ParameterizedTest(name = "{0} with {1} w_kv_b")
    @CsvSource({"FUSED_INFER_ATTENTION_MLA, BF16", "FUSED_INFER_ATTENTION_MLA, F32", "MLA_ATTENTION, F16",
            "SPARSE_FLASH_ATTENTION, BF16", "MLA_ATTENTION_SPARSE, F32"})
    void latentAttentionMatchesItsUnabsorbedDefinition(Kernel kernel, DType weight) {
        int heads = 3, dn = 20, dr = 6, v = 12, c = 36, blocks = 5, bs = 2, tokens = 4;
        SplittableRandom r = new SplittableRandom(kernel.ordinal() * 17L + weight.ordinal());
        boolean sparse = kernel == Kernel.SPARSE_FLASH_ATTENTION || kernel == Kernel.MLA_ATTENTION_SPARSE;
        try (Arena arena = Arena.ofShared()) {
            Buf qn = floats("q_nope", r, tokens, heads, dn), qp = floats("q_pe", r, tokens, heads, dr);
            Buf cache = floats("cache", r, blocks, bs, 1, c + dr), w = weight("w_kv_b", weight, r, arena, heads * (dn + v), c);
            Buf table = new Buf("block_table", DType.I32, new int[] {2, 3}, null, new int[] {4, 1, -1, 0, 2, 3}, null);
            Buf slots = new Buf("slots", DType.I32, new int[] {tokens}, null, new int[] {0, 1, -1, 1}, null);
            Buf positions = new Buf("positions", DType.I32, new int[] {tokens}, null, new int[] {3, 5, 0, 2}, null);
            Buf indices = new Buf("indices", DType.I32, new int[] {tokens, 4}, null,
                    new int[] {3, 0, 0, -1, 5, 9, 1, 4, -1, -1, -1, -1, 7, 8, -1, 6}, null);
            Buf[] in = sparse ? new Buf[] {qn, qp, cache, w, table, slots, positions, indices} : new Buf[] {qn, qp, cache, w, table, slots, positions};
            CpuKernels.checkSupported(kernel, java.util.Arrays.stream(in).map(b -> b.dtype).toList());
            Attrs a = kernel == Kernel.FUSED_INFER_ATTENTION_MLA
                    ? Attrs.of("num_heads", (long) heads, "scale", 0.2, "v_head_dim", (long) v, "sparse_mode", 3L, "input_layout", "TND")
                    : kernel == Kernel.SPARSE_FLASH_ATTENTION ? Attrs.of("num_heads", (long) heads, "scale", 0.2, "v_head_dim", (long) v)
                    : Attrs.of("scale", 0.2, "v_head_dim", (long) v);
            Buf fast = floats("out", r, tokens, heads, v), oracle = floats("out", r, tokens, heads, v);
            CpuKernels k = new CpuKernels(new Parallel(2));
            k.launch(kernel, in, new Buf[] {fast}, a);
            k.reference(kernel, in, new Buf[] {oracle}, a);
            for (int j = 0; j < fast.f.length; j++) {
                assertEquals(oracle.f[j], fast.f[j], 1e-4f * (1 + Math.abs(oracle.f[j])), kernel + " " + weight + " element " + j);
            }
            assertSameAtArenaOffsets(k, kernel, in, new Buf[] {fast}, a);
            k.close();
        }
    }

    /** The elementwise and normalization kernels compute what their ops define, to the bit (same formulas, same precision). */
    @ParameterizedTest(name = "{0}")
    @CsvSource({"SUB", "DIV", "SIGMOID", "SOFTPLUS", "EXP", "NEG", "RELU", "SCALE", "L2_NORM", "LAYER_NORM", "CAST", "GROUP_LIMIT"})
    void activationKernelsAreTheirOpsDefinitions(Kernel kernel) {
        SplittableRandom r = new SplittableRandom(kernel.ordinal());
        int rows = 37, d = 48;
        try (Arena arena = Arena.ofShared()) {
            Buf x = floats("x", r, rows, d), y = floats("y", r, rows, d);
            Buf[] in = switch (kernel) {
                case SUB, DIV -> new Buf[] {x, y};
                case LAYER_NORM -> new Buf[] {x, weight("w", DType.BF16, r, arena, d), weight("b", DType.BF16, r, arena, d)};
                default -> new Buf[] {x};
            };
            Attrs a = switch (kernel) {
                case SCALE -> Attrs.of("factor", 0.37);
                case L2_NORM, LAYER_NORM -> Attrs.of("eps", 1e-6);
                case CAST -> Attrs.of("dtype", "bf16");
                case GROUP_LIMIT -> Attrs.of("groups", 4L, "keep", 2L, "select", "top2_sum");
                default -> Attrs.of();
            };
            Buf fast = floats("out", r, rows, d), oracle = floats("out", r, rows, d);
            CpuKernels k = new CpuKernels(new Parallel(2));
            k.launch(kernel, in, new Buf[] {fast}, a);
            k.reference(kernel, in, new Buf[] {oracle}, a);
            assertArrayEquals(oracle.f, fast.f, kernel.name());
            assertSameAtArenaOffsets(k, kernel, in, new Buf[] {fast}, a);
            k.close();
        }
    }

    /**
     * swiglu_quant is the CPU's swiglu then its dynamic_quant, to the bit (one row through scratch instead
     * of the f32 activations), over more rows than one take of the threads; and the op's definition within
     * one quantization step (the CPU's SwiGLU uses a float exp, the definition a double one) with scales
     * within float rounding.
     */
    @Test
    void swigluQuantIsSwigluThenDynamicQuant() {
        SplittableRandom r = new SplittableRandom(29);
        int rows = 70, n = 256;
        Buf x = floats("gate_up", r, rows, 2 * n);
        for (int j = 0; j < n; j++) x.f[5 * 2 * n + j] = x.f[5 * 2 * n + n + j] = 0f;          // a zero row: scale 0, q 0
        Buf q = int8("act_q", r, rows, n), s = floats("act_s", r, rows);
        Buf act = floats("act", r, rows, n), q2 = int8("act_q", r, rows, n), s2 = floats("act_s", r, rows);
        Buf qRef = int8("act_q", r, rows, n), sRef = floats("act_s", r, rows);
        CpuKernels k = new CpuKernels(new Parallel(2));
        k.launch(Kernel.SWIGLU_QUANT, new Buf[] {x}, new Buf[] {q, s}, Attrs.of());
        k.launch(Kernel.SWIGLU, new Buf[] {x}, new Buf[] {act}, Attrs.of());
        k.launch(Kernel.DYNAMIC_QUANT, new Buf[] {act}, new Buf[] {q2, s2}, Attrs.of());
        k.reference(Kernel.SWIGLU_QUANT, new Buf[] {x}, new Buf[] {qRef, sRef}, Attrs.of());
        assertArrayEquals(q2.i, q.i);
        assertArrayEquals(s2.f, s.f);
        assertEquals(0f, s.f[5]);
        for (int j = 0; j < rows * n; j++) assertTrue(Math.abs(q.i[j] - qRef.i[j]) <= 1, "element " + j + ": " + q.i[j] + " against " + qRef.i[j]);
        for (int row = 0; row < rows; row++) assertEquals(sRef.f[row], s.f[row], 1e-5f * sRef.f[row], "scale of row " + row);
        assertSameAtArenaOffsets(k, Kernel.SWIGLU_QUANT, new Buf[] {x}, new Buf[] {q, s}, Attrs.of());
        k.close();
    }

    /** Weight quantization to int8 and int4 is its op's definition to the bit. */
    @ParameterizedTest(name = "{0} bits")
    @org.junit.jupiter.params.provider.ValueSource(ints = {8, 4})
    void weightQuantizationIsItsDefinition(int bits) {
        SplittableRandom r = new SplittableRandom(bits);
        try (Arena arena = Arena.ofShared()) {
            Buf w = weight("w", DType.BF16, r, arena, 3, 10, 40);
            DType q = bits == 8 ? DType.I8 : DType.I4;
            Buf fq = new Buf("q", q, new int[] {3, 10, 40}, null, new int[1200], null), oq = new Buf("q", q, new int[] {3, 10, 40}, null, new int[1200], null);
            Buf fs = floats("s", r, 3, 10), os = floats("s", r, 3, 10);
            CpuKernels kernels = new CpuKernels(new Parallel(2));
            kernels.launch(Kernel.WEIGHT_QUANT, new Buf[] {w}, new Buf[] {fq, fs}, Attrs.of("bits", (long) bits));
            kernels.reference(Kernel.WEIGHT_QUANT, new Buf[] {w}, new Buf[] {oq, os}, Attrs.of("bits", (long) bits));
            assertSameAtArenaOffsets(kernels, Kernel.WEIGHT_QUANT, new Buf[] {w}, new Buf[] {fq, fs}, Attrs.of("bits", (long) bits));
            kernels.close();
            assertArrayEquals(oq.i, fq.i);
            assertArrayEquals(os.f, fs.f);
        }
    }

    /** The unfused quantized experts are their op's definition to the bit, with int8 weights in place and int4 ones widened. */
    @ParameterizedTest(name = "{0} experts")
    @CsvSource({"I8", "I4"})
    void unfusedQuantizedExpertsAreTheirDefinition(DType type) {
        SplittableRandom r = new SplittableRandom(type.ordinal());
        int tokens = 5, hidden = 32, inter = 16, topk = 2;
        try (Arena arena = Arena.ofShared()) {
            Buf x = floats("x", r, tokens, hidden), weights = positive("weights", r, tokens, topk);
            Buf ids = new Buf("experts", DType.I32, new int[] {tokens, topk}, null, new int[tokens * topk], null);
            for (int t = 0; t < tokens; t++) {
                ids.i[t * topk] = r.nextInt(EXPERTS);
                ids.i[t * topk + 1] = (ids.i[t * topk] + 1 + r.nextInt(EXPERTS - 1)) % EXPERTS;
            }
            Buf[] in = {x, weights, ids, weight("w_gate", type, r, arena, EXPERTS, inter, hidden), positive("s_gate", r, EXPERTS, inter),
                    weight("w_up", type, r, arena, EXPERTS, inter, hidden), positive("s_up", r, EXPERTS, inter),
                    weight("w_down", type, r, arena, EXPERTS, hidden, inter), positive("s_down", r, EXPERTS, hidden)};
            Buf fast = floats("y", r, tokens, hidden), oracle = floats("y", r, tokens, hidden);
            CpuKernels kernels = new CpuKernels(new Parallel(2));
            kernels.launch(Kernel.MOE_EXPERTS_QUANT, in, new Buf[] {fast}, Attrs.of());
            kernels.reference(Kernel.MOE_EXPERTS_QUANT, in, new Buf[] {oracle}, Attrs.of());
            assertSameAtArenaOffsets(kernels, Kernel.MOE_EXPERTS_QUANT, in, new Buf[] {fast}, Attrs.of());
            kernels.close();
            assertArrayEquals(oracle.f, fast.f);
        }
    }

    /** The per-head matmul (bf16 weights) is its op's definition to the bit. */
    @Test
    void headMatmulIsItsDefinition() {
        SplittableRandom r = new SplittableRandom(17);
        try (Arena arena = Arena.ofShared()) {
            Buf x = floats("x", r, 5, 3, 40), w = weight("w", DType.BF16, r, arena, 3, 24, 40);
            Buf fast = floats("y", r, 5, 3, 24), oracle = floats("y", r, 5, 3, 24);
            CpuKernels kernels = new CpuKernels(new Parallel(2));
            kernels.launch(Kernel.HEAD_MATMUL, new Buf[] {x, w}, new Buf[] {fast}, Attrs.of());
            kernels.reference(Kernel.HEAD_MATMUL, new Buf[] {x, w}, new Buf[] {oracle}, Attrs.of());
            assertSameAtArenaOffsets(kernels, Kernel.HEAD_MATMUL, new Buf[] {x, w}, new Buf[] {fast}, Attrs.of());
            kernels.close();
            assertArrayEquals(oracle.f, fast.f);
        }
    }

    /** Grouped top-k routing chooses the op's experts with the op's weights, to the bit: DeepSeek's and a softmax form. */
    @ParameterizedTest(name = "{0}")
    @CsvSource({"sigmoid, top2_sum, 8, 4", "softmax, max, 1, 1"})
    void groupedRoutingIsItsDefinition(String norm, String select, int groups, int keep) {
        SplittableRandom r = new SplittableRandom(groups);
        int tokens = 9, experts = 32, k = 6;
        try (Arena arena = Arena.ofShared()) {
            Buf x = floats("router_logits", r, tokens, experts), bias = weight("bias", DType.BF16, r, arena, experts);
            Attrs a = Attrs.of("k", (long) k, "groups", (long) groups, "keep_groups", (long) keep, "group_select", select, "norm_type", norm,
                    "renorm", true, "routed_scaling", 2.5, "eps", 1e-20);
            Buf fw = floats("w", r, tokens, k), ow = floats("w", r, tokens, k);
            Buf fe = new Buf("e", DType.I32, new int[] {tokens, k}, null, new int[tokens * k], null), oe = new Buf("e", DType.I32, new int[] {tokens, k}, null, new int[tokens * k], null);
            CpuKernels kernels = new CpuKernels(new Parallel(2));
            kernels.launch(Kernel.MOE_GATING_TOPK, new Buf[] {x, bias}, new Buf[] {fw, fe}, a);
            kernels.reference(Kernel.MOE_GATING_TOPK, new Buf[] {x, bias}, new Buf[] {ow, oe}, a);
            assertSameAtArenaOffsets(kernels, Kernel.MOE_GATING_TOPK, new Buf[] {x, bias}, new Buf[] {fw, fe}, a);
            kernels.close();
            assertArrayEquals(oe.i, fe.i);
            assertArrayEquals(ow.f, fw.f);
        }
    }

    /** The lightning indexer picks exactly the positions its op picks, through a paged cache, padding and short contexts included. */
    @Test
    void indexerChoosesWhatItsOpChooses() {
        SplittableRandom r = new SplittableRandom(13);
        int tokens = 5, heads = 4, d = 24, topk = 6;
        Buf q = floats("q", r, tokens, heads, d), kc = floats("k_cache", r, 6, 3, 1, d), w = floats("weights", r, tokens, heads);
        Buf table = new Buf("block_table", DType.I32, new int[] {2, 3}, null, new int[] {5, 0, 2, 1, 3, 4}, null);
        Buf slots = new Buf("slots", DType.I32, new int[] {tokens}, null, new int[] {0, 0, 1, -1, 1}, null);
        Buf positions = new Buf("positions", DType.I32, new int[] {tokens}, null, new int[] {2, 8, 7, 0, 3}, null);
        Attrs a = Attrs.of("topk", (long) topk, "scale", 0.3);
        Buf fast = new Buf("sel", DType.I32, new int[] {tokens, topk}, null, new int[tokens * topk], null);
        Buf oracle = new Buf("sel", DType.I32, new int[] {tokens, topk}, null, new int[tokens * topk], null);
        CpuKernels kernels = new CpuKernels(new Parallel(2));
        kernels.launch(Kernel.INDEXER_TOPK, new Buf[] {q, kc, w, table, slots, positions}, new Buf[] {fast}, a);
        kernels.reference(Kernel.INDEXER_TOPK, new Buf[] {q, kc, w, table, slots, positions}, new Buf[] {oracle}, a);
        assertSameAtArenaOffsets(kernels, Kernel.INDEXER_TOPK, new Buf[] {q, kc, w, table, slots, positions}, new Buf[] {fast}, a);
        kernels.close();
        assertArrayEquals(oracle.i, fast.i);
        assertEquals(-1, fast.i[3], "position 2: three candidates, the rest -1");
    }

    /**
     * rms_norm and its fused forms against their ops' definitions: eleven rows (more than one thread's
     * grain) of 43 (past a multiple of the lanes), a bf16 weight with and without an offset, twice on one
     * kernel instance (the second launch finds the widened weight cached); the fused forms' sums exactly,
     * their norms within float rounding, and the quantized rows of add_rms_norm_dynamic_quant within one
     * step of the definition's where a norm falls on a rounding boundary, with the same scales.
     */
    @ParameterizedTest(name = "{0}, weight offset {1}")
    @CsvSource({"RMS_NORM, 0", "RMS_NORM, 1", "ADD_RMS_NORM, 0", "ADD_RMS_NORM, 1", "ADD_RMS_NORM_DYNAMIC_QUANT, 0", "ADD_RMS_NORM_DYNAMIC_QUANT, 1"})
    void normsMatchTheirDefinitions(Kernel kernel, float offset) {
        int rows = 11, d = 43;
        SplittableRandom r = new SplittableRandom(kernel.ordinal() * 5L + (long) offset);
        try (Arena arena = Arena.ofShared(); CpuKernels k = new CpuKernels(new Parallel(2))) {
            Buf x = floats("x", r, rows, d), residual = floats("residual", r, rows, d), w = weight("w", DType.BF16, r, arena, d);
            Attrs a = offset == 0 ? Attrs.of("eps", 1e-6) : Attrs.of("eps", 1e-6, "weight_offset", (double) offset);
            Buf[] in = kernel == Kernel.RMS_NORM ? new Buf[] {x, w} : new Buf[] {x, residual, w};
            java.util.function.Supplier<Buf[]> outs = () -> switch (kernel) {
                case RMS_NORM -> new Buf[] {floats("out", r, rows, d)};
                case ADD_RMS_NORM -> new Buf[] {floats("out", r, rows, d), floats("sum", r, rows, d)};
                default -> new Buf[] {new Buf("q", DType.I8, new int[] {rows, d}, null, new int[rows * d], null), floats("sum", r, rows, d), floats("scale", r, rows)};
            };
            Buf[] oracle = outs.get();
            k.reference(kernel, in, oracle, a);
            for (int launch = 0; launch < 2; launch++) {
                Buf[] fast = outs.get();
                k.launch(kernel, in, fast, a);
                for (int o = 0; o < fast.length; o++) {
                    String what = kernel + " output " + o + " launch " + launch;
                    if (fast[o].dtype == DType.I8) {
                        for (int j = 0; j < fast[o].i.length; j++) assertEquals(oracle[o].i[j], fast[o].i[j], 1, what + " element " + j);
                    } else if (kernel != Kernel.RMS_NORM && o == 1) {
                        assertArrayEquals(oracle[o].f, fast[o].f, what);                               // the residual sum: exact
                    } else {
                        for (int j = 0; j < fast[o].f.length; j++) assertEquals(oracle[o].f[j], fast[o].f[j], 1e-5f * (1 + Math.abs(oracle[o].f[j])), what + " element " + j);
                    }
                }
                if (launch == 1) assertSameAtArenaOffsets(k, kernel, in, fast, a);
            }
        }
    }

    /**
     * apply_rotary against its op's definition (which rotates in double): NeoX halves and interleaved
     * pairs, a rotary width short of the head (partial rotary: the rest passes through) with halves of 18
     * (past a multiple of the lanes), eleven tokens, in place and into another buffer.
     */
    @ParameterizedTest(name = "interleaved {0}, in place {1}")
    @CsvSource({"false, false", "false, true", "true, false", "true, true"})
    void rotaryMatchesItsDefinition(boolean interleaved, boolean inPlace) {
        int tokens = 11, heads = 3, hd = 40, rotary = 36, half = rotary / 2;
        SplittableRandom r = new SplittableRandom(interleaved ? 3 : 4);
        Buf x = floats("x", r, tokens, heads, hd), cos = floats("cos", r, tokens, half), sin = floats("sin", r, tokens, half);
        Attrs a = Attrs.of("rotary_dim", (long) rotary, "interleaved", interleaved);
        Buf oracle = floats("out", r, tokens, heads, hd);
        try (CpuKernels k = new CpuKernels(new Parallel(2))) {
            k.reference(Kernel.APPLY_ROTARY, new Buf[] {x, cos, sin}, new Buf[] {oracle}, a);
            Buf fast = inPlace ? x : floats("out", r, tokens, heads, hd);
            k.launch(Kernel.APPLY_ROTARY, new Buf[] {x, cos, sin}, new Buf[] {fast}, a);
            for (int j = 0; j < fast.f.length; j++) assertEquals(oracle.f[j], fast.f[j], 1e-6f * (1 + Math.abs(oracle.f[j])), "element " + j);
        }
    }

    /** Static activation quantization is its op's definition to the bit, offsets and clamping included. */
    @Test
    void staticQuantizationIsItsDefinition() {
        SplittableRandom r = new SplittableRandom(11);
        try (Arena arena = Arena.ofShared()) {
            Buf x = floats("x", r, 9, 70);
            for (int j = 0; j < x.f.length; j++) x.f[j] *= 3;                       // some beyond the int8 range: clamped
            Buf scale = new Buf("scale", DType.F32, new int[] {1}, new float[] {0.02f}, null, null);
            Buf offset = new Buf("offset", DType.F32, new int[] {1}, new float[] {3f}, null, null);
            Buf fast = new Buf("q", DType.I8, new int[] {9, 70}, null, new int[630], null), oracle = new Buf("q", DType.I8, new int[] {9, 70}, null, new int[630], null);
            CpuKernels kernels = new CpuKernels(new Parallel(2));
            kernels.launch(Kernel.STATIC_QUANT, new Buf[] {x, scale, offset}, new Buf[] {fast}, Attrs.of());
            kernels.reference(Kernel.STATIC_QUANT, new Buf[] {x, scale, offset}, new Buf[] {oracle}, Attrs.of());
            assertSameAtArenaOffsets(kernels, Kernel.STATIC_QUANT, new Buf[] {x, scale, offset}, new Buf[] {fast}, Attrs.of());
            kernels.close();
            assertArrayEquals(oracle.i, fast.i);
            assertTrue(java.util.Arrays.stream(fast.i).anyMatch(v -> v == 127) && java.util.Arrays.stream(fast.i).anyMatch(v -> v == -128), "clamped both ways");
        }
    }

    /** The data-movement kernels and the Hadamard transform give exactly what their ops define, on floats and on integers. */
    @ParameterizedTest(name = "{0} on {1}")
    @CsvSource({"SLICE, F32", "SLICE, I32", "CONCAT, F32", "CONCAT, I32", "REPEAT, F32", "TAKE_ALONG, F32", "HADAMARD, F32"})
    void dataMovementKernelsAreTheirOpsDefinitions(Kernel kernel, DType type) {
        SplittableRandom r = new SplittableRandom(kernel.ordinal() * 3L + type.ordinal());
        Buf x = type == DType.F32 ? floats("x", r, 3, 5, 16) : int8("x", r, 3, 5, 16);
        Buf[] in = switch (kernel) {
            case CONCAT -> new Buf[] {x, type == DType.F32 ? floats("y", r, 3, 2, 16) : int8("y", r, 3, 2, 16)};
            case TAKE_ALONG -> {
                Buf idx = new Buf("index", DType.I32, new int[] {3, 5, 4}, null, new int[60], null);
                for (int j = 0; j < 60; j++) idx.i[j] = r.nextInt(16);
                yield new Buf[] {x, idx};
            }
            default -> new Buf[] {x};
        };
        Attrs a = switch (kernel) {
            case SLICE -> Attrs.of("axis", 1L, "start", 1L, "end", 4L);
            case CONCAT -> Attrs.of("axis", 1L);
            case REPEAT -> Attrs.of("axis", -2L, "times", 3L);
            case HADAMARD -> Attrs.of("scale", 0.25);
            default -> Attrs.of();
        };
        int[] shape = switch (kernel) {
            case SLICE -> new int[] {3, 3, 16};
            case CONCAT -> new int[] {3, 7, 16};
            case REPEAT -> new int[] {3, 15, 16};
            case TAKE_ALONG -> new int[] {3, 5, 4};
            default -> new int[] {3, 5, 16};
        };
        int n = count(shape);
        boolean ints = type != DType.F32 && kernel != Kernel.TAKE_ALONG;
        Buf fast = new Buf("out", type, shape, ints ? null : new float[n], ints ? new int[n] : null, null);
        Buf oracle = new Buf("out", type, shape, ints ? null : new float[n], ints ? new int[n] : null, null);
        CpuKernels k = new CpuKernels(new Parallel(2));
        k.launch(kernel, in, new Buf[] {fast}, a);
        k.reference(kernel, in, new Buf[] {oracle}, a);
        assertSameAtArenaOffsets(k, kernel, in, new Buf[] {fast}, a);
        k.close();
        if (ints) assertArrayEquals(oracle.i, fast.i, kernel.name());
        else assertArrayEquals(oracle.f, fast.f, kernel.name());
    }

    /**
     * The gated delta rule kernel (step recurrence, in place) against the op's definition, step and chunked:
     * a prefill of four tokens of slot 1 from position 0 (its stale state reset), then slot 0 continuing its
     * state, a padding token, and slot 1 again.
     */
    @ParameterizedTest(name = "chunk_size {0}")
    @org.junit.jupiter.params.provider.ValueSource(ints = {0, 2})
    void gatedDeltaRuleMatchesItsDefinition(int chunk) {
        SplittableRandom r = new SplittableRandom(chunk);
        int tokens = 7, heads = 3, dk = 20, dv = 18;
        Buf q = floats("q", r, tokens, heads, dk), k = floats("k", r, tokens, heads, dk), v = floats("v", r, tokens, heads, dv);
        Buf g = floats("g", r, tokens, heads), beta = floats("beta", r, tokens, heads);
        for (int j = 0; j < g.f.length; j++) {
            g.f[j] = -Math.abs(g.f[j]) * 0.3f;                  // decays below one
            beta.f[j] = 1 / (1 + (float) Math.exp(-beta.f[j]));  // in (0, 1)
        }
        for (Buf x : new Buf[] {q, k}) {                         // unit rows, as the model's l2-normed q and k
            for (int row = 0; row < tokens * heads; row++) {
                double n = 0;
                for (int i = 0; i < dk; i++) n += x.f[row * dk + i] * x.f[row * dk + i];
                for (int i = 0; i < dk; i++) x.f[row * dk + i] /= (float) Math.sqrt(n);
            }
        }
        Buf slots = new Buf("slots", DType.I32, new int[] {tokens}, null, new int[] {1, 1, 1, 1, 0, -1, 1}, null);
        Buf positions = new Buf("positions", DType.I32, new int[] {tokens}, null, new int[] {0, 1, 2, 3, 9, 0, 4}, null);
        Buf state = floats("state", r, 2, heads, dk, dv);
        float[] initial = state.f.clone();
        Attrs a = chunk == 0 ? Attrs.of() : Attrs.of("chunk_size", (long) chunk);
        Buf fastOut = floats("o", r, tokens, heads, dv), oracleOut = floats("o", r, tokens, heads, dv);
        Buf fastState = new Buf("state.next", DType.F32, state.shape(), state.f, null, null);       // in place, as bound
        Buf oracleState = floats("state.next", r, 2, heads, dk, dv);
        Buf oracleIn = new Buf("state", DType.F32, state.shape(), initial, null, null);
        CpuKernels kernels = new CpuKernels(new Parallel(2));
        kernels.launch(Kernel.GATED_DELTA_RULE, new Buf[] {q, k, v, g, beta, state, slots, positions}, new Buf[] {fastOut, fastState}, a);
        kernels.reference(Kernel.GATED_DELTA_RULE, new Buf[] {q, k, v, g, beta, oracleIn, slots, positions}, new Buf[] {oracleOut, oracleState}, a);
        kernels.close();
        for (int j = 0; j < fastOut.f.length; j++) assertEquals(oracleOut.f[j], fastOut.f[j], 1e-4f * (1 + Math.abs(oracleOut.f[j])), "output " + j);
        for (int j = 0; j < state.f.length; j++) assertEquals(oracleState.f[j], state.f[j], 1e-4f * (1 + Math.abs(oracleState.f[j])), "state " + j);
    }

    /** The causal convolution kernel, in place on its state, is the op's definition to the bit (bf16 weights). */
    @Test
    void causalConvolutionIsItsDefinition() {
        SplittableRandom r = new SplittableRandom(5);
        int tokens = 6, channels = 300, k = 4;
        try (Arena arena = Arena.ofShared()) {
            Buf x = floats("x", r, tokens, channels), w = weight("w", DType.BF16, r, arena, channels, k);
            Buf state = floats("state", r, 2, k - 1, channels);
            Buf oracleIn = new Buf("state", DType.F32, state.shape(), state.f.clone(), null, null);
            Buf slots = new Buf("slots", DType.I32, new int[] {tokens}, null, new int[] {1, 1, 1, 0, -1, 1}, null);
            Buf positions = new Buf("positions", DType.I32, new int[] {tokens}, null, new int[] {0, 1, 2, 7, 0, 3}, null);
            Buf fastOut = floats("y", r, tokens, channels), oracleOut = floats("y", r, tokens, channels);
            Buf fastState = new Buf("state.next", DType.F32, state.shape(), state.f, null, null), oracleState = floats("state.next", r, 2, k - 1, channels);
            CpuKernels kernels = new CpuKernels(new Parallel(2));
            kernels.launch(Kernel.CAUSAL_CONV1D, new Buf[] {x, w, state, slots, positions}, new Buf[] {fastOut, fastState}, Attrs.of());
            kernels.reference(Kernel.CAUSAL_CONV1D, new Buf[] {x, w, oracleIn, slots, positions}, new Buf[] {oracleOut, oracleState}, Attrs.of());
            kernels.close();
            assertArrayEquals(oracleOut.f, fastOut.f);
            assertArrayEquals(oracleState.f, state.f);
        }
    }

    @ParameterizedTest(name = "{0} refuses {1} weights")
    @CsvSource({"MATMUL, I8", "MATMUL, I32", "GROUPED_MATMUL, I4", "QUANT_MATMUL, BF16", "QUANT_MATMUL, I4",
            "GROUPED_QUANT_MATMUL, F32", "EMBEDDING, I8", "QUANT_MATMUL_STATIC, BF16"})
    void unsupportedPairsAreRefusedNamingTheKernelAndTheDtypes(Kernel kernel, DType weight) {
        List<DType> types = switch (kernel) {
            case MATMUL -> List.of(DType.F32, weight);
            case GROUPED_MATMUL -> List.of(DType.F32, weight, DType.I32);
            case QUANT_MATMUL -> List.of(DType.I8, DType.F32, weight, DType.F32);
            case QUANT_MATMUL_STATIC -> List.of(DType.I8, weight, DType.I32, DType.F32);
            case GROUPED_QUANT_MATMUL -> List.of(DType.I8, DType.F32, weight, DType.F32, DType.I32);
            case EMBEDDING -> List.of(weight, DType.I32);
            default -> throw new IllegalArgumentException(kernel.name());
        };
        var e = assertThrows(IllegalArgumentException.class, () -> CpuKernels.checkSupported(kernel, types));
        assertTrue(e.getMessage().contains(kernel.name().toLowerCase()) && e.getMessage().contains(types.toString()), e.getMessage());
    }

    /** A launch's operands, each weight bound as a loaded model binds it: with its panels where the kernel streams it ({@link WeightPanels#reads}). */
    private static Buf[] inputs(Kernel kernel, DType weight, int rows, SplittableRandom r, Arena arena) {
        Buf[] in = operands(kernel, weight, rows, r, arena);
        for (int o = 0; o < in.length; o++) if (in[o].isWeight() && WeightPanels.reads(kernel, o, in[o].dtype)) in[o] = paneled(in[o], arena);
        return in;
    }

    private static Buf[] operands(Kernel kernel, DType weight, int rows, SplittableRandom r, Arena arena) {
        return switch (kernel) {
            case MATMUL -> new Buf[] {floats("x", r, rows, K), weight("w", weight, r, arena, N, K)};
            case GROUPED_MATMUL -> new Buf[] {floats("x", r, rows, K), weight("w", weight, r, arena, EXPERTS, N, K), counts(rows)};
            case QUANT_MATMUL -> new Buf[] {int8("x", r, rows, K), positive("xs", r, rows), weight("w", weight, r, arena, N, K), positive("ws", r, N)};
            case QUANT_MATMUL_STATIC -> new Buf[] {int8("x", r, rows, K), weight("w", weight, r, arena, N, K), weight("quant_bias", DType.I32, r, arena, N),
                    weight("deq_scale", DType.F32, r, arena, N)};
            case GROUPED_QUANT_MATMUL -> new Buf[] {int8("x", r, rows, K), positive("xs", r, rows), weight("w", weight, r, arena, EXPERTS, N, K),
                    positive("ws", r, EXPERTS, N), counts(rows)};
            case EMBEDDING -> {
                Buf ids = new Buf("ids", DType.I32, new int[] {rows}, null, new int[rows], null);
                for (int t = 0; t < rows; t++) ids.i[t] = r.nextInt(N);
                yield new Buf[] {weight("table", weight, r, arena, N, K), ids};
            }
            default -> throw new IllegalArgumentException(kernel.name());
        };
    }

    /** Rows split over the experts unevenly, one expert left empty. */
    private static Buf counts(int rows) {
        int[] c = {rows / 2, 0, rows - rows / 2 - 1, 1};
        return new Buf("counts", DType.I32, new int[] {EXPERTS}, null, c, null);
    }

    /**
     * A copy of an activation at element {@code off} of a larger array, as a bound graph's arena places it,
     * the elements around it NaN (or -99 for integers) so a kernel that reads or writes outside its
     * buffer shows. Weights and packed state are returned as they are.
     */
    private static Buf relocated(Buf b, int off) {
        if (b.w != null) return b;
        int n = b.elements();
        if (b.f != null) {
            float[] arena = new float[off + n + 7];
            Arrays.fill(arena, Float.NaN);
            System.arraycopy(b.f, b.off, arena, off, n);
            return Buf.floatsAt(b.name, b.dtype, b.shape, arena, off);
        }
        int[] arena = new int[off + n + 7];
        Arrays.fill(arena, -99);
        System.arraycopy(b.i, b.off, arena, off, n);
        return Buf.intsAt(b.name, b.dtype, b.shape, arena, off);
    }

    /**
     * Runs {@code kernel} again on every activation operand and output relocated to its own offset in a
     * larger array, and asserts the outputs are the ones it gave at offset 0, bit for bit, with nothing
     * written around them.
     */
    private static void assertSameAtArenaOffsets(CpuKernels k, Kernel kernel, Buf[] in, Buf[] expected, Attrs a) {
        Buf[] movedIn = new Buf[in.length], movedOut = new Buf[expected.length];
        for (int j = 0; j < in.length; j++) movedIn[j] = relocated(in[j], 3 + 5 * j);
        for (int j = 0; j < expected.length; j++) movedOut[j] = relocated(expected[j], 11 + 7 * j);
        k.launch(kernel, movedIn, movedOut, a);
        for (int j = 0; j < expected.length; j++) {
            Buf e = expected[j], m = movedOut[j];
            int n = e.elements();
            if (e.f != null) {
                assertArrayEquals(Arrays.copyOfRange(e.f, e.off, e.off + n), Arrays.copyOfRange(m.f, m.off, m.off + n), kernel + " output " + j + " at an offset");
                for (int q = 0; q < m.f.length; q++) if (q < m.off || q >= m.off + n) assertTrue(Float.isNaN(m.f[q]), kernel + " wrote outside output " + j);
            } else {
                assertArrayEquals(Arrays.copyOfRange(e.i, e.off, e.off + n), Arrays.copyOfRange(m.i, m.off, m.off + n), kernel + " output " + j + " at an offset");
                for (int q = 0; q < m.i.length; q++) if (q < m.off || q >= m.off + n) assertEquals(-99, m.i[q], kernel + " wrote outside output " + j);
            }
        }
    }

    /** An i32 buffer of n zeros. */
    private static Buf ints(String name, int n) {
        return new Buf(name, DType.I32, new int[] {n}, null, new int[n], null);
    }

    private static Buf floats(String name, SplittableRandom r, int... shape) {
        Buf b = new Buf(name, DType.F32, shape, new float[count(shape)], null, null);
        for (int j = 0; j < b.f.length; j++) b.f[j] = (float) r.nextGaussian();
        return b;
    }

    private static Buf positive(String name, SplittableRandom r, int... shape) {
        Buf b = floats(name, r, shape);
        for (int j = 0; j < b.f.length; j++) b.f[j] = 0.01f + Math.abs(b.f[j]) * 0.02f;
        return b;
    }

    private static Buf int8(String name, SplittableRandom r, int... shape) {
        Buf b = new Buf(name, DType.I8, shape, null, new int[count(shape)], null);
        for (int j = 0; j < b.i.length; j++) b.i[j] = r.nextInt(-127, 128);
        return b;
    }

    /** A weight as an artifact stores it: little-endian bf16 / f16 / f32, int8, or int4 two per byte (low nibble first). */
    private static Buf weight(String name, DType type, SplittableRandom r, Arena arena, int... shape) {
        int n = count(shape);
        MemorySegment seg = arena.allocate(switch (type) {
            case BF16, F16 -> 2L * n;
            case F32 -> 4L * n;
            case I8 -> n;
            case I32 -> 4L * n;
            case I4 -> (n + 1) / 2;
            default -> throw new IllegalArgumentException(type.name());
        });
        for (int j = 0; j < n; j++) {
            float v = (float) r.nextGaussian() * 0.1f;
            switch (type) {
                case BF16 -> seg.setAtIndex(SHORT_LE, j, (short) (Float.floatToIntBits(v) >>> 16));
                case F16 -> seg.setAtIndex(SHORT_LE, j, Float.floatToFloat16(v));
                case F32 -> seg.setAtIndex(FLOAT_LE, j, v);
                case I8 -> seg.set(ValueLayout.JAVA_BYTE, j, (byte) r.nextInt(-128, 128));
                case I32 -> seg.setAtIndex(ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), j, r.nextInt(-5000, 5000));
                case I4 -> {
                    int nibble = r.nextInt(-8, 8) & 0xF;
                    byte old = seg.get(ValueLayout.JAVA_BYTE, j / 2);
                    seg.set(ValueLayout.JAVA_BYTE, j / 2, (byte) (j % 2 == 0 ? (old & 0xF0) | nibble : (old & 0x0F) | (nibble << 4)));
                }
                default -> throw new IllegalArgumentException(type.name());
            }
        }
        return new Buf(name, type, shape, null, null, seg);
    }

    /** {@code w} with its copy in panels, as a loaded model binds a matmul's weight. */
    private static Buf paneled(Buf w, Arena arena) { return paneled(w, arena, Vnni.AVAILABLE); }

    /** {@code w} with its copy in panels, int8 in the VNNI layout where {@code vnni}. */
    private static Buf paneled(Buf w, Arena arena, boolean vnni) {
        int[] s = w.shape;
        try (Parallel par = new Parallel(2)) {
            return w.withPanels(WeightPanels.pack(w.w, w.dtype, s.length == 3 ? s[0] : 1, s[s.length - 2], s[s.length - 1], vnni, arena, par), vnni);
        }
    }

    private static int count(int... shape) {
        int n = 1;
        for (int d : shape) n *= d;
        return n;
    }
}
