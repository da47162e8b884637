package dev.moec.ir;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Type rules of the ops in {@link Op}. Each throws a {@link TypeError} whose rule name says what was
 * checked ({@code <op>.<what>}); dimensions compare as equal numbers, equal symbols or equal scaled symbols.
 */
public final class TypeRules {
    private TypeRules() {}

    // ---- embedding, norms, linear algebra, shapes ---------------------------------------------------

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
        requireFloat("rms_norm.weight-float", w);
        requireNormWeight("rms_norm.weight-shape", x, w);
        return List.of(x);
    }

    static List<TensorType> layerNorm(List<TensorType> in, Attrs a) {
        TensorType x = in.get(0);
        requireF32("layer_norm.x-f32", x);
        requireNormWeight("layer_norm.weight-shape", x, in.get(1));
        requireNormWeight("layer_norm.bias-shape", x, in.get(2));
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

    static List<TensorType> headMatmul(List<TensorType> in, Attrs a) {
        TensorType x = in.get(0), w = in.get(1);
        requireF32("head_matmul.x-f32", x);
        requireFloat("head_matmul.weight-float", w);
        if (x.rank() != 3 || w.rank() != 3 || !w.shape().dim(0).equals(x.shape().dim(1)) || !w.shape().dim(2).equals(x.shape().dim(2))) {
            throw new TypeError("head_matmul.shapes", "x must be [T, H, K] and weight [H, N, K], got " + x + " and " + w);
        }
        return List.of(TensorType.of(DType.F32, x.shape().dim(0), x.shape().dim(1), w.shape().dim(1)));
    }

    static List<TensorType> reshape(List<TensorType> in, Attrs a) {
        TensorType x = in.get(0);
        Shape target = a.shape("shape");
        if (!sameVolume(x.shape(), target)) {
            throw new TypeError("reshape.volume", "cannot reshape " + x + " to " + target + ": element counts differ");
        }
        return List.of(x.withShape(target));
    }

    /** Equal products of the constant factors and equal multisets of symbols: equal volume under every binding. */
    private static boolean sameVolume(Shape s, Shape t) {
        Map<String, Integer> symbols = new HashMap<>();
        long ps = volumeFactors(s, symbols, 1), pt = volumeFactors(t, symbols, -1);
        return ps == pt && symbols.values().stream().allMatch(c -> c == 0);
    }

    private static long volumeFactors(Shape s, Map<String, Integer> symbols, int sign) {
        long p = 1;
        for (Dim d : s.dims()) {
            switch (d) {
                case Dim.Fixed f -> p *= f.size();
                case Dim.Sym y -> symbols.merge(y.name(), sign, Integer::sum);
                case Dim.Scaled y -> {
                    p *= y.factor();
                    symbols.merge(y.symbol().name(), sign, Integer::sum);
                }
            }
        }
        return p;
    }

    static List<TensorType> cast(List<TensorType> in, Attrs a) {
        TensorType x = in.get(0);
        DType to;
        try {
            to = DType.parse(a.s("dtype"));
        } catch (IllegalArgumentException e) {
            throw new TypeError("cast.dtype", e.getMessage());
        }
        if (!x.dtype().isFloating() || !to.isFloating()) throw new TypeError("cast.floating", "cast converts between floating dtypes, not " + x.dtype() + " to " + to);
        return List.of(x.withDType(to));
    }

    static List<TensorType> slice(List<TensorType> in, Attrs a) {
        TensorType x = in.get(0);
        int axis = axis("slice", x, a.i("axis"));
        long start = a.i("start"), end = a.i("end");
        Dim d = x.shape().dim(axis);
        if (start < 0 || end <= start || (d.isFixed() && end > d.size())) {
            throw new TypeError("slice.range", "[" + start + ", " + end + ") is not a non-empty range inside dimension " + d + " of " + x);
        }
        List<Dim> dims = new ArrayList<>(x.shape().dims());
        dims.set(axis, Dim.of(end - start));
        return List.of(x.withShape(new Shape(dims)));
    }

    static List<TensorType> concat(List<TensorType> in, Attrs a) {
        TensorType x = in.get(0), y = in.get(1);
        int axis = axis("concat", x, a.i("axis"));
        if (x.dtype() != y.dtype() || x.rank() != y.rank()) throw new TypeError("concat.same-kind", "cannot join " + x + " and " + y);
        List<Dim> dims = new ArrayList<>(x.shape().dims());
        for (int i = 0; i < dims.size(); i++) {
            if (i != axis && !dims.get(i).equals(y.shape().dim(i))) throw new TypeError("concat.shapes", x + " and " + y + " differ outside axis " + axis);
        }
        Dim p = x.shape().dim(axis), q = y.shape().dim(axis);
        if (!p.isFixed() || !q.isFixed()) throw new TypeError("concat.fixed-axis", "the joined dimension must be a number in both: " + x + ", " + y);
        dims.set(axis, Dim.of(p.size() + q.size()));
        return List.of(x.withShape(new Shape(dims)));
    }

    static List<TensorType> repeat(List<TensorType> in, Attrs a) {
        TensorType x = in.get(0);
        int axis = axis("repeat", x, a.i("axis"));
        long times = a.i("times");
        if (times < 1) throw new TypeError("repeat.times", "times must be >= 1, got " + times);
        List<Dim> dims = new ArrayList<>(x.shape().dims());
        dims.set(axis, Dim.times(dims.get(axis), times));
        return List.of(x.withShape(new Shape(dims)));
    }

    // ---- positions, caches, attention ---------------------------------------------------------------

    static List<TensorType> rope(List<TensorType> in, Attrs a) {
        TensorType x = in.get(0), pos = in.get(1);
        requireF32("rope.x-f32", x);
        if (x.rank() != 3) throw new TypeError("rope.x-rank", "x must be [T, heads, head_dim], got " + x);
        requireTokenVector("rope", pos, x.shape().dim(0));
        requireRotaryDim("rope", a, x.shape().last());
        requireYarn("rope", a);
        return List.of(x);
    }

    static List<TensorType> ropeCosSin(List<TensorType> in, Attrs a) {
        TensorType pos = in.get(0);
        requireInt("rope_cos_sin.positions-int", pos);
        if (pos.rank() != 1) throw new TypeError("rope_cos_sin.positions-rank", "positions must be [T], got " + pos);
        requireRotaryDim("rope_cos_sin", a, null);
        requireYarn("rope_cos_sin", a);
        TensorType t = TensorType.of(DType.F32, pos.shape().dim(0), a.i("rotary_dim") / 2);
        return List.of(t, t);
    }

    static List<TensorType> applyRotary(List<TensorType> in, Attrs a) {
        TensorType x = in.get(0), cos = in.get(1), sin = in.get(2);
        requireF32("apply_rotary.x-f32", x);
        if (x.rank() != 3) throw new TypeError("apply_rotary.x-rank", "x must be [T, heads, head_dim], got " + x);
        requireRotaryDim("apply_rotary", a, x.shape().last());
        TensorType want = TensorType.of(DType.F32, x.shape().dim(0), a.i("rotary_dim") / 2);
        if (!cos.equals(want) || !sin.equals(want)) throw new TypeError("apply_rotary.table-shape", "cos and sin must be " + want + ", got " + cos + " and " + sin);
        return List.of(x);
    }

    static List<TensorType> kvWrite(List<TensorType> in, Attrs a) {
        TensorType cache = in.get(0), kv = in.get(1), slots = in.get(3), pos = in.get(4);
        if (cache.rank() != 4) throw new TypeError("kv_write.cache-rank", "cache must be [NB, BS, kv_heads, head_dim], got " + cache);
        if (kv.rank() != 3 || !kv.shape().dims().subList(1, 3).equals(cache.shape().dims().subList(2, 4))) {
            throw new TypeError("kv_write.kv-shape", "kv " + kv + " must be [T, " + cache.shape().dim(2) + ", " + cache.shape().dim(3) + "] for cache " + cache);
        }
        requireF32("kv_write.kv-f32", kv);
        requireCacheDtype("kv_write", cache);
        requireBlockTable("kv_write", in.get(2));
        requireTokenVector("kv_write", slots, kv.shape().dim(0));
        requireTokenVector("kv_write", pos, kv.shape().dim(0));
        return List.of(cache);
    }

    static List<TensorType> attention(List<TensorType> in, Attrs a) {
        TensorType q = in.get(0), kc = in.get(1), vc = in.get(2), slots = in.get(4), pos = in.get(5);
        requireF32("attention.q-f32", q);
        if (q.rank() != 3 || kc.rank() != 4 || vc.rank() != 4) {
            throw new TypeError("attention.rank", "q must be [T,H,D] and caches [NB,BS,KVH,D], got " + q + ", " + kc + ", " + vc);
        }
        if (!kc.shape().dims().subList(0, 3).equals(vc.shape().dims().subList(0, 3)) || kc.dtype() != vc.dtype()) {
            throw new TypeError("attention.cache-shapes", "k and v caches disagree: " + kc + " vs " + vc);
        }
        requireCacheDtype("attention", kc);
        if (!q.shape().last().equals(kc.shape().last())) {
            throw new TypeError("attention.head-dim", "q " + q + " and k cache " + kc + " disagree on head_dim");
        }
        Dim h = q.shape().dim(1), kvh = kc.shape().dim(2);
        if (h.isFixed() && kvh.isFixed() && h.size() % kvh.size() != 0) {
            throw new TypeError("attention.gqa-groups", "query heads " + h + " are not a multiple of kv heads " + kvh);
        }
        requireBlockTable("attention", in.get(3));
        requireTokenVector("attention", slots, q.shape().dim(0));
        requireTokenVector("attention", pos, q.shape().dim(0));
        return List.of(q.withShape(q.shape().withLast(vc.shape().last())));
    }

    static List<TensorType> fusedInferAttention(List<TensorType> in, Attrs a) {
        TensorType out = attention(in, a).getFirst();
        TensorType q = in.get(0), kc = in.get(1);
        if (!q.shape().dim(1).equals(Dim.of(a.i("num_heads"))) || !kc.shape().dim(2).equals(Dim.of(a.i("num_kv_heads")))) {
            throw new TypeError("fused_infer_attention.heads", "num_heads " + a.i("num_heads") + " / num_kv_heads " + a.i("num_kv_heads")
                    + " disagree with q " + q + " and cache " + kc);
        }
        if (!a.s("input_layout").equals("TND")) throw new TypeError("fused_infer_attention.layout", "input_layout must be \"TND\", got \"" + a.s("input_layout") + "\"");
        if (a.i("sparse_mode") != 3) throw new TypeError("fused_infer_attention.sparse-mode", "sparse_mode must be 3 (causal), got " + a.i("sparse_mode"));
        return List.of(out);
    }

    static List<TensorType> mlaAttention(List<TensorType> in, Attrs a) {
        TensorType qn = in.get(0), qp = in.get(1), cache = in.get(2), w = in.get(3);
        requireF32("mla_attention.q-f32", qn);
        requireF32("mla_attention.q-f32", qp);
        requireFloat("mla_attention.w-float", w);
        if (qn.rank() != 3 || qp.rank() != 3 || !qn.shape().dims().subList(0, 2).equals(qp.shape().dims().subList(0, 2))) {
            throw new TypeError("mla_attention.q-shapes", "q_nope and q_pe must be [T, H, *] alike, got " + qn + " and " + qp);
        }
        if (cache.rank() != 4 || !cache.shape().dim(2).equals(Dim.of(1)) || w.rank() != 2) {
            throw new TypeError("mla_attention.cache-shape", "cache must be [NB, BS, 1, C + rope] and w_kv_b [H * (nope + v), C], got " + cache + " and " + w);
        }
        long v = a.i("v_head_dim");
        Dim h = qn.shape().dim(1), dn = qn.shape().dim(2), dr = qp.shape().dim(2), c = w.shape().dim(1), row = cache.shape().dim(3);
        if (h.isFixed() && dn.isFixed() && w.shape().dim(0).isFixed() && w.shape().dim(0).size() != h.size() * (dn.size() + v)) {
            throw new TypeError("mla_attention.w-rows", "w_kv_b " + w + " must have H * (nope + v_head_dim) = " + h + " * (" + dn + " + " + v + ") rows");
        }
        if (c.isFixed() && dr.isFixed() && row.isFixed() && row.size() != c.size() + dr.size()) {
            throw new TypeError("mla_attention.cache-row", "cache rows " + row + " must hold C + rope = " + c + " + " + dr);
        }
        requireBlockTable("mla_attention", in.get(4));
        requireTokenVector("mla_attention", in.get(5), qn.shape().dim(0));
        requireTokenVector("mla_attention", in.get(6), qn.shape().dim(0));
        return List.of(TensorType.of(DType.F32, qn.shape().dim(0), h, v));
    }

    static List<TensorType> kvWriteInt8(List<TensorType> in, Attrs a) {
        TensorType cache = in.get(0), scale = in.get(1), kv = in.get(2);
        if (cache.dtype() != DType.I8 || cache.rank() != 4) throw new TypeError("kv_write_int8.cache", "cache must be i8[NB, BS, kv_heads, head_dim], got " + cache);
        if (!scale.equals(new TensorType(DType.F32, cache.shape().dropLast()))) throw new TypeError("kv_write_int8.scale", "scale must be f32" + cache.shape().dropLast() + ", got " + scale);
        if (kv.rank() != 3 || !kv.shape().dims().subList(1, 3).equals(cache.shape().dims().subList(2, 4))) {
            throw new TypeError("kv_write_int8.kv-shape", "kv " + kv + " must be [T, " + cache.shape().dim(2) + ", " + cache.shape().dim(3) + "]");
        }
        requireF32("kv_write_int8.kv-f32", kv);
        requireBlockTable("kv_write_int8", in.get(3));
        requireTokenVector("kv_write_int8", in.get(4), kv.shape().dim(0));
        requireTokenVector("kv_write_int8", in.get(5), kv.shape().dim(0));
        return List.of(cache, scale);
    }

    static List<TensorType> fusedInferAttentionInt8(List<TensorType> in, Attrs a) {
        TensorType q = in.get(0), kc = in.get(1), ks = in.get(2), vc = in.get(3), vs = in.get(4);
        for (TensorType c : List.of(kc, vc)) if (c.dtype() != DType.I8) throw new TypeError("fused_infer_attention_int8.cache", "caches must be i8, got " + c);
        for (var pair : List.of(List.of(kc, ks), List.of(vc, vs))) {
            if (!pair.get(1).equals(new TensorType(DType.F32, pair.get(0).shape().dropLast()))) {
                throw new TypeError("fused_infer_attention_int8.scale", "scales must be f32" + pair.get(0).shape().dropLast() + ", got " + pair.get(1));
            }
        }
        return fusedInferAttention(List.of(q, kc.withDType(DType.F32), vc.withDType(DType.F32), in.get(5), in.get(6), in.get(7)), a);
    }

    static List<TensorType> fusedInferAttentionMla(List<TensorType> in, Attrs a) {
        List<TensorType> out = mlaAttention(in, a);
        requireHeads("fused_infer_attention_mla", in.get(0), a);
        if (!a.s("input_layout").equals("TND") || a.i("sparse_mode") != 3) {
            throw new TypeError("fused_infer_attention_mla.mode", "input_layout must be \"TND\" and sparse_mode 3 (causal)");
        }
        return out;
    }

    static List<TensorType> sparseFlashAttention(List<TensorType> in, Attrs a) {
        List<TensorType> out = mlaAttentionSparse(in, a);
        requireHeads("sparse_flash_attention", in.get(0), a);
        return out;
    }

    private static void requireHeads(String op, TensorType q, Attrs a) {
        if (!q.shape().dim(1).equals(Dim.of(a.i("num_heads")))) throw new TypeError(op + ".heads", "num_heads " + a.i("num_heads") + " disagrees with " + q);
    }

    static List<TensorType> weightQuant(List<TensorType> in, Attrs a) {
        TensorType w = in.get(0);
        requireFloat("weight_quant.float", w);
        long bits = a.i("bits");
        if (bits != 8 && bits != 4) throw new TypeError("weight_quant.bits", "bits must be 8 or 4, got " + bits);
        if (w.rank() < 2) throw new TypeError("weight_quant.rank", "weight must be [..., out, in], got " + w);
        return List.of(w.withDType(bits == 8 ? DType.I8 : DType.I4), new TensorType(DType.F32, w.shape().dropLast()));
    }

    static List<TensorType> mlaAttentionSparse(List<TensorType> in, Attrs a) {
        List<TensorType> out = mlaAttention(in.subList(0, 7), a);
        TensorType idx = in.get(7);
        requireInt("mla_attention_sparse.indices-int", idx);
        if (idx.rank() != 2 || !idx.shape().dim(0).equals(in.get(0).shape().dim(0))) {
            throw new TypeError("mla_attention_sparse.indices-shape", "indices must be [T, topk], got " + idx);
        }
        return out;
    }

    static List<TensorType> indexerTopk(List<TensorType> in, Attrs a) {
        TensorType q = in.get(0), kc = in.get(1), w = in.get(2);
        requireF32("indexer_topk.q-f32", q);
        if (q.rank() != 3 || kc.rank() != 4 || !kc.shape().dim(2).equals(Dim.of(1)) || !kc.shape().last().equals(q.shape().last())) {
            throw new TypeError("indexer_topk.shapes", "q must be [T, Hi, D] and k_cache [NB, BS, 1, D], got " + q + " and " + kc);
        }
        if (!w.equals(TensorType.of(DType.F32, q.shape().dim(0), q.shape().dim(1)))) {
            throw new TypeError("indexer_topk.weights-shape", "weights must be f32[" + q.shape().dim(0) + "," + q.shape().dim(1) + "], got " + w);
        }
        if (a.i("topk") < 1) throw new TypeError("indexer_topk.topk", "topk must be >= 1");
        requireBlockTable("indexer_topk", in.get(3));
        requireTokenVector("indexer_topk", in.get(4), q.shape().dim(0));
        requireTokenVector("indexer_topk", in.get(5), q.shape().dim(0));
        return List.of(TensorType.of(DType.I32, q.shape().dim(0), a.i("topk")));
    }

    static List<TensorType> hadamard(List<TensorType> in, Attrs a) {
        TensorType x = in.get(0);
        requireF32("hadamard.x-f32", x);
        Dim d = x.shape().last();
        if (!d.isFixed() || Long.bitCount(d.size()) != 1) throw new TypeError("hadamard.power-of-two", "the last dimension must be a power of two, got " + x);
        return List.of(x);
    }

    static List<TensorType> causalConv1d(List<TensorType> in, Attrs a) {
        TensorType x = in.get(0), w = in.get(1), state = in.get(2);
        requireF32("causal_conv1d.x-f32", x);
        requireFloat("causal_conv1d.weight-float", w);
        if (x.rank() != 2 || w.rank() != 2 || !w.shape().dim(0).equals(x.shape().dim(1)) || !w.shape().dim(1).isFixed()) {
            throw new TypeError("causal_conv1d.shapes", "x must be [T, C] and weight [C, K], got " + x + " and " + w);
        }
        long k = w.shape().dim(1).size();
        if (k < 2 || state.rank() != 3 || !state.shape().dim(1).equals(Dim.of(k - 1)) || !state.shape().dim(2).equals(x.shape().dim(1))) {
            throw new TypeError("causal_conv1d.state-shape", "state must be [S, " + (k - 1) + ", " + x.shape().dim(1) + "], got " + state);
        }
        requireF32("causal_conv1d.state-f32", state);
        requireTokenVector("causal_conv1d", in.get(3), x.shape().dim(0));
        requireTokenVector("causal_conv1d", in.get(4), x.shape().dim(0));
        return List.of(x, state);
    }

    static List<TensorType> gatedDeltaRule(List<TensorType> in, Attrs a) {
        TensorType q = in.get(0), k = in.get(1), v = in.get(2), g = in.get(3), beta = in.get(4), state = in.get(5);
        for (TensorType t : List.of(q, k, v, g, beta, state)) requireF32("gated_delta_rule.f32", t);
        if (q.rank() != 3 || !q.equals(k) || v.rank() != 3 || !v.shape().dims().subList(0, 2).equals(q.shape().dims().subList(0, 2))) {
            throw new TypeError("gated_delta_rule.qkv-shapes", "q and k must be [T, H, Dk] and v [T, H, Dv], got " + q + ", " + k + ", " + v);
        }
        Shape th = new Shape(q.shape().dims().subList(0, 2));
        if (!g.shape().equals(th) || !beta.shape().equals(th)) throw new TypeError("gated_delta_rule.gate-shapes", "g and beta must be " + th + ", got " + g + " and " + beta);
        if (state.rank() != 4 || !state.shape().dim(1).equals(q.shape().dim(1)) || !state.shape().dim(2).equals(q.shape().dim(2))
                || !state.shape().dim(3).equals(v.shape().dim(2))) {
            throw new TypeError("gated_delta_rule.state-shape", "state must be [S, H, Dk, Dv], got " + state);
        }
        if (a.has("chunk_size") && a.i("chunk_size") < 1) throw new TypeError("gated_delta_rule.chunk-size", "chunk_size must be >= 1");
        requireTokenVector("gated_delta_rule", in.get(6), q.shape().dim(0));
        requireTokenVector("gated_delta_rule", in.get(7), q.shape().dim(0));
        return List.of(v, state);
    }

    // ---- routing -------------------------------------------------------------------------------------

    static List<TensorType> topk(List<TensorType> in, Attrs a) {
        TensorType x = in.get(0);
        requireF32("topk.x-f32", x);
        long k = a.i("k");
        Dim n = x.shape().last();
        if (k <= 0 || (n.isFixed() && k > n.size())) throw new TypeError("topk.k-range", "k = " + k + " must be in 1.." + n);
        Shape s = x.shape().withLast(Dim.of(k));
        return List.of(new TensorType(DType.F32, s), new TensorType(DType.I32, s));
    }

    static List<TensorType> gatingSoftmax(List<TensorType> in, Attrs a) {
        requireRouterLogits("moe_gating_topk_softmax", in.get(0));
        return topk(in, a);
    }

    static List<TensorType> gatingTopk(List<TensorType> in, Attrs a) {
        TensorType x = in.get(0), bias = in.get(1);
        requireRouterLogits("moe_gating_topk", x);
        if (!bias.equals(TensorType.of(DType.F32, x.shape().last()))) {
            throw new TypeError("moe_gating_topk.bias-shape", "bias must be f32[" + x.shape().last() + "], got " + bias);
        }
        if (!List.of("softmax", "sigmoid").contains(a.s("norm_type"))) throw new TypeError("moe_gating_topk.norm-type", "norm_type must be \"softmax\" or \"sigmoid\"");
        requireGroups("moe_gating_topk", x, a.i("groups"), a.i("keep_groups"), a.s("group_select"));
        return topk(List.of(x), Attrs.of("k", a.i("k")));
    }

    static List<TensorType> groupLimit(List<TensorType> in, Attrs a) {
        TensorType x = in.get(0);
        requireRouterLogits("group_limit", x);
        requireGroups("group_limit", x, a.i("groups"), a.i("keep"), a.s("select"));
        return List.of(x);
    }

    static List<TensorType> takeAlong(List<TensorType> in, Attrs a) {
        TensorType x = in.get(0), idx = in.get(1);
        requireF32("take_along.x-f32", x);
        requireInt("take_along.index-int", idx);
        if (x.rank() != idx.rank() || !x.shape().dropLast().equals(idx.shape().dropLast())) {
            throw new TypeError("take_along.shapes", "index " + idx + " must match x " + x + " except in the last dimension");
        }
        return List.of(x.withShape(idx.shape()));
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
        for (TensorType t : List.of(gate, up, down)) requireFloat("moe_experts.weight-float", t);
        return List.of(x);
    }

    static List<TensorType> moeDispatch(List<TensorType> in, Attrs a) {
        TensorType x = in.get(0), e = in.get(1);
        requireF32("moe_dispatch.x-f32", x);
        requireInt("moe_dispatch.experts-int", e);
        if (x.rank() != 2 || e.rank() != 2 || !e.shape().dim(0).equals(x.shape().dim(0)) || !e.shape().dim(1).isFixed()) {
            throw new TypeError("moe_dispatch.shapes", "x must be [T, H] and experts [T, K] with a numeric K, got " + x + " and " + e);
        }
        long experts = a.i("num_experts");
        if (experts < 1) throw new TypeError("moe_dispatch.num-experts", "num_experts must be >= 1");
        Dim rows = Dim.times(x.shape().dim(0), e.shape().dim(1).size());
        return List.of(TensorType.of(DType.F32, rows, x.shape().dim(1)), TensorType.of(DType.I32, rows), TensorType.of(DType.I32, experts));
    }

    static List<TensorType> moeDispatchQuant(List<TensorType> in, Attrs a) {
        List<TensorType> d = moeDispatch(in, a);
        TensorType rows = d.get(0);
        return List.of(rows.withDType(DType.I8), new TensorType(DType.F32, rows.shape().dropLast()), d.get(1), d.get(2));
    }

    static List<TensorType> groupedMatmul(List<TensorType> in, Attrs a) {
        TensorType x = in.get(0), w = in.get(1), counts = in.get(2);
        requireF32("grouped_matmul.x-f32", x);
        requireFloat("grouped_matmul.weight-float", w);
        requireGroupedShapes("grouped_matmul", x, w, counts);
        return List.of(TensorType.of(DType.F32, x.shape().dim(0), w.shape().dim(1)));
    }

    static List<TensorType> groupedQuantMatmul(List<TensorType> in, Attrs a) {
        TensorType x = in.get(0), xs = in.get(1), w = in.get(2), ws = in.get(3), counts = in.get(4);
        if (x.dtype() != DType.I8) throw new TypeError("grouped_quant_matmul.x-int8", "x must be i8, got " + x);
        if (w.dtype() != DType.I8 && w.dtype() != DType.I4) throw new TypeError("grouped_quant_matmul.weight-int", "weight must be i8 or i4, got " + w);
        requireGroupedShapes("grouped_quant_matmul", x, w, counts);
        if (!xs.equals(TensorType.of(DType.F32, x.shape().dim(0)))) throw new TypeError("grouped_quant_matmul.x-scale", "x_scale must be f32[" + x.shape().dim(0) + "], got " + xs);
        if (!ws.equals(TensorType.of(DType.F32, w.shape().dim(0), w.shape().dim(1)))) {
            throw new TypeError("grouped_quant_matmul.w-scale", "w_scale must be f32[" + w.shape().dim(0) + "," + w.shape().dim(1) + "], got " + ws);
        }
        return List.of(TensorType.of(DType.F32, x.shape().dim(0), w.shape().dim(1)));
    }

    static List<TensorType> swiglu(List<TensorType> in, Attrs a) {
        TensorType x = in.get(0);
        requireF32("swiglu.x-f32", x);
        Dim d = x.shape().last();
        if (!d.isFixed() || d.size() % 2 != 0) throw new TypeError("swiglu.even", "the last dimension must be an even number, got " + x);
        return List.of(x.withShape(x.shape().withLast(Dim.of(d.size() / 2))));
    }

    static List<TensorType> swigluQuant(List<TensorType> in, Attrs a) {
        return dynamicQuant(swiglu(in, a), a);
    }

    static List<TensorType> moeCombine(List<TensorType> in, Attrs a) {
        TensorType y = in.get(0), rows = in.get(1), w = in.get(2);
        requireF32("moe_combine.y-f32", y);
        requireInt("moe_combine.rows-int", rows);
        if (w.rank() != 2 || !w.shape().dim(1).isFixed() || y.rank() != 2) {
            throw new TypeError("moe_combine.shapes", "y must be [T*K, H] and weights [T, K], got " + y + " and " + w);
        }
        Dim m = Dim.times(w.shape().dim(0), w.shape().dim(1).size());
        if (!y.shape().dim(0).equals(m) || !rows.equals(TensorType.of(DType.I32, m))) {
            throw new TypeError("moe_combine.rows", "y and rows must have " + m + " rows for weights " + w + ", got " + y + " and " + rows);
        }
        return List.of(TensorType.of(DType.F32, w.shape().dim(0), y.shape().dim(1)));
    }

    // ---- quantization, fused norms --------------------------------------------------------------------

    static List<TensorType> addRmsNorm(List<TensorType> in, Attrs a) {
        TensorType x = in.get(0), r = in.get(1);
        requireF32("add_rms_norm.x-f32", x);
        if (!x.equals(r)) throw new TypeError("add_rms_norm.same-type", "x and residual differ: " + x + " vs " + r);
        requireNormWeight("add_rms_norm.weight-shape", x, in.get(2));
        return List.of(x, x);
    }

    static List<TensorType> dynamicQuant(List<TensorType> in, Attrs a) {
        TensorType x = in.get(0);
        requireF32("dynamic_quant.x-f32", x);
        if (x.rank() < 1) throw new TypeError("dynamic_quant.rank", "x needs a last dimension");
        return List.of(x.withDType(DType.I8), new TensorType(DType.F32, x.shape().dropLast()));
    }

    static List<TensorType> addRmsNormDynamicQuant(List<TensorType> in, Attrs a) {
        TensorType x = addRmsNorm(in, a).getFirst();
        return List.of(x.withDType(DType.I8), x, new TensorType(DType.F32, x.shape().dropLast()));
    }

    static List<TensorType> quantMatmul(List<TensorType> in, Attrs a) {
        TensorType x = in.get(0), xs = in.get(1), w = in.get(2), ws = in.get(3);
        if (x.dtype() != DType.I8 || w.dtype() != DType.I8) throw new TypeError("quant_matmul.int8", "x and weight must be i8, got " + x + " and " + w);
        if (w.rank() != 2 || !w.shape().dim(1).equals(x.shape().last())) throw new TypeError("quant_matmul.contraction", "x " + x + " and weight " + w + " disagree on K");
        if (!xs.equals(new TensorType(DType.F32, x.shape().dropLast()))) throw new TypeError("quant_matmul.x-scale", "x_scale must be f32" + x.shape().dropLast() + ", got " + xs);
        if (!ws.equals(TensorType.of(DType.F32, w.shape().dim(0)))) throw new TypeError("quant_matmul.w-scale", "w_scale must be f32[" + w.shape().dim(0) + "], got " + ws);
        return List.of(new TensorType(DType.F32, x.shape().withLast(w.shape().dim(0))));
    }

    static List<TensorType> staticQuant(List<TensorType> in, Attrs a) {
        TensorType x = in.get(0);
        requireF32("static_quant.x-f32", x);
        TensorType one = TensorType.of(DType.F32, 1);
        if (!in.get(1).equals(one) || !in.get(2).equals(one)) throw new TypeError("static_quant.per-tensor", "scale and offset must be f32[1], got " + in.get(1) + " and " + in.get(2));
        return List.of(x.withDType(DType.I8));
    }

    static List<TensorType> quantMatmulStatic(List<TensorType> in, Attrs a) {
        TensorType x = in.get(0), w = in.get(1), bias = in.get(2), deq = in.get(3);
        if (x.dtype() != DType.I8 || w.dtype() != DType.I8) throw new TypeError("quant_matmul_static.int8", "x and weight must be i8, got " + x + " and " + w);
        if (w.rank() != 2 || !w.shape().dim(1).equals(x.shape().last())) throw new TypeError("quant_matmul_static.contraction", "x " + x + " and weight " + w + " disagree on K");
        if (!bias.equals(TensorType.of(DType.I32, w.shape().dim(0))) || !deq.equals(TensorType.of(DType.F32, w.shape().dim(0)))) {
            throw new TypeError("quant_matmul_static.per-channel", "quant_bias must be i32[N] and deq_scale f32[N] for weight " + w + ", got " + bias + " and " + deq);
        }
        return List.of(new TensorType(DType.F32, x.shape().withLast(w.shape().dim(0))));
    }

    static List<TensorType> moeExpertsQuant(List<TensorType> in, Attrs a) {
        TensorType x = in.get(0), w = in.get(1), e = in.get(2);
        TensorType gate = in.get(3), sg = in.get(4), up = in.get(5), su = in.get(6), down = in.get(7), sd = in.get(8);
        requireF32("moe_experts_quant.x-f32", x);
        requireInt("moe_experts_quant.experts-int", e);
        if (x.rank() != 2 || w.rank() != 2 || !w.shape().equals(e.shape()) || !w.shape().dim(0).equals(x.shape().dim(0))) {
            throw new TypeError("moe_experts_quant.routing-shape", "x must be [T,H] and weights/experts [T,K]: " + x + ", " + w + ", " + e);
        }
        for (TensorType q : List.of(gate, up, down)) {
            if (q.dtype() != DType.I8 && q.dtype() != DType.I4) throw new TypeError("moe_experts_quant.weight-int", "expert weights must be i8 or i4, got " + q);
        }
        if (gate.rank() != 3 || !gate.shape().equals(up.shape()) || !gate.shape().dim(2).equals(x.shape().dim(1))) {
            throw new TypeError("moe_experts_quant.gate-up-shape", "w_gate and w_up must be [E, I, " + x.shape().dim(1) + "]: " + gate + ", " + up);
        }
        Shape want = Shape.of(gate.shape().dim(0), x.shape().dim(1), gate.shape().dim(1));
        if (!down.shape().equals(want)) throw new TypeError("moe_experts_quant.down-shape", "w_down must be " + want + ", got " + down);
        for (var pair : List.of(List.of(gate, sg), List.of(up, su), List.of(down, sd))) {
            TensorType scale = pair.get(1), wt = pair.get(0);
            if (!scale.equals(TensorType.of(DType.F32, wt.shape().dim(0), wt.shape().dim(1)))) {
                throw new TypeError("moe_experts_quant.scale-shape", "scales must be f32[E, out] for " + wt + ", got " + scale);
            }
        }
        return List.of(x);
    }

    // ---- elementwise ---------------------------------------------------------------------------------

    static List<TensorType> floatUnary(List<TensorType> in, Attrs a) {
        requireF32("unary.f32", in.getFirst());
        return List.of(in.getFirst());
    }

    /** Numpy broadcasting from the right: each pair of dims equal, or one of them 1. */
    static List<TensorType> broadcast(List<TensorType> in, Attrs a) {
        TensorType x = in.get(0), y = in.get(1);
        requireF32("broadcast.f32", x);
        requireF32("broadcast.f32", y);
        int rank = Math.max(x.rank(), y.rank());
        List<Dim> out = new ArrayList<>();
        Dim one = Dim.of(1);
        for (int i = 0; i < rank; i++) {
            Dim p = i < rank - x.rank() ? one : x.shape().dim(i - (rank - x.rank()));
            Dim q = i < rank - y.rank() ? one : y.shape().dim(i - (rank - y.rank()));
            if (p.equals(q) || q.equals(one)) out.add(p);
            else if (p.equals(one)) out.add(q);
            else throw new TypeError("broadcast.shapes", x + " and " + y + " do not broadcast");
        }
        return List.of(TensorType.of(DType.F32, out.toArray()));
    }

    // ---- shared checks -------------------------------------------------------------------------------

    private static int axis(String op, TensorType x, long axis) {
        long a = axis < 0 ? axis + x.rank() : axis;
        if (a < 0 || a >= x.rank()) throw new TypeError(op + ".axis", "axis " + axis + " is outside " + x);
        return (int) a;
    }

    private static void requireNormWeight(String rule, TensorType x, TensorType w) {
        if (w.rank() != 1 || !w.shape().dim(0).equals(x.shape().last())) {
            throw new TypeError(rule, "weight must be [" + x.shape().last() + "] for x " + x + ", got " + w);
        }
    }

    private static void requireRotaryDim(String op, Attrs a, Dim headDim) {
        long rd = a.i("rotary_dim");
        if (rd <= 0 || rd % 2 != 0 || (headDim != null && headDim.isFixed() && rd > headDim.size())) {
            throw new TypeError(op + ".rotary-dim", "rotary_dim " + rd + " must be even and within head_dim " + headDim);
        }
    }

    private static void requireYarn(String op, Attrs a) {
        boolean any = a.has("yarn_factor") || a.has("yarn_original_max") || a.has("yarn_beta_fast") || a.has("yarn_beta_slow");
        boolean all = a.has("yarn_factor") && a.has("yarn_original_max") && a.has("yarn_beta_fast") && a.has("yarn_beta_slow");
        if (any && !all) throw new TypeError(op + ".yarn", "YaRN needs yarn_factor, yarn_original_max, yarn_beta_fast and yarn_beta_slow together");
    }

    private static void requireRouterLogits(String op, TensorType x) {
        requireF32(op + ".x-f32", x);
        if (x.rank() != 2 || !x.shape().last().isFixed()) throw new TypeError(op + ".x-shape", "router logits must be [T, E] with a numeric E, got " + x);
    }

    private static void requireGroups(String op, TensorType x, long groups, long keep, String select) {
        long e = x.shape().last().size();
        if (groups < 1 || e % groups != 0 || keep < 1 || keep > groups) {
            throw new TypeError(op + ".groups", groups + " groups keeping " + keep + " do not divide " + e + " experts");
        }
        if (!select.equals("max") && !select.equals("top2_sum")) throw new TypeError(op + ".select", "group selection must be \"max\" or \"top2_sum\", got \"" + select + "\"");
    }

    private static void requireGroupedShapes(String op, TensorType x, TensorType w, TensorType counts) {
        if (x.rank() != 2 || w.rank() != 3 || !w.shape().dim(2).equals(x.shape().dim(1))) {
            throw new TypeError(op + ".shapes", "x must be [M, K] and weight [E, N, K], got " + x + " and " + w);
        }
        if (!counts.equals(TensorType.of(DType.I32, w.shape().dim(0)))) throw new TypeError(op + ".counts", "counts must be i32[" + w.shape().dim(0) + "], got " + counts);
    }

    /** A float KV cache is f32, or bf16 (the write rounds to it); int8 caches have their own ops. */
    private static void requireCacheDtype(String op, TensorType cache) {
        if (cache.dtype() != DType.F32 && cache.dtype() != DType.BF16) throw new TypeError(op + ".cache-dtype", "cache must be f32 or bf16, got " + cache);
    }

    /** A paged cache's block table: i32[slots, blocks per sequence]. */
    private static void requireBlockTable(String op, TensorType t) {
        requireInt(op + ".block-table-int", t);
        if (t.rank() != 2) throw new TypeError(op + ".block-table", "block_table must be i32[S, MB], got " + t);
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
