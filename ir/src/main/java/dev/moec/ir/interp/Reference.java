package dev.moec.ir.interp;

import dev.moec.ir.Attrs;
import dev.moec.ir.DType;
import dev.moec.ir.PagedCache;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Reference semantics of every op in {@link dev.moec.ir.Op}: straightforward loops over f32 storage with
 * double accumulation. Clarity over speed: this is the definition the CPU kernels and the passes are
 * tested against. Operands are never modified; stateful ops return new state versions.
 */
public final class Reference {
    private Reference() {}

    // ---- embedding, norms, linear algebra, shapes ---------------------------------------------------

    public static List<RefTensor> gather(List<RefTensor> in, Attrs a) {
        RefTensor table = in.get(0), index = in.get(1);
        int rows = table.dim(0), row = table.size() / rows;
        int[] idx = index.i();
        float[] out = new float[idx.length * row];
        for (int t = 0; t < idx.length; t++) {
            if (idx[t] < 0 || idx[t] >= rows) throw new IndexOutOfBoundsException("gather index " + idx[t] + " outside table of " + rows + " rows");
            System.arraycopy(table.f(), idx[t] * row, out, t * row, row);
        }
        return List.of(RefTensor.f32(concat(index.shape(), Arrays.copyOfRange(table.shape(), 1, table.rank())), out));
    }

    public static List<RefTensor> rmsNorm(List<RefTensor> in, Attrs a) {
        float[] x = in.get(0).f(), w = in.get(1).f();
        double eps = a.f("eps"), offset = a.has("weight_offset") ? a.f("weight_offset") : 0;
        int d = w.length, rows = x.length / d;
        float[] out = new float[x.length];
        for (int r = 0; r < rows; r++) {
            double ss = 0;
            for (int j = 0; j < d; j++) ss += (double) x[r * d + j] * x[r * d + j];
            double inv = 1.0 / Math.sqrt(ss / d + eps);
            for (int j = 0; j < d; j++) out[r * d + j] = (float) (x[r * d + j] * inv * (w[j] + offset));
        }
        return List.of(RefTensor.f32(in.get(0).shape(), out));
    }

    public static List<RefTensor> layerNorm(List<RefTensor> in, Attrs a) {
        float[] x = in.get(0).f(), w = in.get(1).f(), b = in.get(2).f();
        double eps = a.f("eps");
        int d = w.length, rows = x.length / d;
        float[] out = new float[x.length];
        for (int r = 0; r < rows; r++) layerNormRow(x, r * d, w, b, eps, out, r * d);
        return List.of(RefTensor.f32(in.get(0).shape(), out));
    }

    /** One row of layer_norm, (x - mean) / sqrt(var + eps) * w + b in double: shared with the CPU kernel. */
    public static void layerNormRow(float[] x, int xo, float[] w, float[] b, double eps, float[] out, int oo) {
        int d = w.length;
        double mean = 0, var = 0;
        for (int j = 0; j < d; j++) mean += x[xo + j];
        mean /= d;
        for (int j = 0; j < d; j++) var += (x[xo + j] - mean) * (x[xo + j] - mean);
        double inv = 1.0 / Math.sqrt(var / d + eps);
        for (int j = 0; j < d; j++) out[oo + j] = (float) ((x[xo + j] - mean) * inv * w[j] + b[j]);
    }

    public static List<RefTensor> l2Norm(List<RefTensor> in, Attrs a) {
        RefTensor x = in.get(0);
        int d = x.dim(-1);
        float[] xs = x.f(), out = new float[xs.length];
        for (int r = 0; r < xs.length / d; r++) l2NormRow(xs, r * d, d, a.f("eps"), out, r * d);
        return List.of(RefTensor.f32(x.shape(), out));
    }

    /** One row of l2_norm, x / sqrt(sum x^2 + eps) summed in double: shared with the CPU kernel. */
    public static void l2NormRow(float[] x, int xo, int d, double eps, float[] out, int oo) {
        double ss = 0;
        for (int j = 0; j < d; j++) ss += (double) x[xo + j] * x[xo + j];
        double inv = 1.0 / Math.sqrt(ss + eps);
        for (int j = 0; j < d; j++) out[oo + j] = (float) (x[xo + j] * inv);
    }

    public static List<RefTensor> matmul(List<RefTensor> in, Attrs a) {
        RefTensor x = in.get(0), w = in.get(1);
        int n = w.dim(0), k = w.dim(1), rows = x.size() / k;
        float[] out = linear(x.f(), 0, rows, k, w.f(), 0, n);
        int[] shape = x.shape();
        shape[shape.length - 1] = n;
        return List.of(RefTensor.f32(shape, out));
    }

    public static List<RefTensor> headMatmul(List<RefTensor> in, Attrs a) {
        RefTensor x = in.get(0), w = in.get(1);
        int tokens = x.dim(0), heads = x.dim(1), k = x.dim(2), n = w.dim(1);
        float[] out = new float[tokens * heads * n];
        for (int t = 0; t < tokens; t++) {
            for (int h = 0; h < heads; h++) {
                float[] y = linear(x.f(), (t * heads + h) * k, 1, k, w.f(), h * n * k, n);
                System.arraycopy(y, 0, out, (t * heads + h) * n, n);
            }
        }
        return List.of(RefTensor.f32(new int[]{tokens, heads, n}, out));
    }

    public static List<RefTensor> reshape(List<RefTensor> in, Attrs a) {
        // The interpreter binds the symbols of shape attributes before it calls an op's semantics.
        return List.of(in.get(0).reshaped(ints(a.shape("shape").sizes())));
    }

    public static List<RefTensor> cast(List<RefTensor> in, Attrs a) {
        DType to = DType.parse(a.s("dtype"));
        float[] xs = in.get(0).f(), out = new float[xs.length];
        for (int j = 0; j < xs.length; j++) out[j] = roundTo(to, xs[j]);
        return List.of(RefTensor.of(to, in.get(0).shape(), out));
    }

    /** v rounded to the nearest value representable in {@code d} (ties to even). */
    public static float roundTo(DType d, float v) {
        return switch (d) {
            case F32 -> v;
            case F16 -> Float.float16ToFloat(Float.floatToFloat16(v));
            case BF16 -> {
                int bits = Float.floatToRawIntBits(v);
                if (Float.isNaN(v)) yield v;
                yield Float.intBitsToFloat(((bits + 0x7FFF + ((bits >>> 16) & 1)) >>> 16) << 16);
            }
            case F8E4M3 -> roundE4m3(v);
            default -> throw new IllegalArgumentException("not a floating dtype: " + d);
        };
    }

    /** OCP e4m3 (fn): 1 sign, 4 exponent (bias 7), 3 mantissa bits; finite range +-448, saturating. */
    private static float roundE4m3(float v) {
        if (Float.isNaN(v)) return v;
        float a = Math.min(Math.abs(v), 448f);
        if (a == 0) return Math.copySign(0f, v);
        int exp = Math.max(Math.getExponent(a), -6);          // subnormals below 2^-6
        float step = (float) Math.scalb(1.0, exp - 3);
        float r = (float) (Math.rint(a / step) * step);
        return Math.copySign(Math.min(r, 448f), v);
    }

    public static List<RefTensor> slice(List<RefTensor> in, Attrs a) {
        RefTensor x = in.get(0);
        int axis = axis(x, a.i("axis")), start = (int) a.i("start"), end = (int) a.i("end");
        int[] shape = x.shape();
        int outer = prod(shape, 0, axis), inner = prod(shape, axis + 1, shape.length), len = shape[axis], n = end - start;
        shape[axis] = n;
        return List.of(copyBlocks(x, shape, outer, (src, dst, o) -> dst.copy(src, (o * len + start) * inner, o * n * inner, n * inner)));
    }

    public static List<RefTensor> concat(List<RefTensor> in, Attrs a) {
        RefTensor x = in.get(0), y = in.get(1);
        int axis = axis(x, a.i("axis"));
        int[] shape = x.shape();
        int outer = prod(shape, 0, axis), inner = prod(shape, axis + 1, shape.length), p = x.dim(axis), q = y.dim(axis);
        shape[axis] = p + q;
        RefTensor out = copyBlocks(x, shape, outer, (src, dst, o) -> dst.copy(src, o * p * inner, o * (p + q) * inner, p * inner));
        Block dst = new Block(out);
        Block src = new Block(y);
        for (int o = 0; o < outer; o++) dst.copy(src, o * q * inner, (o * (p + q) + p) * inner, q * inner);
        return List.of(out);
    }

    public static List<RefTensor> repeat(List<RefTensor> in, Attrs a) {
        RefTensor x = in.get(0);
        int axis = axis(x, a.i("axis")), times = (int) a.i("times");
        int[] shape = x.shape();
        int outer = prod(shape, 0, axis), inner = prod(shape, axis + 1, shape.length), len = shape[axis];
        shape[axis] = len * times;
        return List.of(copyBlocks(x, shape, outer, (src, dst, o) -> {
            for (int j = 0; j < len; j++) {
                for (int r = 0; r < times; r++) dst.copy(src, (o * len + j) * inner, ((o * len + j) * times + r) * inner, inner);
            }
        }));
    }

    // ---- positions, caches, attention ---------------------------------------------------------------

    /** rope = apply_rotary(x, rope_cos_sin(positions)): one definition for both forms. */
    public static List<RefTensor> rope(List<RefTensor> in, Attrs a) {
        List<RefTensor> table = ropeCosSin(List.of(in.get(1)), a);
        return applyRotary(List.of(in.get(0), table.get(0), table.get(1)), a);
    }

    public static List<RefTensor> ropeCosSin(List<RefTensor> in, Attrs a) {
        int[] pos = in.get(0).i();
        double[] invFreq = ropeInverseFrequencies(a);
        int half = invFreq.length;
        float[] cos = new float[pos.length * half], sin = new float[pos.length * half];
        for (int t = 0; t < pos.length; t++) {
            for (int i = 0; i < half; i++) {
                double angle = pos[t] * invFreq[i];
                cos[t * half + i] = (float) Math.cos(angle);
                sin[t * half + i] = (float) Math.sin(angle);
            }
        }
        int[] shape = {pos.length, half};
        return List.of(RefTensor.f32(shape, cos), RefTensor.f32(shape, sin));
    }

    /**
     * inv_freq[i] = theta^(-2i / rotary_dim); with YaRN (DeepSeek-V3), frequencies below the correction
     * range are divided by the factor and those inside it blended linearly.
     */
    public static double[] ropeInverseFrequencies(Attrs a) {
        int rd = (int) a.i("rotary_dim"), half = rd / 2;
        double theta = a.f("theta");
        double[] f = new double[half];
        for (int i = 0; i < half; i++) f[i] = 1.0 / Math.pow(theta, (2.0 * i) / rd);
        if (a.has("yarn_factor")) {
            double factor = a.f("yarn_factor"), original = a.i("yarn_original_max");
            double low = Math.floor(correctionDim(a.f("yarn_beta_fast"), rd, theta, original));
            double high = Math.ceil(correctionDim(a.f("yarn_beta_slow"), rd, theta, original));
            low = Math.max(low, 0);
            high = Math.min(high, rd - 1);
            if (low == high) high += 0.001;
            for (int i = 0; i < half; i++) {
                double ramp = Math.clamp((i - low) / (high - low), 0.0, 1.0), smooth = 1 - ramp;
                f[i] = f[i] / factor * (1 - smooth) + f[i] * smooth;
            }
        }
        return f;
    }

    private static double correctionDim(double rotations, int dim, double theta, double originalMax) {
        return dim * Math.log(originalMax / (rotations * 2 * Math.PI)) / (2 * Math.log(theta));
    }

    public static List<RefTensor> applyRotary(List<RefTensor> in, Attrs a) {
        RefTensor x = in.get(0);
        float[] cos = in.get(1).f(), sin = in.get(2).f();
        int tokens = x.dim(0), heads = x.dim(1), hd = x.dim(2);
        int half = (int) a.i("rotary_dim") / 2;
        boolean interleaved = a.has("interleaved") && a.b("interleaved");
        float[] xs = x.f(), out = xs.clone();
        for (int t = 0; t < tokens; t++) {
            for (int h = 0; h < heads; h++) {
                int base = (t * heads + h) * hd;
                for (int i = 0; i < half; i++) {
                    int p = base + (interleaved ? 2 * i : i), q = base + (interleaved ? 2 * i + 1 : i + half);
                    double c = cos[t * half + i], s = sin[t * half + i], x1 = xs[p], x2 = xs[q];
                    out[p] = (float) (x1 * c - x2 * s);
                    out[q] = (float) (x2 * c + x1 * s);
                }
            }
        }
        return List.of(RefTensor.f32(x.shape(), out));
    }

    public static List<RefTensor> kvWrite(List<RefTensor> in, Attrs a) {
        RefTensor cache = in.get(0), kv = in.get(1);
        PagedCache paged = paged("kv_write", cache, in.get(2));
        int[] slots = in.get(3).i(), pos = in.get(4).i();
        int row = cache.dim(2) * cache.dim(3);
        float[] out = cache.f().clone();
        for (int t = 0; t < slots.length; t++) {
            if (slots[t] < 0) continue;
            int at = paged.row(slots[t], pos[t]) * row;
            for (int j = 0; j < row; j++) out[at + j] = roundTo(cache.dtype(), kv.f()[t * row + j]);
        }
        return List.of(RefTensor.of(cache.dtype(), cache.shape(), out));
    }

    public static List<RefTensor> attention(List<RefTensor> in, Attrs a) {
        RefTensor q = in.get(0), kc = in.get(1), vc = in.get(2);
        PagedCache paged = paged("attention", kc, in.get(3));
        int[] slots = in.get(4).i(), pos = in.get(5).i();
        int tokens = q.dim(0), heads = q.dim(1), hd = q.dim(2);
        int kvHeads = kc.dim(2), vd = vc.dim(3), group = heads / kvHeads;
        double scale = a.f("scale");
        float[] qs = q.f(), ks = kc.f(), vs = vc.f(), out = new float[tokens * heads * vd];
        for (int t = 0; t < tokens; t++) {
            if (slots[t] < 0) continue;
            int n = pos[t] + 1;
            for (int h = 0; h < heads; h++) {
                int kvh = h / group;
                double[] score = new double[n];
                for (int j = 0; j < n; j++) {
                    score[j] = scale * dot(qs, (t * heads + h) * hd, ks, (paged.row(slots[t], j) * kvHeads + kvh) * hd, hd);
                }
                softmaxInPlace(score);
                for (int d = 0; d < vd; d++) {
                    double acc = 0;
                    for (int j = 0; j < n; j++) acc += score[j] * vs[(paged.row(slots[t], j) * kvHeads + kvh) * vd + d];
                    out[(t * heads + h) * vd + d] = (float) acc;
                }
            }
        }
        return List.of(RefTensor.f32(new int[]{tokens, heads, vd}, out));
    }

    /** Per (token, head): scale = max|kv| / 127, q = round(kv / scale), written with the scale. */
    public static List<RefTensor> kvWriteInt8(List<RefTensor> in, Attrs a) {
        RefTensor cache = in.get(0), scale = in.get(1), kv = in.get(2);
        PagedCache paged = paged("kv_write_int8", cache, in.get(3));
        int[] slots = in.get(4).i(), pos = in.get(5).i();
        int heads = cache.dim(2), d = cache.dim(3);
        int[] c = cache.i().clone();
        float[] s = scale.f().clone();
        for (int t = 0; t < slots.length; t++) {
            if (slots[t] < 0) continue;
            int at = paged.row(slots[t], pos[t]);
            for (int h = 0; h < heads; h++) {
                int src = (t * heads + h) * d, row = at * heads + h;
                float max = 0;
                for (int j = 0; j < d; j++) max = Math.max(max, Math.abs(kv.f()[src + j]));
                float sc = max / 127f;
                s[row] = sc;
                for (int j = 0; j < d; j++) c[row * d + j] = max == 0 ? 0 : (int) Math.max(-127, Math.min(127, Math.rint(kv.f()[src + j] / sc)));
            }
        }
        return List.of(RefTensor.ofInts(DType.I8, cache.shape(), c), RefTensor.f32(scale.shape(), s));
    }

    /** Attention over int8 caches: each cached row dequantized as q * scale, then {@link #attention}. */
    public static List<RefTensor> attentionInt8(List<RefTensor> in, Attrs a) {
        return attention(List.of(in.get(0), dequantRows(in.get(1), in.get(2)), dequantRows(in.get(3), in.get(4)), in.get(5), in.get(6), in.get(7)), a);
    }

    private static RefTensor dequantRows(RefTensor q, RefTensor scale) {
        int d = q.dim(-1);
        float[] out = new float[q.size()];
        for (int i = 0; i < out.length; i++) out[i] = q.i()[i] * scale.f()[i / d];
        return RefTensor.f32(q.shape(), out);
    }

    public static List<RefTensor> mlaAttention(List<RefTensor> in, Attrs a) {
        return List.of(mla(in, a, null));
    }

    public static List<RefTensor> mlaAttentionSparse(List<RefTensor> in, Attrs a) {
        return List.of(mla(in, a, in.get(7)));
    }

    /** Latent attention, un-absorbed: per cached position, keys and values are expanded from c_kv by w_kv_b. */
    private static RefTensor mla(List<RefTensor> in, Attrs a, RefTensor indices) {
        RefTensor qn = in.get(0), qp = in.get(1), cache = in.get(2), w = in.get(3);
        PagedCache paged = paged("mla_attention", cache, in.get(4));
        int[] slots = in.get(5).i(), pos = in.get(6).i();
        int tokens = qn.dim(0), heads = qn.dim(1), dn = qn.dim(2), dr = qp.dim(2), c = w.dim(1), row = cache.dim(3);
        int v = (int) a.i("v_head_dim"), per = dn + v;
        double scale = a.f("scale");
        float[] cs = cache.f(), ws = w.f(), out = new float[tokens * heads * v];
        for (int t = 0; t < tokens; t++) {
            if (slots[t] < 0) continue;
            List<Integer> keys = new ArrayList<>();
            if (indices == null) {
                for (int j = 0; j <= pos[t]; j++) keys.add(j);
            } else {
                int k = indices.dim(1);
                for (int s = 0; s < k; s++) {
                    int j = indices.i()[t * k + s];
                    if (j >= 0 && j <= pos[t]) keys.add(j);
                }
            }
            for (int h = 0; h < heads; h++) {
                double[] score = new double[keys.size()];
                double[][] values = new double[keys.size()][];
                for (int m = 0; m < keys.size(); m++) {
                    int base = paged.row(slots[t], keys.get(m)) * row;
                    double s = dot(qp.f(), (t * heads + h) * dr, cs, base + c, dr);
                    for (int d = 0; d < dn; d++) s += qn.f()[(t * heads + h) * dn + d] * dot(ws, (h * per + d) * c, cs, base, c);
                    score[m] = s * scale;
                    values[m] = new double[v];
                    for (int d = 0; d < v; d++) values[m][d] = dot(ws, (h * per + dn + d) * c, cs, base, c);
                }
                softmaxInPlace(score);
                for (int d = 0; d < v; d++) {
                    double acc = 0;
                    for (int m = 0; m < keys.size(); m++) acc += score[m] * values[m][d];
                    out[(t * heads + h) * v + d] = (float) acc;
                }
            }
        }
        return RefTensor.f32(new int[]{tokens, heads, v}, out);
    }

    public static List<RefTensor> indexerTopk(List<RefTensor> in, Attrs a) {
        RefTensor q = in.get(0), kc = in.get(1), w = in.get(2);
        PagedCache paged = paged("indexer_topk", kc, in.get(3));
        int[] slots = in.get(4).i(), pos = in.get(5).i();
        int tokens = q.dim(0), heads = q.dim(1), d = q.dim(2), topk = (int) a.i("topk");
        double scale = a.f("scale");
        int[] out = new int[tokens * topk];
        Arrays.fill(out, -1);
        for (int t = 0; t < tokens; t++) {
            if (slots[t] < 0) continue;
            int n = pos[t] + 1;
            double[] score = new double[n];
            for (int s = 0; s < n; s++) {
                double acc = 0;
                for (int h = 0; h < heads; h++) {
                    acc += w.f()[t * heads + h] * Math.max(0, dot(q.f(), (t * heads + h) * d, kc.f(), paged.row(slots[t], s) * d, d));
                }
                score[s] = acc * scale;
            }
            int[] best = topIndices(score, Math.min(topk, n));
            System.arraycopy(best, 0, out, t * topk, best.length);
        }
        return List.of(RefTensor.i32(new int[]{tokens, topk}, out));
    }

    public static List<RefTensor> hadamard(List<RefTensor> in, Attrs a) {
        RefTensor x = in.get(0);
        int n = x.dim(-1);
        float[] out = new float[x.size()];
        for (int r = 0; r < x.size() / n; r++) {
            double[] v = new double[n];
            for (int j = 0; j < n; j++) v[j] = x.f()[r * n + j];
            hadamardInPlace(v);
            for (int j = 0; j < n; j++) out[r * n + j] = (float) (v[j] * a.f("scale"));
        }
        return List.of(RefTensor.f32(x.shape(), out));
    }

    /** v = H v (unscaled Sylvester Hadamard, length a power of two) by butterflies, in place: shared with the CPU kernel. */
    public static void hadamardInPlace(double[] v) {
        int n = v.length;
        for (int h = 1; h < n; h *= 2) {
            for (int i = 0; i < n; i += 2 * h) {
                for (int j = i; j < i + h; j++) {
                    double p = v[j], q = v[j + h];
                    v[j] = p + q;
                    v[j + h] = p - q;
                }
            }
        }
    }

    public static List<RefTensor> causalConv1d(List<RefTensor> in, Attrs a) {
        RefTensor x = in.get(0), w = in.get(1), state = in.get(2);
        int[] slots = in.get(3).i(), pos = in.get(4).i();
        int tokens = x.dim(0), channels = x.dim(1), k = w.dim(1), hist = k - 1;
        float[] st = state.f().clone(), out = new float[tokens * channels];
        for (int t = 0; t < tokens; t++) {
            int s = slots[t];
            if (s < 0) continue;
            checkSlot("causal_conv1d", s, 0, state.dim(0), 1);
            int base = s * hist * channels;
            if (pos[t] == 0) Arrays.fill(st, base, base + hist * channels, 0f);
            for (int ch = 0; ch < channels; ch++) out[t * channels + ch] = causalConvAt(w.f(), k, ch, x.f()[t * channels + ch], st, base, channels);
            System.arraycopy(st, base + channels, st, base, (hist - 1) * channels);
            System.arraycopy(x.f(), t * channels, st, base + (hist - 1) * channels, channels);
        }
        return List.of(RefTensor.f32(x.shape(), out), RefTensor.f32(state.shape(), st));
    }

    /**
     * One output of causal_conv1d: channel ch of weight [C, K] against the channel's K-1 past inputs in the
     * state (row i at st[base + i * channels + ch]) and the current input x, summed in double: shared with
     * the CPU kernel.
     */
    public static float causalConvAt(float[] w, int k, int ch, float x, float[] st, int base, int channels) {
        double acc = (double) w[ch * k + k - 1] * x;
        for (int i = 0; i < k - 1; i++) acc += (double) w[ch * k + i] * st[base + i * channels + ch];
        return (float) acc;
    }

    public static List<RefTensor> gatedDeltaRule(List<RefTensor> in, Attrs a) {
        return a.has("chunk_size") ? gatedDeltaRuleChunked(in, (int) a.i("chunk_size")) : gatedDeltaRuleSteps(in);
    }

    /** The step recurrence, token by token. */
    private static List<RefTensor> gatedDeltaRuleSteps(List<RefTensor> in) {
        RefTensor q = in.get(0), k = in.get(1), v = in.get(2), g = in.get(3), beta = in.get(4), state = in.get(5);
        int[] slots = in.get(6).i(), pos = in.get(7).i();
        int tokens = q.dim(0), heads = q.dim(1), dk = q.dim(2), dv = v.dim(2);
        float[] st = state.f().clone(), out = new float[tokens * heads * dv];
        for (int t = 0; t < tokens; t++) {
            if (slots[t] < 0) continue;
            checkSlot("gated_delta_rule", slots[t], 0, state.dim(0), 1);
            for (int h = 0; h < heads; h++) {
                int sb = (slots[t] * heads + h) * dk * dv, qb = (t * heads + h) * dk, vb = (t * heads + h) * dv;
                if (pos[t] == 0) Arrays.fill(st, sb, sb + dk * dv, 0f);
                double decay = Math.exp(g.f()[t * heads + h]), b = beta.f()[t * heads + h];
                for (int i = 0; i < dk * dv; i++) st[sb + i] = (float) (st[sb + i] * decay);
                for (int j = 0; j < dv; j++) {
                    double mem = 0;
                    for (int i = 0; i < dk; i++) mem += (double) st[sb + i * dv + j] * k.f()[qb + i];
                    double delta = (v.f()[vb + j] - mem) * b;
                    for (int i = 0; i < dk; i++) st[sb + i * dv + j] = (float) (st[sb + i * dv + j] + k.f()[qb + i] * delta);
                }
                for (int j = 0; j < dv; j++) {
                    double o = 0;
                    for (int i = 0; i < dk; i++) o += (double) st[sb + i * dv + j] * q.f()[qb + i];
                    out[vb + j] = (float) o;
                }
            }
        }
        return List.of(RefTensor.f32(v.shape(), out), RefTensor.f32(state.shape(), st));
    }

    /**
     * The chunked (WY) form of the same recurrence. Within a chunk starting from state S0, with
     * G_t = exp(sum of g up to t) and A[t][j] = beta_t (G_t / G_j) k_t . k_j for j < t, the updates are
     * delta = (I + A)^-1 (beta v - beta G (S0^T k)), the outputs o_t = G_t S0^T q_t + sum_{j<=t} (G_t/G_j)
     * (q_t . k_j) delta_j, and the state after the chunk G_m S0 + sum_j (G_m/G_j) k_j delta_j^T. Each slot's
     * tokens must appear in position order (a prefill run, or one decode token).
     */
    private static List<RefTensor> gatedDeltaRuleChunked(List<RefTensor> in, int chunk) {
        RefTensor q = in.get(0), k = in.get(1), v = in.get(2), g = in.get(3), beta = in.get(4), state = in.get(5);
        int[] slots = in.get(6).i(), pos = in.get(7).i();
        int tokens = q.dim(0), heads = q.dim(1), dk = q.dim(2), dv = v.dim(2);
        float[] st = state.f().clone(), out = new float[tokens * heads * dv];
        for (int start = 0; start < tokens; ) {
            int slot = slots[start], end = start + 1;
            while (end < tokens && slots[end] == slot && pos[end] == pos[end - 1] + 1) end++;
            if (slot >= 0) {
                checkSlot("gated_delta_rule", slot, 0, state.dim(0), 1);
                for (int h = 0; h < heads; h++) {
                    int sb = (slot * heads + h) * dk * dv;
                    double[][] s0 = new double[dk][dv];
                    if (pos[start] != 0) for (int i = 0; i < dk; i++) for (int j = 0; j < dv; j++) s0[i][j] = st[sb + i * dv + j];
                    for (int c = start; c < end; c += chunk) s0 = deltaChunk(q, k, v, g, beta, h, c, Math.min(end, c + chunk), s0, out);
                    for (int i = 0; i < dk; i++) for (int j = 0; j < dv; j++) st[sb + i * dv + j] = (float) s0[i][j];
                }
            }
            start = end;
        }
        return List.of(RefTensor.f32(v.shape(), out), RefTensor.f32(state.shape(), st));
    }

    /** One chunk [from, to) of one head; writes its outputs and returns the state after it. */
    private static double[][] deltaChunk(RefTensor q, RefTensor k, RefTensor v, RefTensor g, RefTensor beta, int h,
                                         int from, int to, double[][] s0, float[] out) {
        int heads = q.dim(1), dk = q.dim(2), dv = v.dim(2), m = to - from;
        double[] gamma = new double[m], b = new double[m];
        double cum = 0;
        for (int t = 0; t < m; t++) {
            cum += g.f()[(from + t) * heads + h];
            gamma[t] = Math.exp(cum);
            b[t] = beta.f()[(from + t) * heads + h];
        }
        double[][] kk = rows(k, from, m, h), qq = rows(q, from, m, h), vv = rows(v, from, m, h);
        // r = beta v - beta G (S0^T k); delta = (I + A)^-1 r by forward substitution.
        double[][] delta = new double[m][dv];
        for (int t = 0; t < m; t++) {
            for (int j = 0; j < dv; j++) {
                double mem = 0;
                for (int i = 0; i < dk; i++) mem += s0[i][j] * kk[t][i];
                delta[t][j] = b[t] * (vv[t][j] - gamma[t] * mem);
            }
            for (int u = 0; u < t; u++) {
                double at = b[t] * (gamma[t] / gamma[u]) * dotD(kk[t], kk[u]);
                for (int j = 0; j < dv; j++) delta[t][j] -= at * delta[u][j];
            }
        }
        int vb0 = from * heads + h;
        for (int t = 0; t < m; t++) {
            for (int j = 0; j < dv; j++) {
                double o = 0;
                for (int i = 0; i < dk; i++) o += s0[i][j] * qq[t][i];
                o *= gamma[t];
                for (int u = 0; u <= t; u++) o += (gamma[t] / gamma[u]) * dotD(qq[t], kk[u]) * delta[u][j];
                out[(vb0 + t * heads) * dv + j] = (float) o;
            }
        }
        double[][] s1 = new double[dk][dv];
        for (int i = 0; i < dk; i++) {
            for (int j = 0; j < dv; j++) {
                double s = gamma[m - 1] * s0[i][j];
                for (int u = 0; u < m; u++) s += (gamma[m - 1] / gamma[u]) * kk[u][i] * delta[u][j];
                s1[i][j] = s;
            }
        }
        return s1;
    }

    private static double[][] rows(RefTensor x, int from, int m, int h) {
        int heads = x.dim(1), d = x.dim(2);
        double[][] r = new double[m][d];
        for (int t = 0; t < m; t++) for (int i = 0; i < d; i++) r[t][i] = x.f()[((from + t) * heads + h) * d + i];
        return r;
    }

    private static double dotD(double[] a, double[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) s += a[i] * b[i];
        return s;
    }

    // ---- routing -------------------------------------------------------------------------------------

    public static List<RefTensor> softmax(List<RefTensor> in, Attrs a) {
        RefTensor x = in.get(0);
        int n = x.dim(-1);
        float[] out = new float[x.size()];
        for (int r = 0; r < x.size() / n; r++) {
            double[] row = new double[n];
            for (int j = 0; j < n; j++) row[j] = x.f()[r * n + j];
            softmaxInPlace(row);
            for (int j = 0; j < n; j++) out[r * n + j] = (float) row[j];
        }
        return List.of(RefTensor.f32(x.shape(), out));
    }

    public static List<RefTensor> topk(List<RefTensor> in, Attrs a) {
        RefTensor x = in.get(0);
        int n = x.dim(-1), k = (int) a.i("k"), rows = x.size() / n;
        float[] vals = new float[rows * k];
        int[] idx = new int[rows * k];
        for (int r = 0; r < rows; r++) {
            double[] row = new double[n];
            for (int j = 0; j < n; j++) row[j] = x.f()[r * n + j];
            int[] best = topIndices(row, k);
            for (int s = 0; s < k; s++) {
                idx[r * k + s] = best[s];
                vals[r * k + s] = x.f()[r * n + best[s]];
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

    public static List<RefTensor> groupLimit(List<RefTensor> in, Attrs a) {
        RefTensor x = in.get(0);
        float[] out = x.f().clone();
        int e = x.dim(-1);
        for (int r = 0; r < x.size() / e; r++) {
            double[] row = new double[e];
            for (int j = 0; j < e; j++) row[j] = out[r * e + j];
            boolean[] keep = keptExperts(row, (int) a.i("groups"), (int) a.i("keep"), a.s("select"));
            for (int j = 0; j < e; j++) if (!keep[j]) out[r * e + j] = Float.NEGATIVE_INFINITY;
        }
        return List.of(RefTensor.f32(x.shape(), out));
    }

    /** The experts of the {@code keep} best groups; a group scores its max or the sum of its two best. */
    public static boolean[] keptExperts(double[] row, int groups, int keep, String select) {
        int size = row.length / groups;
        double[] groupScore = new double[groups];
        for (int gr = 0; gr < groups; gr++) {
            double[] members = Arrays.copyOfRange(row, gr * size, (gr + 1) * size);
            int[] top = topIndices(members, Math.min(select.equals("max") ? 1 : 2, size));
            for (int i : top) groupScore[gr] += members[i];
        }
        boolean[] kept = new boolean[row.length];
        for (int gr : topIndices(groupScore, keep)) Arrays.fill(kept, gr * size, (gr + 1) * size, true);
        return kept;
    }

    public static List<RefTensor> takeAlong(List<RefTensor> in, Attrs a) {
        RefTensor x = in.get(0), idx = in.get(1);
        int n = x.dim(-1), k = idx.dim(-1);
        float[] out = new float[idx.size()];
        for (int r = 0; r < idx.size() / k; r++) {
            for (int s = 0; s < k; s++) {
                int j = idx.i()[r * k + s];
                if (j < 0 || j >= n) throw new IndexOutOfBoundsException("take_along index " + j + " outside 0.." + (n - 1));
                out[r * k + s] = x.f()[r * n + j];
            }
        }
        return List.of(RefTensor.f32(idx.shape(), out));
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
                    double g = dot(gate, (e * inter + i) * hidden, xs, t * hidden, hidden), u = dot(up, (e * inter + i) * hidden, xs, t * hidden, hidden);
                    act[i] = g / (1 + Math.exp(-g)) * u;
                }
                for (int o = 0; o < hidden; o++) {
                    double y = 0;
                    for (int i = 0; i < inter; i++) y += down[(e * hidden + o) * inter + i] * act[i];
                    acc[o] += w[t * k + s] * y;
                }
            }
            for (int o = 0; o < hidden; o++) out[t * hidden + o] = (float) acc[o];
        }
        return List.of(RefTensor.f32(x.shape(), out));
    }

    public static List<RefTensor> gatingSoftmax(List<RefTensor> in, Attrs a) {
        List<RefTensor> top = topk(softmax(in, a), Attrs.of("k", a.i("k")));
        return a.b("renorm") ? List.of(renorm(List.of(top.get(0)), a).getFirst(), top.get(1)) : top;
    }

    public static List<RefTensor> gatingTopk(List<RefTensor> in, Attrs a) {
        RefTensor x = in.get(0);
        float[] bias = in.get(1).f();
        int e = x.dim(1), tokens = x.dim(0), k = (int) a.i("k");
        float[] scores = gatingScores(x, a);
        float[] w = new float[tokens * k];
        int[] idx = new int[tokens * k];
        for (int t = 0; t < tokens; t++) gatingChoice(scores, t * e, e, bias, a, w, t * k, idx, t * k);
        return List.of(RefTensor.f32(new int[]{tokens, k}, w), RefTensor.i32(new int[]{tokens, k}, idx));
    }

    /** moe_gating_topk's scores: sigmoid or softmax of the router logits [T, E], per its norm_type. */
    public static float[] gatingScores(RefTensor x, Attrs a) {
        return (a.s("norm_type").equals("sigmoid") ? sigmoid(List.of(x), a) : softmax(List.of(x), a)).getFirst().f();
    }

    /**
     * moe_gating_topk's choice for one token from its scores [so, so + e): top k of score + bias within the
     * kept groups; weights the unbiased scores, normalized (sigmoid, or renorm) and scaled, into w from wo
     * and the experts into idx from io. Shared with the CPU kernel, so both choose the same experts with
     * the same weights.
     */
    public static void gatingChoice(float[] scores, int so, int e, float[] bias, Attrs a, float[] w, int wo, int[] idx, int io) {
        int k = (int) a.i("k");
        boolean normalize = a.s("norm_type").equals("sigmoid") || a.b("renorm");
        double[] choice = new double[e];
        for (int j = 0; j < e; j++) choice[j] = scores[so + j] + bias[j];
        boolean[] kept = keptExperts(choice, (int) a.i("groups"), (int) a.i("keep_groups"), a.s("group_select"));
        for (int j = 0; j < e; j++) if (!kept[j]) choice[j] = Double.NEGATIVE_INFINITY;
        int[] best = topIndices(choice, k);
        double sum = 0;
        for (int s = 0; s < k; s++) sum += scores[so + best[s]];
        for (int s = 0; s < k; s++) {
            double v = scores[so + best[s]];
            if (normalize) v /= sum + a.f("eps");
            w[wo + s] = (float) (v * a.f("routed_scaling"));
            idx[io + s] = best[s];
        }
    }

    public static List<RefTensor> moeDispatch(List<RefTensor> in, Attrs a) {
        RefTensor x = in.get(0), experts = in.get(1);
        int tokens = x.dim(0), hidden = x.dim(1), k = experts.dim(1), num = (int) a.i("num_experts");
        int[] counts = new int[num];
        for (int e : experts.i()) {
            if (e < 0 || e >= num) throw new IndexOutOfBoundsException("expert " + e + " outside 0.." + (num - 1));
            counts[e]++;
        }
        int[] next = new int[num];
        for (int e = 1; e < num; e++) next[e] = next[e - 1] + counts[e - 1];
        int[] rows = new int[tokens * k];
        float[] out = new float[tokens * k * hidden];
        for (int src = 0; src < tokens * k; src++) {   // ascending source order: a stable sort by expert
            int r = next[experts.i()[src]]++;
            rows[r] = src;
            System.arraycopy(x.f(), (src / k) * hidden, out, r * hidden, hidden);
        }
        return List.of(RefTensor.f32(new int[]{tokens * k, hidden}, out), RefTensor.i32(new int[]{tokens * k}, rows), RefTensor.i32(new int[]{num}, counts));
    }

    /** moe_dispatch, then dynamic_quant of the dispatched rows: the definition, row by row. */
    public static List<RefTensor> moeDispatchQuant(List<RefTensor> in, Attrs a) {
        List<RefTensor> d = moeDispatch(in, a);
        List<RefTensor> q = dynamicQuant(List.of(d.get(0)), a);
        return List.of(q.get(0), q.get(1), d.get(1), d.get(2));
    }

    public static List<RefTensor> groupedMatmul(List<RefTensor> in, Attrs a) {
        RefTensor x = in.get(0), w = in.get(1);
        int m = x.dim(0), kk = x.dim(1), n = w.dim(1);
        float[] out = new float[m * n];
        int row = 0;
        for (int e = 0; e < w.dim(0); e++) {
            int count = Math.min(in.get(2).i()[e], m - row);
            float[] y = linear(x.f(), row * kk, count, kk, w.f(), e * n * kk, n);
            System.arraycopy(y, 0, out, row * n, count * n);
            row += count;
        }
        return List.of(RefTensor.f32(new int[]{m, n}, out));
    }

    public static List<RefTensor> groupedQuantMatmul(List<RefTensor> in, Attrs a) {
        RefTensor x = in.get(0), xs = in.get(1), w = in.get(2), ws = in.get(3);
        int m = x.dim(0), kk = x.dim(1), n = w.dim(1);
        float[] out = new float[m * n];
        int row = 0;
        for (int e = 0; e < w.dim(0); e++) {
            int count = Math.min(in.get(4).i()[e], m - row);
            for (int r = row; r < row + count; r++) {
                for (int o = 0; o < n; o++) {
                    long acc = 0;
                    for (int j = 0; j < kk; j++) acc += (long) x.i()[r * kk + j] * w.i()[(e * n + o) * kk + j];
                    out[r * n + o] = (float) (acc * (double) xs.f()[r] * ws.f()[e * n + o]);
                }
            }
            row += count;
        }
        return List.of(RefTensor.f32(new int[]{m, n}, out));
    }

    public static List<RefTensor> swiglu(List<RefTensor> in, Attrs a) {
        RefTensor x = in.get(0);
        int n = x.dim(-1) / 2;
        float[] out = new float[x.size() / 2];
        for (int r = 0; r < out.length / n; r++) {
            for (int j = 0; j < n; j++) {
                double g = x.f()[r * 2 * n + j], u = x.f()[r * 2 * n + n + j];
                out[r * n + j] = (float) (g / (1 + Math.exp(-g)) * u);
            }
        }
        int[] shape = x.shape();
        shape[shape.length - 1] = n;
        return List.of(RefTensor.f32(shape, out));
    }

    /** swiglu, then dynamic_quant of each row. */
    public static List<RefTensor> swigluQuant(List<RefTensor> in, Attrs a) {
        return dynamicQuant(swiglu(in, a), a);
    }

    public static List<RefTensor> moeCombine(List<RefTensor> in, Attrs a) {
        RefTensor y = in.get(0), rows = in.get(1), w = in.get(2);
        int tokens = w.dim(0), k = w.dim(1), hidden = y.dim(1);
        double[] acc = new double[tokens * hidden];
        for (int r = 0; r < rows.size(); r++) {
            int src = rows.i()[r], t = src / k;
            for (int o = 0; o < hidden; o++) acc[t * hidden + o] += (double) w.f()[src] * y.f()[r * hidden + o];
        }
        float[] out = new float[acc.length];
        for (int i = 0; i < out.length; i++) out[i] = (float) acc[i];
        return List.of(RefTensor.f32(new int[]{tokens, hidden}, out));
    }

    // ---- quantization, fused norms --------------------------------------------------------------------

    public static List<RefTensor> addRmsNorm(List<RefTensor> in, Attrs a) {
        RefTensor sum = add(in.subList(0, 2), a).getFirst();
        return List.of(rmsNorm(List.of(sum, in.get(2)), a).getFirst(), sum);
    }

    public static List<RefTensor> dynamicQuant(List<RefTensor> in, Attrs a) {
        RefTensor x = in.get(0);
        int n = x.dim(-1), rows = x.size() / n;
        int[] q = new int[x.size()];
        float[] scale = new float[rows];
        for (int r = 0; r < rows; r++) scale[r] = quantizeRow(x.f(), r * n, n, q, r * n);
        return List.of(RefTensor.ofInts(DType.I8, x.shape(), q), RefTensor.f32(Arrays.copyOf(x.shape(), x.rank() - 1), scale));
    }

    /**
     * Dynamic per-row int8: scale = max|x| / 127, q = clamp(round(x / scale), -127, 127) (all zeros for a zero
     * row); writes q[qo..] and returns the scale. Shared with the CPU kernels, which must quantize alike.
     */
    public static float quantizeRow(float[] x, int xo, int n, int[] q, int qo) {
        float max = 0;
        for (int j = 0; j < n; j++) max = Math.max(max, Math.abs(x[xo + j]));
        float scale = max / 127f;
        for (int j = 0; j < n; j++) q[qo + j] = max == 0 ? 0 : (int) Math.max(-127, Math.min(127, Math.rint(x[xo + j] / scale)));
        return scale;
    }

    public static List<RefTensor> addRmsNormDynamicQuant(List<RefTensor> in, Attrs a) {
        List<RefTensor> normed = addRmsNorm(in, a);
        List<RefTensor> q = dynamicQuant(List.of(normed.get(0)), a);
        return List.of(q.get(0), normed.get(1), q.get(1));
    }

    public static List<RefTensor> quantMatmul(List<RefTensor> in, Attrs a) {
        RefTensor x = in.get(0), xs = in.get(1), w = in.get(2), ws = in.get(3);
        int n = w.dim(0), k = w.dim(1), rows = x.size() / k;
        float[] out = new float[rows * n];
        for (int r = 0; r < rows; r++) {
            for (int o = 0; o < n; o++) {
                long acc = 0;
                for (int j = 0; j < k; j++) acc += (long) x.i()[r * k + j] * w.i()[o * k + j];
                out[r * n + o] = (float) (acc * (double) xs.f()[r] * ws.f()[o]);
            }
        }
        int[] shape = x.shape();
        shape[shape.length - 1] = n;
        return List.of(RefTensor.f32(shape, out));
    }

    public static List<RefTensor> weightQuant(List<RefTensor> in, Attrs a) {
        RefTensor w = in.get(0);
        int bits = (int) a.i("bits"), qmax = (1 << (bits - 1)) - 1, k = w.dim(-1), rows = w.size() / k;
        int[] q = new int[w.size()];
        float[] scale = new float[rows];
        for (int r = 0; r < rows; r++) scale[r] = weightQuantRow(w.f(), r * k, k, qmax, q, r * k);
        return List.of(RefTensor.ofInts(bits == 8 ? DType.I8 : DType.I4, w.shape(), q), RefTensor.f32(Arrays.copyOf(w.shape(), w.rank() - 1), scale));
    }

    /**
     * One row of weight_quant: scale = max|w| / qmax (1 for a zero row), q = clamp(round(w / scale)); writes
     * q[qo..] and returns the scale. Shared with the CPU kernel.
     */
    public static float weightQuantRow(float[] w, int wo, int k, int qmax, int[] q, int qo) {
        float max = 0;
        for (int j = 0; j < k; j++) max = Math.max(max, Math.abs(w[wo + j]));
        float scale = max == 0 ? 1f : max / qmax;
        for (int j = 0; j < k; j++) q[qo + j] = (int) Math.max(-qmax, Math.min(qmax, Math.rint(w[wo + j] / scale)));
        return scale;
    }

    public static List<RefTensor> staticQuant(List<RefTensor> in, Attrs a) {
        RefTensor x = in.get(0);
        double scale = in.get(1).f()[0], offset = in.get(2).f()[0];
        int[] q = new int[x.size()];
        for (int i = 0; i < q.length; i++) q[i] = staticQuantOf(x.f()[i], scale, offset);
        return List.of(RefTensor.ofInts(DType.I8, x.shape(), q));
    }

    /** static_quant of one value: clamp(round(x / scale + offset), -128, 127). Shared with the CPU kernel. */
    public static int staticQuantOf(float x, double scale, double offset) {
        return (int) Math.max(-128, Math.min(127, Math.rint(x / scale + offset)));
    }

    public static List<RefTensor> quantMatmulStatic(List<RefTensor> in, Attrs a) {
        RefTensor x = in.get(0), w = in.get(1), bias = in.get(2), deq = in.get(3);
        int n = w.dim(0), k = w.dim(1), rows = x.size() / k;
        float[] out = new float[rows * n];
        for (int r = 0; r < rows; r++) {
            for (int o = 0; o < n; o++) {
                long acc = bias.i()[o];
                for (int j = 0; j < k; j++) acc += (long) x.i()[r * k + j] * w.i()[o * k + j];
                out[r * n + o] = (float) (acc * (double) deq.f()[o]);
            }
        }
        int[] shape = x.shape();
        shape[shape.length - 1] = n;
        return List.of(RefTensor.f32(shape, out));
    }

    /**
     * Quantized SwiGLU experts: per token, q(x) = dynamic_quant(x); g, u = (q(x) . W) * x_scale * w_scale;
     * a = silu(g) * u; y = (q(a) . W_down) * a_scale * w_scale; out = sum_k weights[t,k] * y.
     */
    public static List<RefTensor> moeExpertsQuant(List<RefTensor> in, Attrs a) {
        RefTensor x = in.get(0), gate = in.get(3), up = in.get(5), down = in.get(7);
        float[] w = in.get(1).f(), sg = in.get(4).f(), su = in.get(6).f(), sd = in.get(8).f();
        int[] experts = in.get(2).i();
        int tokens = x.dim(0), hidden = x.dim(1), k = in.get(1).dim(1), inter = gate.dim(1), count = gate.dim(0);
        float[] out = new float[tokens * hidden];
        for (int t = 0; t < tokens; t++) {
            List<RefTensor> xq = dynamicQuant(List.of(RefTensor.f32(new int[]{1, hidden}, Arrays.copyOfRange(x.f(), t * hidden, (t + 1) * hidden))), a);
            int[] qx = xq.get(0).i();
            double xs = xq.get(1).f()[0];
            double[] acc = new double[hidden];
            for (int s = 0; s < k; s++) {
                int e = experts[t * k + s];
                if (e < 0 || e >= count) throw new IndexOutOfBoundsException("expert " + e + " outside 0.." + (count - 1));
                float[] act = new float[inter];
                for (int i = 0; i < inter; i++) {
                    long gi = 0, ui = 0;
                    for (int j = 0; j < hidden; j++) {
                        gi += (long) qx[j] * gate.i()[(e * inter + i) * hidden + j];
                        ui += (long) qx[j] * up.i()[(e * inter + i) * hidden + j];
                    }
                    double g = gi * xs * sg[e * inter + i], u = ui * xs * su[e * inter + i];
                    act[i] = (float) (g / (1 + Math.exp(-g)) * u);
                }
                List<RefTensor> aq = dynamicQuant(List.of(RefTensor.f32(new int[]{1, inter}, act)), a);
                double as = aq.get(1).f()[0];
                for (int o = 0; o < hidden; o++) {
                    long yi = 0;
                    for (int i = 0; i < inter; i++) yi += (long) aq.get(0).i()[i] * down.i()[(e * hidden + o) * inter + i];
                    acc[o] += w[t * k + s] * (yi * as * sd[e * hidden + o]);
                }
            }
            for (int o = 0; o < hidden; o++) out[t * hidden + o] = (float) acc[o];
        }
        return List.of(RefTensor.f32(x.shape(), out));
    }

    // ---- elementwise ---------------------------------------------------------------------------------

    public static List<RefTensor> silu(List<RefTensor> in, Attrs a) { return unary(in, x -> x / (1 + Math.exp(-x))); }
    public static List<RefTensor> sigmoid(List<RefTensor> in, Attrs a) { return unary(in, Reference::sigmoidOf); }
    public static List<RefTensor> softplus(List<RefTensor> in, Attrs a) { return unary(in, Reference::softplusOf); }

    /** The element functions of sigmoid and softplus (softplus in its overflow-free form), shared with the CPU kernels. */
    public static double sigmoidOf(double x) { return 1 / (1 + Math.exp(-x)); }

    public static double softplusOf(double x) { return Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x))); }

    public static List<RefTensor> exp(List<RefTensor> in, Attrs a) { return unary(in, Math::exp); }
    public static List<RefTensor> neg(List<RefTensor> in, Attrs a) { return unary(in, x -> -x); }
    public static List<RefTensor> relu(List<RefTensor> in, Attrs a) { return unary(in, x -> Math.max(x, 0)); }
    public static List<RefTensor> scale(List<RefTensor> in, Attrs a) {
        double f = a.f("factor");
        return unary(in, x -> x * f);
    }

    public static List<RefTensor> add(List<RefTensor> in, Attrs a) { return binary(in, Double::sum); }
    public static List<RefTensor> sub(List<RefTensor> in, Attrs a) { return binary(in, (x, y) -> x - y); }
    public static List<RefTensor> mul(List<RefTensor> in, Attrs a) { return binary(in, (x, y) -> x * y); }
    public static List<RefTensor> div(List<RefTensor> in, Attrs a) { return binary(in, (x, y) -> x / y); }

    private static List<RefTensor> unary(List<RefTensor> in, java.util.function.DoubleUnaryOperator f) {
        float[] xs = in.getFirst().f(), out = new float[xs.length];
        for (int j = 0; j < xs.length; j++) out[j] = (float) f.applyAsDouble(xs[j]);
        return List.of(RefTensor.f32(in.getFirst().shape(), out));
    }

    /** Numpy broadcasting from the right. */
    private static List<RefTensor> binary(List<RefTensor> in, java.util.function.DoubleBinaryOperator f) {
        RefTensor x = in.get(0), y = in.get(1);
        int rank = Math.max(x.rank(), y.rank());
        int[] shape = new int[rank], xs = padLeft(x.shape(), rank), ys = padLeft(y.shape(), rank);
        for (int i = 0; i < rank; i++) shape[i] = Math.max(xs[i], ys[i]);
        int n = (int) RefTensor.volume(shape);
        float[] out = new float[n];
        int[] index = new int[rank];
        for (int flat = 0; flat < n; flat++) {
            int rem = flat, xi = 0, yi = 0;
            for (int i = rank - 1; i >= 0; i--) {
                index[i] = rem % shape[i];
                rem /= shape[i];
            }
            for (int i = 0; i < rank; i++) {
                xi = xi * xs[i] + (xs[i] == 1 ? 0 : index[i]);
                yi = yi * ys[i] + (ys[i] == 1 ? 0 : index[i]);
            }
            out[flat] = (float) f.applyAsDouble(x.f()[xi], y.f()[yi]);
        }
        return List.of(RefTensor.f32(shape, out));
    }

    // ---- helpers -------------------------------------------------------------------------------------

    /** rows of x (each k long, from xOffset) times weight rows (n of them, from wOffset), accumulated in double. */
    private static float[] linear(float[] x, int xOffset, int rows, int k, float[] w, int wOffset, int n) {
        float[] out = new float[rows * n];
        for (int r = 0; r < rows; r++) {
            for (int o = 0; o < n; o++) out[r * n + o] = (float) dot(x, xOffset + r * k, w, wOffset + o * k, k);
        }
        return out;
    }

    /** sum_j a[ao + j] * b[bo + j] in double, in order: the semantics' dot product (shared with CPU kernels that must match it exactly). */
    public static double dot(float[] a, int ao, float[] b, int bo, int n) {
        double s = 0;
        for (int j = 0; j < n; j++) s += (double) a[ao + j] * b[bo + j];
        return s;
    }

    private static void softmaxInPlace(double[] v) {
        double max = Double.NEGATIVE_INFINITY, sum = 0;
        for (double x : v) max = Math.max(max, x);
        for (int j = 0; j < v.length; j++) sum += v[j] = Math.exp(v[j] - max);
        for (int j = 0; j < v.length; j++) v[j] /= sum;
    }

    /** Indices of the k largest values, descending; equal values keep the lower index first. */
    /** The indices of the k largest of v, largest first, equal values by lower index: the semantics' top-k order. */
    public static int[] topIndices(double[] v, int k) {
        Integer[] order = new Integer[v.length];
        for (int i = 0; i < v.length; i++) order[i] = i;
        Arrays.sort(order, (p, q) -> v[p] != v[q] ? Double.compare(v[q], v[p]) : Integer.compare(p, q));
        int[] out = new int[k];
        for (int i = 0; i < k; i++) out[i] = order[i];
        return out;
    }

    /** The addressing of {@code cache} [NB, BS, ...] through {@code table} [S, MB]. */
    private static PagedCache paged(String op, RefTensor cache, RefTensor table) {
        return new PagedCache(op, table.i(), table.dim(1), cache.dim(1), cache.dim(0));
    }

    private static void checkSlot(String op, int slot, int pos, int slots, int len) {
        if (slot >= slots || pos < 0 || pos >= len) {
            throw new IndexOutOfBoundsException(op + " slot " + slot + " position " + pos + " outside state [" + slots + ", " + len + "]");
        }
    }

    private static int axis(RefTensor x, long axis) { return (int) (axis < 0 ? axis + x.rank() : axis); }

    private static int prod(int[] shape, int from, int to) {
        int p = 1;
        for (int i = from; i < to; i++) p *= shape[i];
        return p;
    }

    private static int[] padLeft(int[] shape, int rank) {
        int[] out = new int[rank];
        Arrays.fill(out, 1);
        System.arraycopy(shape, 0, out, rank - shape.length, shape.length);
        return out;
    }

    private static int[] ints(long[] sizes) {
        int[] out = new int[sizes.length];
        for (int j = 0; j < sizes.length; j++) out[j] = Math.toIntExact(sizes[j]);
        return out;
    }

    private static int[] concat(int[] a, int[] b) {
        int[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    /** A view of a tensor's data, float or int, for the data-movement ops. */
    private record Block(float[] f, int[] i) {
        Block(RefTensor t) { this(t.isInt() ? null : t.f(), t.isInt() ? t.i() : null); }

        void copy(Block src, int from, int to, int n) {
            if (f != null) System.arraycopy(src.f, from, f, to, n);
            else System.arraycopy(src.i, from, i, to, n);
        }
    }

    private interface BlockCopy { void copy(Block src, Block dst, int outer); }

    /** A new tensor of x's dtype and the given shape, filled by {@code body} once per outer index. */
    private static RefTensor copyBlocks(RefTensor x, int[] shape, int outer, BlockCopy body) {
        int n = (int) RefTensor.volume(shape);
        RefTensor out = x.isInt() ? RefTensor.ofInts(x.dtype(), shape, new int[n]) : RefTensor.of(x.dtype(), shape, new float[n]);
        Block src = new Block(x), dst = new Block(out);
        for (int o = 0; o < outer; o++) body.copy(src, dst, o);
        return out;
    }
}
