package dev.moec.executor.cpu;

import dev.moec.backend.Kernel;
import dev.moec.ir.DType;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.IntRange;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The greedy lm_head: the bf16 dot tiles' sums (their instructions: {@link X86AsmTest}), and the
 * argmaxes the head finds from them, against the argmax of the f32 matmul's logits.
 */
class GreedyHeadTest {
    private static final ValueLayout.OfShort SHORT_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    /** Shared by the JUnit tests and the jqwik property (which does not run JUnit's lifecycle); daemon threads. */
    private static final Parallel par = new Parallel(2);
    private static final CpuKernels kernels = new CpuKernels(par);

    /**
     * Small integers, whose products and sums no step rounds: each dot-tile sum is then the exact dot
     * product, which pins every channel to its lane (one row to more than a tile takes, a partial panel).
     */
    @ParameterizedTest(name = "{0} rows, k {1}, {2} channels")
    @CsvSource({"1, 2, 32", "8, 1024, 100", "13, 66, 37", "12, 512, 64"})
    void dotTileSumsAreExactWhereNothingRounds(int rows, int k, int m) {
        assumeTrue(Bf16Tiles.DOT_AVAILABLE, "no bf16 dot tiles on this machine");
        SplittableRandom r = new SplittableRandom(rows * 31L + k);
        try (Arena arena = Arena.ofShared()) {
            Head h = head(arena, m, k, rows, (j, c) -> r.nextInt(7) - 3, (i, c) -> r.nextInt(9) - 4);
            int half = k / 2;
            int[] pairs = new int[rows * half];
            for (int i = 0; i < rows; i++) {
                for (int c = 0; c < k; c++) pairs[i * half + c / 2] |= (Simd.toBf16(h.x.f[i * k + c]) & 0xFFFF) << (16 * (c % 2));
            }
            int width = Bf16Tiles.WIDTH, panels = Math.ceilDiv(m, width);
            float[] sums = new float[panels * rows * width], want = h.logits();
            for (int r0 = 0; r0 < rows; r0 += Bf16Tiles.MAX_ROWS) {                   // a tile's rows a call, as [panels][rows][32]
                int n = Math.min(Bf16Tiles.MAX_ROWS, rows - r0);
                Bf16Tiles.dotSums(pairs, r0 * half, half, n, h.w.panels, 0, k, panels, sums, 0);
                for (int i = r0; i < r0 + n; i++) {
                    for (int d = 0; d < m; d++) {
                        float got = sums[((d / width) * n + i - r0) * width + Bf16Tiles.dotLane(d % width)];
                        assertEquals(want[i * m + d], got, "row " + i + ", channel " + d);
                    }
                }
            }
        }
    }

    /**
     * Gaussian rows: the head's argmaxes are the f32 logits' (rows of x asked for out of order, one left
     * out; 3001 channels, so the last panel is part padding). Negative: every logit below zero, where
     * the padding's zero sums must not count.
     */
    @ParameterizedTest(name = "seed {0}, negative {1}")
    @CsvSource({"1, false", "2, false", "3, false", "4, true", "5, true"})
    void argmaxesAreTheLogitsArgmaxes(long seed, boolean negative) {
        assumeTrue(Bf16Tiles.DOT_AVAILABLE, "no bf16 dot tiles on this machine");
        SplittableRandom r = new SplittableRandom(seed);
        try (Arena arena = Arena.ofShared()) {
            Head h = head(arena, 3001, 256, 8, (j, c) -> (float) (negative ? -Math.abs(r.nextGaussian()) : r.nextGaussian()) * 0.05f,
                    (i, c) -> (float) (negative ? Math.abs(r.nextGaussian()) : r.nextGaussian()));
            int[] want = {5, 0, 7, 1, 2, 3, 4};
            assertArrayEquals(h.argmaxes(want), h.greedy().argmax(kernels, want));
        }
    }

    /**
     * Rows the bf16 approximations cannot tell apart: copies of one row, some exact (a tie, which the
     * first id wins), others one bf16 step apart in a single column, among random ones, with x far from
     * bf16 values. Every row's candidates are then several, and their f32 logits decide.
     */
    @Test
    void nearTiesAreDecidedByTheF32Logits() {
        assumeTrue(Bf16Tiles.DOT_AVAILABLE, "no bf16 dot tiles on this machine");
        SplittableRandom r = new SplittableRandom(11);
        int n = 700, k = 128;
        float[] base = new float[k];
        for (int c = 0; c < k; c++) base[c] = Math.abs((float) r.nextGaussian());
        try (Arena arena = Arena.ofShared()) {
            Head h = head(arena, n, k, 4, (j, c) -> {
                if (j % 50 == 7) return base[c];                                      // exact copies: ties
                if (j % 50 == 9) return c == j % k ? bf16Step(base[c], 1) : base[c];   // one column a bit larger
                if (j % 50 == 11) return c == j % k ? bf16Step(base[c], -1) : base[c];          // one a bit smaller
                return (float) r.nextGaussian() * 0.1f;
            }, (i, c) -> 1 + (float) r.nextDouble() * 0x1p-8f * (i + 1));
            int[] want = {0, 1, 2, 3};
            int[] ids = h.greedy().argmax(kernels, want);
            assertNotNull(ids, "decided");
            assertArrayEquals(h.argmaxes(want), ids);
        }
    }

    /** Rows equal to the bit tie exactly, and the first of them wins, as in {@link Simd#argmax}, wherever they lie in the panels and tasks. */
    @Test
    void exactTiesGoToTheLowerId() {
        assumeTrue(Bf16Tiles.DOT_AVAILABLE, "no bf16 dot tiles on this machine");
        SplittableRandom r = new SplittableRandom(5);
        float[] top = new float[64];
        for (int c = 0; c < top.length; c++) top[c] = 1 + (float) r.nextDouble();
        try (Arena arena = Arena.ofShared()) {
            Head h = head(arena, 1000, 64, 3, (j, c) -> j == 77 || j == 78 || j == 500 || j == 999 ? top[c] : (float) r.nextGaussian() * 0.1f,
                    (i, c) -> 1 + (float) r.nextDouble());
            int[] want = {0, 1, 2};
            assertArrayEquals(new int[] {77, 77, 77}, h.argmaxes(want), "the f32 logits' argmaxes");
            assertArrayEquals(new int[] {77, 77, 77}, h.greedy().argmax(kernels, want));
        }
    }

    /**
     * Where the approximations rank two rows the other way round: w_a = (1, 0), w_b = (0, 1 + 2^-7), x_0
     * = 1 + 3 * 2^-8 + 2^-20 (bf16: 1 + 2^-6), x_1 = 1 + 2^-8 - 2^-20 (bf16: 1). Over bf16 x row a leads
     * by 2^-7, far past any rounding; in f32 row b leads by about 2^-15. Only the bound keeps b a
     * candidate. Row 1 of x has the two values swapped, and b the lead both ways.
     */
    @Test
    void aRowTheApproximationsRankLowerStillWins() {
        assumeTrue(Bf16Tiles.DOT_AVAILABLE, "no bf16 dot tiles on this machine");
        float x0 = 1 + 3 * 0x1p-8f + 0x1p-20f, x1 = 1 + 0x1p-8f - 0x1p-20f;
        try (Arena arena = Arena.ofShared()) {
            Head h = head(arena, 300, 64, 2, (j, c) -> {
                if (c >= 2) return 0f;
                if (j == 100) return c == 0 ? 1f : 0f;                       // a
                if (j == 200) return c == 1 ? 1 + 0x1p-7f : 0f;              // b
                return 0.3f;
            }, (i, c) -> c >= 2 ? 0f : (c == 0) == (i == 0) ? x0 : x1);
            assertArrayEquals(new int[] {200, 200}, h.argmaxes(new int[] {0, 1}), "the f32 logits' argmaxes");
            assertArrayEquals(new int[] {200, 200}, h.greedy().argmax(kernels, new int[] {0, 1}));
        }
    }

    /**
     * Any shape and any values: the head's argmaxes are the f32 logits', or it leaves the step to the
     * launch (null). Weights are drawn from a few values, their neighbours one bf16 step away and
     * Gaussians, so rows tie exactly and nearly; activations at scales from 1e-30 to 1e6.
     */
    @Property(tries = 150)
    void theHeadNeverPicksAnotherToken(@ForAll @IntRange(min = 1, max = 700) int n, @ForAll @IntRange(min = 1, max = 96) int halfK,
                                       @ForAll @IntRange(min = 1, max = 12) int rows, @ForAll long seed) {
        assumeTrue(Bf16Tiles.DOT_AVAILABLE, "no bf16 dot tiles on this machine");
        SplittableRandom r = new SplittableRandom(seed);
        int k = 2 * halfK;
        float[] palette = {0f, 1f, -1f, 0.5f, 2f, bf16Step(1f, 1), bf16Step(1f, -1), bf16Step(0.5f, 1)};
        float[] scale = new float[rows];
        for (int i = 0; i < rows; i++) scale[i] = (float) Math.pow(10, r.nextInt(-30, 7));
        try (Arena arena = Arena.ofShared()) {
            Head h = head(arena, n, k, rows, (j, c) -> r.nextInt(3) == 0 ? (float) r.nextGaussian() : palette[r.nextInt(palette.length)],
                    (i, c) -> (float) r.nextGaussian() * scale[i]);
            int[] want = new int[rows];
            for (int i = 0; i < rows; i++) want[i] = i;
            int[] ids = h.greedy().argmax(kernels, want);
            if (ids != null) assertArrayEquals(h.argmaxes(want), ids, n + " x " + k + ", " + rows + " rows");
        }
    }

    /** More candidates than a row may have, a value that is not finite in x or in the weight: undecided (null), and the launch runs. */
    @Test
    void whatTheBoundCannotDecideIsLeftToTheLaunch() {
        assumeTrue(Bf16Tiles.DOT_AVAILABLE, "no bf16 dot tiles on this machine");
        int k = 64, many = GreedyHead.MAX_CANDIDATES + 1;
        try (Arena arena = Arena.ofShared()) {
            Head copies = head(arena, many + 10, k, 2, (j, c) -> j < many ? 1f : -1f, (i, c) -> 1f);
            assertNull(copies.greedy().argmax(kernels, new int[] {0, 1}));
            Head nan = head(arena, 100, k, 2, (j, c) -> 0.5f, (i, c) -> i == 1 && c == 3 ? Float.NaN : 1f);
            assertNull(nan.greedy().argmax(kernels, new int[] {0}));
            Head inf = head(arena, 100, k, 2, (j, c) -> j == 40 && c == 0 ? Float.POSITIVE_INFINITY : 0.5f, (i, c) -> 1f);
            assertNull(inf.greedy().argmax(kernels, new int[] {0}));
        }
    }

    private interface Values { float at(int row, int column); }

    /** A head over n weight rows of k columns (rounded to bf16) and {@code rows} rows of x. */
    private static Head head(Arena arena, int n, int k, int rows, Values w, Values x) {
        MemorySegment raw = arena.allocate((long) n * k * 2, 64);
        for (int j = 0; j < n; j++) for (int c = 0; c < k; c++) raw.setAtIndex(SHORT_LE, (long) j * k + c, bf16Bits(w.at(j, c)));
        MemorySegment panels = WeightPanels.pack(raw, DType.BF16, 1, n, k, false, arena, par);
        Buf wb = new Buf("lm_head", DType.BF16, new int[] {n, k}, null, null, raw).withPanels(panels, false);
        float[] xs = new float[rows * k];
        for (int i = 0; i < rows; i++) for (int c = 0; c < k; c++) xs[i * k + c] = x.at(i, c);
        Buf xb = Buf.floatsAt("x", DType.F32, new int[] {rows, k}, xs, 0);
        Buf out = Buf.floatsAt("logits", DType.F32, new int[] {rows, n}, new float[rows * n], 0);
        return new Head(xb, wb, out, () -> WeightPanels.rowNorms(raw, n, k, par), n);
    }

    private record Head(Buf x, Buf w, Buf out, java.util.function.Supplier<float[]> norms, int n) {
        GreedyHead greedy() {
            assertTrue(GreedyHead.runs(Kernel.MATMUL, new Buf[] {x, w}, new Buf[] {out}), "a greedy head's launch");
            return GreedyHead.of(kernels, new Buf[] {x, w}, norms.get());
        }

        /** The f32 logits, as the matmul launch computes them. */
        float[] logits() {
            Buf o = Buf.floatsAt("ref", DType.F32, out.shape, new float[out.elements()], 0);
            kernels.matmul(x, w, o);
            return o.f;
        }

        int[] argmaxes(int[] rows) {
            float[] l = logits();
            int[] ids = new int[rows.length];
            for (int i = 0; i < rows.length; i++) ids[i] = Simd.argmax(l, rows[i] * n, n);
            return ids;
        }
    }

    private static short bf16Bits(float v) { return (short) (Float.floatToRawIntBits(v) >>> 16); }

    /** The bf16 value {@code steps} steps from positive v's truncation to bf16. */
    private static float bf16Step(float v, int steps) { return Float.intBitsToFloat((bf16Bits(v) + steps) << 16); }
}
