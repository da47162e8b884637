package dev.moec.executor.cpu;

import dev.moec.backend.Kernel;
import dev.moec.ir.DType;

/**
 * The greedy tokens of a step whose last launch is its lm_head (a bf16 matmul into the logits), found
 * without every logit's f32 sum, yet the very tokens that the argmax of the launch's logits gives.
 *
 * <p>Why: at batch 8 the lm_head is compute-bound (8 x 151,936 x 1024 multiply-adds: 10.7 ms a step at
 * the f32 FMA peak of 116 GMAC/s on two threads, against 6.2 ms for its 311 MB at 50 GB/s).
 * AVX512_BF16's {@code vdpbf16ps} does two bf16 products a lane: its tile reaches 222-229 GMAC/s on the
 * same threads ({@code moec bench}'s probes), but over activations rounded to bf16, so its sums are not
 * the logits. In the bench model at batch 8 the step took 0.917 times as long (in one process against
 * the f32 lm_head, eight rounds, every one faster, the same tokens).
 *
 * <p>How: (1) each row x is rounded to bf16, x', and the dot tiles ({@link Bf16Tiles#dotSums}) give
 * every logit's approximation a_j. (2) The difference from the f32 logit l_j (the fused chain in column
 * order that {@link Bf16Tiles#rows} computes) is bounded: |a_j - l_j| <= |w_j| (|x - x'| + g (|x| +
 * |x'|)) + c, with |.| the 2-norm, g = 2K u / (1 - 2K u) for K columns and unit roundoff u = 2^-24 (each
 * chain rounds at most 2K times: |sum error| <= g sum |w_k x_k| <= g |w_j| |x|), and c the values below
 * the smallest normal that {@code vdpbf16ps} flushes: at most 2^-126 (|x'|_1 + sqrt(K) |w_j| + 2K).
 * Each weight row's norm |w_j| is computed once at load ({@link WeightPanels#rowNorms}). (3) The largest
 * logit is at least the largest a_j - bound_j, and l_j is at most a_j + bound_j, so only a j whose
 * a_j + bound_j reaches that largest lower bound may be the argmax. Each task of the dot pass keeps both
 * extremes of its 128 channels per row while its sums are in cache ({@link Simd#dotBounds}); a row then
 * scans only the tasks whose upper extreme reaches its lower bound. These candidates, one or two in a
 * typical row, get their f32 logit from the weight's row-major mapping with {@link Math#fma} in column
 * order, the tiles' chain to the bit, and the largest wins, ties to the lower id, as {@link Simd#argmax}.
 * Where the bound cannot decide (a value that is not finite, rows too large to rule out overflow, more
 * than {@link #MAX_CANDIDATES} candidates), {@link #argmax} says so and the launch runs as it is.
 *
 * <p>A step the head decides does not write the logits buffer.
 */
final class GreedyHead {
    /** Fewest rows a step uses this for ({@code -Dmoec.greedyHeadRows}); one row's lm_head is memory-bound. */
    static final int MIN_ROWS = Integer.getInteger("moec.greedyHeadRows", 2);
    /** Candidates a row may have; more and the step's launch runs as it is. */
    static final int MAX_CANDIDATES = 256;
    private static final double SMALLEST_NORMAL = Float.MIN_NORMAL;
    /** Values the chains may reach without any risk of overflow (far below Float.MAX_VALUE). */
    private static final double SAFE = 1e30;

    private final Buf x, w;              // x: f32 [R, K], the final norm's rows; w: bf16 [N, K] in panels (out: the logits [R, N], not written)
    private final int rows, n, k;        // R, N, K
    private final int block, blocks;     // channels of a task of the dot pass (the matmul's), and how many tasks: G
    private final float[] norms;         // [N] each weight row's 2-norm, rounded up
    private final float[] laneNorms;     // [P * 32] the norms of each panel's channels in its dot-tile lanes; +inf past N
    private final double maxNorm;
    private final int[] pairs;           // [R, K / 2] each row's values in bf16, two an int (the first in the low half)
    private final float[] sums;          // [P, R, 32] the dot tiles' approximations, as they leave them
    private final float[] upper, lower;  // [R, G] per row and task: the largest a_j + bound_j, and the largest a_j - bound_j

    private GreedyHead(Buf x, Buf w, float[] norms, int block) {
        this.x = x;
        this.w = w;
        this.n = w.dim(0);
        this.k = w.dim(1);
        this.rows = x.elements() / k;
        this.norms = norms;
        this.block = block;
        this.blocks = Math.ceilDiv(n, block);
        int panels = Math.ceilDiv(n, Bf16Tiles.WIDTH);
        this.laneNorms = new float[panels * Bf16Tiles.WIDTH];
        java.util.Arrays.fill(laneNorms, Float.POSITIVE_INFINITY);
        double max = 0;
        for (int j = 0; j < n; j++) {
            max = Math.max(max, norms[j]);
            laneNorms[j - j % Bf16Tiles.WIDTH + Bf16Tiles.dotLane(j % Bf16Tiles.WIDTH)] = norms[j];
        }
        this.maxNorm = max;
        this.pairs = new int[rows * (k / 2)];
        this.sums = new float[panels * rows * Bf16Tiles.WIDTH];
        this.upper = new float[rows * blocks];
        this.lower = new float[rows * blocks];
    }

    /**
     * Whether a launch is one a greedy head runs: a bf16 matmul whose weight is in panels, with an even
     * k, at most {@link Bf16Tiles#MAX_ROWS} rows (one tile a panel), on a machine with the dot tiles.
     */
    static boolean runs(Kernel kernel, Buf[] ins, Buf[] outs) {
        if (!Bf16Tiles.DOT_AVAILABLE || kernel != Kernel.MATMUL) return false;
        Buf x = ins[0], w = ins[1], o = outs[0];
        if (w.panels == null || w.dtype != DType.BF16 || w.shape.length != 2 || x.f == null || o.f == null) return false;
        int k = w.dim(1);
        return k % 2 == 0 && x.elements() / k <= Bf16Tiles.MAX_ROWS;
    }

    /** Whether a launch that {@link #runs} has at least {@link #MIN_ROWS} rows: at fewer the head is no faster than the launch. */
    static boolean pays(Buf[] ins) { return ins[0].elements() / ins[1].dim(1) >= MIN_ROWS; }

    /** The head of a launch that {@link #runs} ({@code ins}: x and the weight), its weight rows' {@code norms} given, for {@code kernels}' threads. */
    static GreedyHead of(CpuKernels kernels, Buf[] ins, float[] norms) {
        Buf w = ins[1];
        return new GreedyHead(ins[0], w, norms, kernels.streamBlock(w.dim(0), w.dim(1), DType.BF16));
    }

    /**
     * The argmax of each row {@code want[i]} of the launch's logits (the first id of the largest; NaN never
     * the largest), or null where the bound cannot decide for some row: the caller then runs the launch.
     */
    int[] argmax(CpuKernels kernels, int[] want) {
        int half = k / 2;
        double[] floor = new double[rows];                               // per row: bound_j = reach * |w_j| + floor
        float[] e = new float[rows];                                     // per row: reach, moved up so float rounding only widens the bound
        double g = 2.0 * k * 0x1p-24 / (1 - 2.0 * k * 0x1p-24);
        for (int r = 0; r < rows; r++) {
            double xx = 0, dd = 0, hh = 0, h1 = 0;
            int xo = x.off + r * k;
            for (int j = 0; j < k; j++) {
                float v = x.f[xo + j];
                int b = Simd.toBf16(v) & 0xFFFF;
                float h = Float.intBitsToFloat(b << 16);
                double d = (double) v - h;
                xx += (double) v * v;
                dd += d * d;
                hh += (double) h * h;
                h1 += Math.abs(h);
                if (j % 2 == 0) pairs[r * half + j / 2] = b;
                else pairs[r * half + j / 2] |= b << 16;
            }
            double xn = Math.sqrt(xx), hn = Math.sqrt(hh);
            if (!(xn < SAFE && hn < SAFE && maxNorm * (xn + hn) < SAFE)) return null;   // NaN or infinite values fail too
            double reach = (Math.sqrt(dd) + g * (xn + hn) + SMALLEST_NORMAL * Math.sqrt(k)) * (1 + 0x1p-20);
            floor[r] = SMALLEST_NORMAL * (h1 + 2.0 * k) * 2;
            e[r] = Math.nextUp((float) (reach * (1 + 0x1p-10)));
        }
        long panelBytes = (long) k * Bf16Tiles.WIDTH * 2;
        int width = Bf16Tiles.WIDTH;
        kernels.forEachStreamedBlock(n, k, DType.BF16, (o0, o1) -> {
            int p0 = o0 / width, count = Math.ceilDiv(o1 - o0, width);
            Bf16Tiles.dotSums(pairs, 0, half, rows, w.panels, p0 * panelBytes, k, count, sums, p0 * rows * width);
            Simd.dotBounds(sums, p0 * rows * width, rows, count, laneNorms, p0 * width, e, upper, lower, o0 / block, blocks);
        });
        int[] ids = new int[want.length];
        boolean[] undecided = new boolean[1];
        kernels.parallel().forEach(want.length, 1, i -> {
            int r = want[i], id = decide(r, e[r], floor[r]);
            if (id < 0) undecided[0] = true;
            ids[i] = id;
        });
        return undecided[0] ? null : ids;
    }

    /** Row r's argmax from its approximations (see the class), or -1 where the bound cannot decide. */
    private int decide(int r, float e, double floor) {
        float least = Float.NEGATIVE_INFINITY;                          // the largest logit is at least this (less the floor)
        for (int b = 0; b < blocks; b++) least = Math.max(least, lower[r * blocks + b]);
        if (!Float.isFinite(least)) return -1;
        // Candidates: a_j + |w_j| e not below t in floats, t moved down so float rounding can only add candidates.
        double slack = 0x1p-16 * (Math.abs((double) least) + 2 * maxNorm * e) + 2 * floor;
        float t = Math.nextDown((float) (least - slack));
        int width = Bf16Tiles.WIDTH, count = 0;
        int[] candidates = new int[MAX_CANDIDATES];
        for (int b = 0; b < blocks; b++) {
            if (upper[r * blocks + b] < t) continue;                      // NaN is scanned
            for (int j = b * block; j < Math.min(n, (b + 1) * block); j++) {
                int p = j / width;
                float a = sums[(p * rows + r) * width + Bf16Tiles.dotLane(j % width)];
                if (Math.fma(norms[j], e, a) < t) continue;
                if (count == MAX_CANDIDATES) return -1;
                candidates[count++] = j;
            }
        }
        int best = -1;
        float top = 0;
        for (int c = 0; c < count; c++) {
            int j = candidates[c];
            float l = logit(r, j);
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
