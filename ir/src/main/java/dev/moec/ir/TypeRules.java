package dev.moec.ir;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Type rules of the ops in {@link Op}. Each throws a {@link TypeError} whose rule name says what was
 * checked; dimensions compare as equal numbers or equal symbols.
 */
public final class TypeRules {
    private TypeRules() {}

    static List<TensorType> gather(List<TensorType> in, Attrs a) {
        TensorType table = in.get(0), index = in.get(1);
        requireFloat("gather.table-float", table);
        requireInt("gather.index-int", index);
        if (table.rank() < 1) throw new TypeError("gather.table-rank", "table must have rank >= 1, got " + table);
        List<Dim> dims = new ArrayList<>(index.shape().dims());
        dims.addAll(table.shape().dims().subList(1, table.rank()));
        return List.of(new TensorType(DType.F32, new Shape(dims)));
    }

    static List<TensorType> rmsNorm(List<TensorType> in, Attrs a) {
        TensorType x = in.get(0), w = in.get(1);
        requireF32("rms_norm.x-f32", x);
        if (w.rank() != 1 || !w.shape().dim(0).equals(x.shape().last())) {
            throw new TypeError("rms_norm.weight-shape", "weight must be [" + x.shape().last() + "] for x " + x + ", got " + w);
        }
        return List.of(x);
    }

    static List<TensorType> matmul(List<TensorType> in, Attrs a) {
        TensorType x = in.get(0), w = in.get(1);
        requireF32("matmul.x-f32", x);
        requireFloat("matmul.weight-float", w);
        if (w.rank() != 2) throw new TypeError("matmul.weight-rank", "weight must be [N, K], got " + w);
        if (!w.shape().dim(1).equals(x.shape().last())) {
            throw new TypeError("matmul.contraction", "x " + x + " and weight " + w + " disagree on K");
        }
        return List.of(x.withShape(x.shape().withLast(w.shape().dim(0))));
    }

    static List<TensorType> reshape(List<TensorType> in, Attrs a) {
        TensorType x = in.get(0);
        Shape target = a.shape("shape");
        if (!sameVolume(x.shape(), target)) {
            throw new TypeError("reshape.volume", "cannot reshape " + x + " to " + target + ": element counts differ");
        }
        return List.of(x.withShape(target));
    }

    /** Equal products of fixed sizes and equal multisets of symbols: the volume is equal for every binding. */
    private static boolean sameVolume(Shape s, Shape t) {
        Map<String, Integer> symbols = new HashMap<>();
        long ps = 1, pt = 1;
        for (Dim d : s.dims()) {
            if (d instanceof Dim.Fixed f) ps *= f.size(); else symbols.merge(d.toString(), 1, Integer::sum);
        }
        for (Dim d : t.dims()) {
            if (d instanceof Dim.Fixed f) pt *= f.size(); else symbols.merge(d.toString(), -1, Integer::sum);
        }
        return ps == pt && symbols.values().stream().allMatch(c -> c == 0);
    }

    static List<TensorType> rope(List<TensorType> in, Attrs a) {
        TensorType x = in.get(0), pos = in.get(1);
        requireF32("rope.x-f32", x);
        requireInt("rope.positions-int", pos);
        if (x.rank() != 3) throw new TypeError("rope.x-rank", "x must be [T, heads, head_dim], got " + x);
        if (pos.rank() != 1 || !pos.shape().dim(0).equals(x.shape().dim(0))) {
            throw new TypeError("rope.positions-shape", "positions must be [" + x.shape().dim(0) + "], got " + pos);
        }
        long rd = a.i("rotary_dim");
        Dim d = x.shape().last();
        if (rd <= 0 || rd % 2 != 0 || (d.isFixed() && rd > d.size())) {
            throw new TypeError("rope.rotary-dim", "rotary_dim " + rd + " must be even and within head_dim " + d);
        }
        return List.of(x);
    }

    static List<TensorType> kvWrite(List<TensorType> in, Attrs a) {
        TensorType cache = in.get(0), kv = in.get(1), slots = in.get(2), pos = in.get(3);
        if (cache.rank() != 4) throw new TypeError("kv_write.cache-rank", "cache must be [S, L, kv_heads, head_dim], got " + cache);
        if (kv.rank() != 3 || !kv.shape().dims().subList(1, 3).equals(cache.shape().dims().subList(2, 4))) {
            throw new TypeError("kv_write.kv-shape", "kv " + kv + " must be [T, " + cache.shape().dim(2) + ", " + cache.shape().dim(3) + "] for cache " + cache);
        }
        requireTokenVector("kv_write", slots, kv.shape().dim(0));
        requireTokenVector("kv_write", pos, kv.shape().dim(0));
        return List.of(cache);
    }

    static List<TensorType> attention(List<TensorType> in, Attrs a) {
        TensorType q = in.get(0), kc = in.get(1), vc = in.get(2), slots = in.get(3), pos = in.get(4);
        requireF32("attention.q-f32", q);
        if (q.rank() != 3 || kc.rank() != 4 || vc.rank() != 4) {
            throw new TypeError("attention.rank", "q must be [T,H,D] and caches [S,L,KVH,D], got " + q + ", " + kc + ", " + vc);
        }
        if (!kc.shape().dims().subList(0, 3).equals(vc.shape().dims().subList(0, 3))) {
            throw new TypeError("attention.cache-shapes", "k and v caches disagree: " + kc + " vs " + vc);
        }
        if (!q.shape().last().equals(kc.shape().last())) {
            throw new TypeError("attention.head-dim", "q " + q + " and k cache " + kc + " disagree on head_dim");
        }
        Dim h = q.shape().dim(1), kvh = kc.shape().dim(2);
        if (h.isFixed() && kvh.isFixed() && h.size() % kvh.size() != 0) {
            throw new TypeError("attention.gqa-groups", "query heads " + h + " are not a multiple of kv heads " + kvh);
        }
        requireTokenVector("attention", slots, q.shape().dim(0));
        requireTokenVector("attention", pos, q.shape().dim(0));
        return List.of(q.withShape(q.shape().withLast(vc.shape().last())));
    }

    static List<TensorType> topk(List<TensorType> in, Attrs a) {
        TensorType x = in.get(0);
        requireF32("topk.x-f32", x);
        long k = a.i("k");
        Dim n = x.shape().last();
        if (k <= 0 || (n.isFixed() && k > n.size())) throw new TypeError("topk.k-range", "k = " + k + " must be in 1.." + n);
        Shape s = x.shape().withLast(Dim.of(k));
        return List.of(new TensorType(DType.F32, s), new TensorType(DType.I32, s));
    }

    static List<TensorType> moeExperts(List<TensorType> in, Attrs a) {
        TensorType x = in.get(0), w = in.get(1), e = in.get(2), gate = in.get(3), up = in.get(4), down = in.get(5);
        requireF32("moe_experts.x-f32", x);
        requireInt("moe_experts.experts-int", e);
        if (x.rank() != 2 || w.rank() != 2 || !w.shape().equals(e.shape()) || !w.shape().dim(0).equals(x.shape().dim(0))) {
            throw new TypeError("moe_experts.routing-shape", "x must be [T,H] and weights/experts [T,K]: " + x + ", " + w + ", " + e);
        }
        if (gate.rank() != 3 || !gate.shape().equals(up.shape()) || !gate.shape().dim(2).equals(x.shape().dim(1))) {
            throw new TypeError("moe_experts.gate-up-shape", "w_gate and w_up must be [E, I, " + x.shape().dim(1) + "]: " + gate + ", " + up);
        }
        Shape want = Shape.of(gate.shape().dim(0), x.shape().dim(1), gate.shape().dim(1));
        if (!down.shape().equals(want)) throw new TypeError("moe_experts.down-shape", "w_down must be " + want + ", got " + down);
        return List.of(x);
    }

    static List<TensorType> sameAsFirst(List<TensorType> in, Attrs a) {
        requireF32("elementwise.f32", in.getFirst());
        return List.of(in.getFirst());
    }

    static List<TensorType> elementwise(List<TensorType> in, Attrs a) {
        if (!in.get(0).equals(in.get(1))) throw new TypeError("elementwise.same-type", "operands differ: " + in.get(0) + " vs " + in.get(1));
        requireF32("elementwise.f32", in.get(0));
        return List.of(in.get(0));
    }

    private static void requireTokenVector(String op, TensorType t, Dim tokens) {
        requireInt(op + ".index-int", t);
        if (t.rank() != 1 || !t.shape().dim(0).equals(tokens)) {
            throw new TypeError(op + ".token-vector", "slots/positions must be i32[" + tokens + "], got " + t);
        }
    }

    private static void requireF32(String rule, TensorType t) {
        if (t.dtype() != DType.F32) throw new TypeError(rule, "expected an f32 activation, got " + t);
    }

    private static void requireFloat(String rule, TensorType t) {
        if (!t.dtype().isFloating()) throw new TypeError(rule, "expected a floating-point tensor, got " + t);
    }

    private static void requireInt(String rule, TensorType t) {
        if (t.dtype() != DType.I32 && t.dtype() != DType.I64) throw new TypeError(rule, "expected an i32 or i64 tensor, got " + t);
    }
}
