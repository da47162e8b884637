package dev.moec.executor.cpu;

import dev.moec.backend.Kernel;
import dev.moec.ir.DType;

/**
 * The greedy tokens of a step whose last launch is its lm_head (a bf16 matmul into the logits), found
 * without every logit's f32 sum, yet the very tokens that the argmax of the launch's logits gives.
 *
 * <p>Why: at batch 8 the lm_head is compute-bound (8 x 151,936 x 1024 multiply-adds: 10.9 ms a step at
 * the f32 FMA peak, against 6.2 ms for its 311 MB at 50 GB/s). AVX512_BF16's {@code vdpbf16ps} does
 * two bf16 products a lane, 1.5-1.9 times the f32 FMA's rate on this machine (a C loop of each), but
 * over activations rounded to bf16, so its sums are not the logits.
 *
 * <p>How: (1) each row x is rounded to bf16, x', and the dot tiles ({@link Bf16Tiles#dotRows}) give
 * every logit's approximation a_j. (2) The difference from the f32 logit l_j (the fused chain in column
 * order that {@link Bf16Tiles#rows} computes) is bounded: |a_j - l_j| <= |w_j| (|x - x'| + g (|x| +
 * |x'|)) + c, with |.| the 2-norm, g = 2K u / (1 - 2K u) for K columns and unit roundoff u = 2^-24 (each
 * chain rounds at most 2K times: |sum error| <= g sum |w_k x_k| <= g |w_j| |x|), and c the values below
 * the smallest normal that {@code vdpbf16ps} flushes: at most 2^-126 (|x'|_1 + sqrt(K) |w_j| + 2K).
 * Each weight row's norm |w_j| is computed once at load ({@link WeightPanels#rowNorms}). (3) With m the
 * argmax of the a_j, every j whose a_j + bound_j is not below a_m - bound_m may be the argmax (the
 * largest logit is at least l_m >= a_m - bound_m, and l_j <= a_j + bound_j); these candidates, one or two
 * in a typical row, get their f32 logit from the weight's row-major mapping with {@link Math#fma} in
 * column order, the tiles' chain to the bit, and the largest wins, ties to the lower id, as
 * {@link Simd#argmax}. Where the bound cannot decide (a value that is not finite, rows too large to
 * rule out overflow, more than {@link #MAX_CANDIDATES} candidates), {@link #argmax} says so and the
 * launch runs as it is.
 *
 * <p>A greedy step's logits buffer then holds the approximations, with the candidates' f32 logits.
 */
final class GreedyHead {
    /** Fewest rows a step uses this for ({@code -Dmoec.greedyHeadRows}); one row's lm_head is memory-bound. */
    static final int MIN_ROWS = Integer.getInteger("moec.greedyHeadRows", 2);
    /** Candidates a row may have; more and the step's launch runs as it is. */
    static final int MAX_CANDIDATES = 256;
    private static final double SMALLEST_NORMAL = Float.MIN_NORMAL;
    /** Values the chains may reach without any risk of overflow (far below Float.MAX_VALUE). */
    private static final double SAFE = 1e30;

    private final Buf x, w, out;         // x: f32 [R, K], the final norm's rows; w: bf16 [N, K] in panels; out: f32 [R, N], the logits
    private final int rows, n, k;        // R, N, K
    private final float[] norms;         // [N] each weight row's 2-norm, rounded up
    private final double maxNorm;
    private final int[] pairs;           // [R, K / 2] each row's values in bf16, two an int (the first in the low half)

    private GreedyHead(Buf x, Buf w, Buf out, float[] norms) {
        this.x = x;
        this.w = w;
        this.out = out;
        this.n = w.dim(0);
        this.k = w.dim(1);
        this.rows = x.elements() / k;
        this.norms = norms;
        double max = 0;
        for (float v : norms) max = Math.max(max, v);
        this.maxNorm = max;
        this.pairs = new int[rows * (k / 2)];
    }

    /**
     * The greedy head of a launch, or null where it is not one this runs: a bf16 matmul whose weight is
     * in panels, with an even k, at most {@link CpuKernels#PANEL_ROWS} rows (the tiles' chain), on a
     * machine with the dot tiles. {@code norms}: the weight rows' norms, asked for only where it is.
     */
    static GreedyHead of(Kernel kernel, Buf[] ins, Buf[] outs, java.util.function.Supplier<float[]> norms) {
        if (!Bf16Tiles.DOT_AVAILABLE || kernel != Kernel.MATMUL) return null;
        Buf x = ins[0], w = ins[1], o = outs[0];
        if (w.panels == null || w.dtype != DType.BF16 || w.shape.length != 2 || x.f == null || o.f == null) return null;
        int k = w.dim(1);
        if (k % 2 != 0 || x.elements() / k >= CpuKernels.PANEL_ROWS) return null;
        return new GreedyHead(x, w, o, norms.get());
    }

    int rows() { return rows; }

    /**
     * The argmax of each row {@code want[i]} of the launch's logits (the first id of the largest; NaN never
     * the largest), or null where the bound cannot decide for some row: the caller then runs the launch.
     */
    int[] argmax(CpuKernels kernels, int[] want) {
        int half = k / 2;
        double[] reach = new double[rows], floor = new double[rows];  // per row: bound_j = reach * |w_j| + floor
        double g = 2.0 * k * 0x1p-24 / (1 - 2.0 * k * 0x1p-24);
        for (int r = 0; r < rows; r++) {
            double xx = 0, dd = 0, hh = 0, h1 = 0;
            int xo = x.off + r * k;
            for (int j = 0; j < k; j++) {
                float v = x.f[xo + j];
                short b = Simd.toBf16(v);
                float h = Float.intBitsToFloat(b << 16);
                double d = (double) v - h;
                xx += (double) v * v;
                dd += d * d;
                hh += (double) h * h;
                h1 += Math.abs(h);
                if (j % 2 == 0) pairs[r * half + j / 2] = b & 0xFFFF;
                else pairs[r * half + j / 2] |= b << 16;
            }
            double xn = Math.sqrt(xx), hn = Math.sqrt(hh);
            if (!(xn < SAFE && hn < SAFE && maxNorm * (xn + hn) < SAFE)) return null;   // NaN or infinite values fail too
            reach[r] = (Math.sqrt(dd) + g * (xn + hn) + SMALLEST_NORMAL * Math.sqrt(k)) * (1 + 0x1p-20);
            floor[r] = SMALLEST_NORMAL * (h1 + 2.0 * k) * 2;
        }
        long panelBytes = (long) k * Bf16Tiles.WIDTH * 2;
        kernels.forEachStreamedBlock(n, k, DType.BF16, (o0, o1) ->
                Bf16Tiles.dotRows(pairs, half, rows, w.panels, o0 / Bf16Tiles.WIDTH * panelBytes, k, o1 - o0, out.f, out.off + o0, n));
        int[] ids = new int[want.length];
        boolean[] undecided = new boolean[1];
        kernels.parallel().forEach(want.length, 1, i -> {
            int id = decide(want[i], reach[want[i]], floor[want[i]]);
            if (id < 0) undecided[0] = true;
            ids[i] = id;
        });
        return undecided[0] ? null : ids;
    }

    /** Row r's argmax from its approximations (see the class), or -1 where the bound cannot decide. */
    private int decide(int r, double reach, double floor) {
        int ao = out.off + r * n, m = Simd.argmax(out.f, ao, n);
        float am = out.f[ao + m];
        if (!Float.isFinite(am)) return -1;
        double least = am - (norms[m] * reach + floor);                  // the largest logit is at least this
        // Candidates: a_j + |w_j| e >= t in floats, e and t moved so float rounding can only add candidates.
        double slack = 0x1p-16 * (Math.abs(am) + Math.abs(least) + maxNorm * reach) + floor;
        float e = Math.nextUp((float) (reach * (1 + 0x1p-10))), t = Math.nextDown((float) (least - slack));
        int[] candidates = new int[MAX_CANDIDATES];
        int count = Simd.notBelow(out.f, ao, n, norms, e, t, candidates);
        if (count < 0) return -1;
        int best = -1;
        float top = 0;
        for (int c = 0; c < count; c++) {
            int j = candidates[c];
            float l = logit(r, j);
            out.f[ao + j] = l;
            if (!Float.isNaN(l) && (best < 0 || l > top)) {
                best = j;
                top = l;
            }
        }
        return best >= 0 && Float.isFinite(top) ? best : -1;
    }

    /** Logit j of row r as the f32 tiles compute it: the fused chain over the columns in order, from +0. */
    private float logit(int r, int j) {
        int xo = x.off + r * k;
        long wo = (long) j * k;
        float s = 0f;
        for (int c = 0; c < k; c++) s = Math.fma(Simd.bf16At(w.w, wo + c), x.f[xo + c], s);
        return s;
    }
}
