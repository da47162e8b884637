package dev.moec.ir.interp;

import dev.moec.ir.Attrs;

import java.util.List;

/**
 * Reference semantics of every op in {@link dev.moec.ir.Op}: straightforward loops, f32 storage, double
 * accumulation. Clarity over speed: this is the definition the CPU kernels are tested against.
 */
public final class Reference {
    private Reference() {}

    public static List<RefTensor> gather(List<RefTensor> in, Attrs a) {
        RefTensor table = in.get(0), index = in.get(1);
        int rows = table.dim(0), row = table.size() / rows;
        int[] idx = index.i();
        float[] out = new float[idx.length * row];
        for (int t = 0; t < idx.length; t++) {
            if (idx[t] < 0 || idx[t] >= rows) throw new IndexOutOfBoundsException("gather index " + idx[t] + " outside table of " + rows + " rows");
            System.arraycopy(table.f(), idx[t] * row, out, t * row, row);
        }
        int[] shape = concat(index.shape(), dropFirst(table.shape()));
        return List.of(RefTensor.f32(shape, out));
    }

    public static List<RefTensor> rmsNorm(List<RefTensor> in, Attrs a) {
        float[] x = in.get(0).f(), w = in.get(1).f();
        double eps = a.f("eps");
        int d = w.length, rows = x.length / d;
        float[] out = new float[x.length];
        for (int r = 0; r < rows; r++) {
            double ss = 0;
            for (int j = 0; j < d; j++) ss += (double) x[r * d + j] * x[r * d + j];
            double inv = 1.0 / Math.sqrt(ss / d + eps);
            for (int j = 0; j < d; j++) out[r * d + j] = (float) (x[r * d + j] * inv * w[j]);
        }
        return List.of(RefTensor.f32(in.get(0).shape(), out));
    }

    public static List<RefTensor> matmul(List<RefTensor> in, Attrs a) {
        RefTensor x = in.get(0), w = in.get(1);
        int n = w.dim(0), k = w.dim(1), rows = x.size() / k;
        float[] xs = x.f(), ws = w.f(), out = new float[rows * n];
        for (int r = 0; r < rows; r++) {
            for (int o = 0; o < n; o++) {
                double acc = 0;
                for (int j = 0; j < k; j++) acc += (double) xs[r * k + j] * ws[o * k + j];
                out[r * n + o] = (float) acc;
            }
        }
        int[] shape = x.shape();
        shape[shape.length - 1] = n;
        return List.of(RefTensor.f32(shape, out));
    }

    public static List<RefTensor> reshape(List<RefTensor> in, Attrs a) {
        // The interpreter binds the symbols of shape attributes before it calls an op's semantics.
        long[] sizes = a.shape("shape").sizes();
        int[] shape = new int[sizes.length];
        for (int j = 0; j < sizes.length; j++) shape[j] = Math.toIntExact(sizes[j]);
        return List.of(in.get(0).reshaped(shape));
    }

    public static List<RefTensor> rope(List<RefTensor> in, Attrs a) {
        RefTensor x = in.get(0);
        int[] pos = in.get(1).i();
        int tokens = x.dim(0), heads = x.dim(1), hd = x.dim(2);
        int rd = (int) a.i("rotary_dim"), half = rd / 2;
        double theta = a.f("theta");
        float[] xs = x.f(), out = xs.clone();
        for (int t = 0; t < tokens; t++) {
            for (int i = 0; i < half; i++) {
                double invFreq = 1.0 / Math.pow(theta, (2.0 * i) / rd);
                double angle = pos[t] * invFreq, c = Math.cos(angle), s = Math.sin(angle);
                for (int h = 0; h < heads; h++) {
                    int base = (t * heads + h) * hd;
                    double x1 = xs[base + i], x2 = xs[base + i + half];
                    out[base + i] = (float) (x1 * c - x2 * s);
                    out[base + i + half] = (float) (x2 * c + x1 * s);
                }
            }
        }
        return List.of(RefTensor.f32(x.shape(), out));
    }

    public static List<RefTensor> kvWrite(List<RefTensor> in, Attrs a) {
        RefTensor cache = in.get(0), kv = in.get(1);
        int[] slots = in.get(2).i(), pos = in.get(3).i();
        int slotCount = cache.dim(0), len = cache.dim(1), row = cache.dim(2) * cache.dim(3);
        float[] out = cache.f().clone();
        for (int t = 0; t < slots.length; t++) {
            if (slots[t] < 0) continue;
            if (slots[t] >= slotCount || pos[t] < 0 || pos[t] >= len) {
                throw new IndexOutOfBoundsException("kv_write slot " + slots[t] + " position " + pos[t] + " outside cache [" + slotCount + "," + len + "]");
            }
            System.arraycopy(kv.f(), t * row, out, (slots[t] * len + pos[t]) * row, row);
        }
        return List.of(RefTensor.f32(cache.shape(), out));
    }

    public static List<RefTensor> attention(List<RefTensor> in, Attrs a) {
        RefTensor q = in.get(0), kc = in.get(1), vc = in.get(2);
        int[] slots = in.get(3).i(), pos = in.get(4).i();
        int tokens = q.dim(0), heads = q.dim(1), hd = q.dim(2);
        int len = kc.dim(1), kvHeads = kc.dim(2), vd = vc.dim(3), group = heads / kvHeads;
        double scale = a.f("scale");
        float[] qs = q.f(), ks = kc.f(), vs = vc.f(), out = new float[tokens * heads * vd];
        for (int t = 0; t < tokens; t++) {
            if (slots[t] < 0) continue;
            int n = pos[t] + 1;
            for (int h = 0; h < heads; h++) {
                int kvh = h / group;
                double[] score = new double[n];
                double max = Double.NEGATIVE_INFINITY;
                for (int j = 0; j < n; j++) {
                    int kb = ((slots[t] * len + j) * kvHeads + kvh) * hd;
                    double dot = 0;
                    for (int d = 0; d < hd; d++) dot += (double) qs[(t * heads + h) * hd + d] * ks[kb + d];
                    score[j] = dot * scale;
                    max = Math.max(max, score[j]);
                }
                double sum = 0;
                for (int j = 0; j < n; j++) sum += score[j] = Math.exp(score[j] - max);
                for (int d = 0; d < vd; d++) {
                    double acc = 0;
                    for (int j = 0; j < n; j++) acc += score[j] * vs[((slots[t] * len + j) * kvHeads + kvh) * vd + d];
                    out[(t * heads + h) * vd + d] = (float) (acc / sum);
                }
            }
        }
        return List.of(RefTensor.f32(new int[]{tokens, heads, vd}, out));
    }

    public static List<RefTensor> softmax(List<RefTensor> in, Attrs a) {
        RefTensor x = in.get(0);
        int n = x.dim(-1);
        float[] xs = x.f(), out = new float[xs.length];
        for (int r = 0; r < xs.length / n; r++) {
            double max = Double.NEGATIVE_INFINITY, sum = 0;
            for (int j = 0; j < n; j++) max = Math.max(max, xs[r * n + j]);
            for (int j = 0; j < n; j++) sum += Math.exp(xs[r * n + j] - max);
            for (int j = 0; j < n; j++) out[r * n + j] = (float) (Math.exp(xs[r * n + j] - max) / sum);
        }
        return List.of(RefTensor.f32(x.shape(), out));
    }

    public static List<RefTensor> topk(List<RefTensor> in, Attrs a) {
        RefTensor x = in.get(0);
        int n = x.dim(-1), k = (int) a.i("k"), rows = x.size() / n;
        float[] xs = x.f(), vals = new float[rows * k];
        int[] idx = new int[rows * k];
        for (int r = 0; r < rows; r++) {
            boolean[] taken = new boolean[n];
            for (int s = 0; s < k; s++) {
                int best = -1;
                for (int j = 0; j < n; j++) {
                    if (!taken[j] && (best < 0 || xs[r * n + j] > xs[r * n + best])) best = j;
                }
                taken[best] = true;
                vals[r * k + s] = xs[r * n + best];
                idx[r * k + s] = best;
            }
        }
        int[] shape = x.shape();
        shape[shape.length - 1] = k;
        return List.of(RefTensor.f32(shape, vals), RefTensor.i32(shape, idx));
    }

    public static List<RefTensor> renorm(List<RefTensor> in, Attrs a) {
        RefTensor x = in.get(0);
        int n = x.dim(-1);
        float[] xs = x.f(), out = new float[xs.length];
        for (int r = 0; r < xs.length / n; r++) {
            double sum = 0;
            for (int j = 0; j < n; j++) sum += xs[r * n + j];
            for (int j = 0; j < n; j++) out[r * n + j] = (float) (xs[r * n + j] / sum);
        }
        return List.of(RefTensor.f32(x.shape(), out));
    }

    public static List<RefTensor> moeExperts(List<RefTensor> in, Attrs a) {
        RefTensor x = in.get(0);
        float[] xs = x.f(), w = in.get(1).f(), gate = in.get(3).f(), up = in.get(4).f(), down = in.get(5).f();
        int[] experts = in.get(2).i();
        int tokens = x.dim(0), hidden = x.dim(1), k = in.get(1).dim(1);
        int inter = in.get(3).dim(1), expertCount = in.get(3).dim(0);
        float[] out = new float[tokens * hidden];
        for (int t = 0; t < tokens; t++) {
            double[] acc = new double[hidden];
            for (int s = 0; s < k; s++) {
                int e = experts[t * k + s];
                if (e < 0 || e >= expertCount) throw new IndexOutOfBoundsException("expert " + e + " outside 0.." + (expertCount - 1));
                double[] act = new double[inter];
                for (int i = 0; i < inter; i++) {
                    double g = 0, u = 0;
                    int wb = (e * inter + i) * hidden;
                    for (int j = 0; j < hidden; j++) {
                        g += (double) gate[wb + j] * xs[t * hidden + j];
                        u += (double) up[wb + j] * xs[t * hidden + j];
                    }
                    act[i] = g / (1 + Math.exp(-g)) * u;
                }
                for (int o = 0; o < hidden; o++) {
                    double y = 0;
                    int wb = (e * hidden + o) * inter;
                    for (int i = 0; i < inter; i++) y += down[wb + i] * act[i];
                    acc[o] += w[t * k + s] * y;
                }
            }
            for (int o = 0; o < hidden; o++) out[t * hidden + o] = (float) acc[o];
        }
        return List.of(RefTensor.f32(x.shape(), out));
    }

    public static List<RefTensor> silu(List<RefTensor> in, Attrs a) {
        float[] xs = in.get(0).f(), out = new float[xs.length];
        for (int j = 0; j < xs.length; j++) out[j] = (float) (xs[j] / (1 + Math.exp(-xs[j])));
        return List.of(RefTensor.f32(in.get(0).shape(), out));
    }

    public static List<RefTensor> mul(List<RefTensor> in, Attrs a) {
        float[] x = in.get(0).f(), y = in.get(1).f(), out = new float[x.length];
        for (int j = 0; j < x.length; j++) out[j] = x[j] * y[j];
        return List.of(RefTensor.f32(in.get(0).shape(), out));
    }

    public static List<RefTensor> add(List<RefTensor> in, Attrs a) {
        float[] x = in.get(0).f(), y = in.get(1).f(), out = new float[x.length];
        for (int j = 0; j < x.length; j++) out[j] = x[j] + y[j];
        return List.of(RefTensor.f32(in.get(0).shape(), out));
    }

    private static int[] concat(int[] a, int[] b) {
        int[] out = new int[a.length + b.length];
        System.arraycopy(a, 0, out, 0, a.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    private static int[] dropFirst(int[] a) {
        int[] out = new int[a.length - 1];
        System.arraycopy(a, 1, out, 0, out.length);
        return out;
    }
}
