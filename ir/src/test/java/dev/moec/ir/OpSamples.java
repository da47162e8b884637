package dev.moec.ir;

import java.util.List;
import java.util.Random;

/**
 * A well-typed instance of every op, with random sizes: the operand types and attributes. The switch is
 * exhaustive over {@link Op}, so a new op does not compile until it has a sample here.
 */
final class OpSamples {
    private OpSamples() {}

    record Sample(List<TensorType> operands, Attrs attrs) {}

    static Sample sample(Op op, Random r) {
        Object t = r.nextBoolean() ? "T" : 1 + r.nextInt(3);                      // tokens: symbolic or fixed
        int h = 1 + r.nextInt(3), kvh = 1 + r.nextInt(2), heads = h * kvh, d = 2 * (1 + r.nextInt(4)), n = 1 + r.nextInt(5);
        int e = 2 * (1 + r.nextInt(3)), k = 1 + r.nextInt(e);
        DType w = r.nextBoolean() ? DType.BF16 : DType.F32;
        TensorType tok = TensorType.of(DType.I32, t), x2 = TensorType.of(DType.F32, t, d), x3 = TensorType.of(DType.F32, t, heads, d);
        TensorType cache = TensorType.of(r.nextBoolean() ? DType.F32 : DType.BF16, "NB", "BS", kvh, d), bt = TensorType.of(DType.I32, "S", "MB");
        return switch (op) {
            case GATHER -> s(List.of(TensorType.of(w, n + 3, d), tok));
            case RMS_NORM -> s(List.of(x3, TensorType.of(w, d)), r.nextBoolean() ? Attrs.of("eps", 1e-6) : Attrs.of("eps", 1e-5, "weight_offset", 1.0));
            case LAYER_NORM -> s(List.of(x2, TensorType.of(w, d), TensorType.of(w, d)), Attrs.of("eps", 1e-6));
            case L2_NORM -> s(List.of(x3), Attrs.of("eps", 1e-6));
            case MATMUL -> s(List.of(x2, TensorType.of(w, n, d)));
            case HEAD_MATMUL -> s(List.of(x3, TensorType.of(w, heads, n, d)));
            case RESHAPE -> s(List.of(x3), Attrs.of("shape", Shape.of(t, heads * d)));
            case CAST -> s(List.of(TensorType.of(w, n, d)), Attrs.of("dtype", r.nextBoolean() ? "f32" : "f16"));
            case SLICE -> s(List.of(x3), Attrs.of("axis", -1L, "start", 0L, "end", (long) (d / 2)));
            case CONCAT -> s(List.of(x3, TensorType.of(DType.F32, t, heads, n)), Attrs.of("axis", 2L));
            case REPEAT -> s(List.of(x3), Attrs.of("axis", 1L, "times", 2L));
            case ROPE -> s(List.of(x3, tok), rope(r, d));
            case ROPE_COS_SIN -> s(List.of(tok), rope(r, d));
            case APPLY_ROTARY -> s(List.of(x3, TensorType.of(DType.F32, t, d / 2), TensorType.of(DType.F32, t, d / 2)),
                    r.nextBoolean() ? Attrs.of("rotary_dim", (long) d) : Attrs.of("rotary_dim", (long) d, "interleaved", true));
            case KV_WRITE -> s(List.of(cache, TensorType.of(DType.F32, t, kvh, d), bt, tok, tok));
            case KV_WRITE_INT8 -> s(List.of(cache.withDType(DType.I8), TensorType.of(DType.F32, "NB", "BS", kvh), TensorType.of(DType.F32, t, kvh, d), bt, tok, tok));
            case FUSED_INFER_ATTENTION_INT8 -> s(List.of(x3, cache.withDType(DType.I8), TensorType.of(DType.F32, "NB", "BS", kvh), cache.withDType(DType.I8),
                    TensorType.of(DType.F32, "NB", "BS", kvh), bt, tok, tok), Attrs.of("num_heads", (long) heads, "num_kv_heads", (long) kvh,
                    "scale", 0.5, "sparse_mode", 3L, "input_layout", "TND"));
            case ATTENTION -> s(List.of(x3, cache, cache, bt, tok, tok), Attrs.of("scale", 0.5));
            case FUSED_INFER_ATTENTION -> s(List.of(x3, cache, cache, bt, tok, tok), Attrs.of("num_heads", (long) heads, "num_kv_heads", (long) kvh,
                    "scale", 0.5, "sparse_mode", 3L, "input_layout", "TND"));
            case MLA_ATTENTION, MLA_ATTENTION_SPARSE -> {
                int c = 4, dr = 2, v = 3;
                List<TensorType> ops = List.of(TensorType.of(DType.F32, t, heads, d), TensorType.of(DType.F32, t, heads, dr),
                        TensorType.of(DType.F32, "NB", "BS", 1, c + dr), TensorType.of(w, heads * (d + v), c), bt, tok, tok);
                if (op == Op.MLA_ATTENTION_SPARSE) ops = concat(ops, TensorType.of(DType.I32, t, k));
                yield s(ops, Attrs.of("scale", 0.25, "v_head_dim", (long) v));
            }
            case FUSED_INFER_ATTENTION_MLA, SPARSE_FLASH_ATTENTION -> {
                int c = 4, dr = 2, v = 3;
                List<TensorType> ops = List.of(TensorType.of(DType.F32, t, heads, d), TensorType.of(DType.F32, t, heads, dr),
                        TensorType.of(DType.F32, "NB", "BS", 1, c + dr), TensorType.of(w, heads * (d + v), c), bt, tok, tok);
                if (op == Op.SPARSE_FLASH_ATTENTION) {
                    yield s(concat(ops, TensorType.of(DType.I32, t, k)), Attrs.of("num_heads", (long) heads, "scale", 0.25, "v_head_dim", (long) v));
                }
                yield s(ops, Attrs.of("num_heads", (long) heads, "scale", 0.25, "v_head_dim", (long) v, "sparse_mode", 3L, "input_layout", "TND"));
            }
            case WEIGHT_QUANT -> s(List.of(TensorType.of(w, e, n, d)), Attrs.of("bits", r.nextBoolean() ? 8L : 4L));
            case INDEXER_TOPK -> s(List.of(x3, TensorType.of(DType.F32, "NB", "BS", 1, d), TensorType.of(DType.F32, t, heads), bt, tok, tok),
                    Attrs.of("topk", (long) k, "scale", 0.125));
            case HADAMARD -> s(List.of(TensorType.of(DType.F32, t, 1 << (1 + r.nextInt(3)))), Attrs.of("scale", 0.5));
            case CAUSAL_CONV1D -> s(List.of(x2, TensorType.of(w, d, 4), TensorType.of(DType.F32, "S", 3, d), tok, tok));
            case GATED_DELTA_RULE -> s(List.of(x3, x3, TensorType.of(DType.F32, t, heads, n), TensorType.of(DType.F32, t, heads),
                    TensorType.of(DType.F32, t, heads), TensorType.of(DType.F32, "S", heads, d, n), tok, tok),
                    r.nextBoolean() ? Attrs.NONE : Attrs.of("chunk_size", (long) (1 + r.nextInt(64))));
            case SOFTMAX, RENORM, SILU, SIGMOID, SOFTPLUS, EXP, NEG, RELU -> s(List.of(x3));
            case SCALE -> s(List.of(x3), Attrs.of("factor", 2.5));
            case TOPK -> s(List.of(TensorType.of(DType.F32, t, e)), Attrs.of("k", (long) k));
            case GROUP_LIMIT -> s(List.of(TensorType.of(DType.F32, t, e)), Attrs.of("groups", 2L, "keep", 1L, "select", r.nextBoolean() ? "max" : "top2_sum"));
            case TAKE_ALONG -> s(List.of(TensorType.of(DType.F32, t, e), TensorType.of(DType.I32, t, k)));
            case MOE_EXPERTS -> s(List.of(x2, TensorType.of(DType.F32, t, k), TensorType.of(DType.I32, t, k),
                    TensorType.of(w, e, n, d), TensorType.of(w, e, n, d), TensorType.of(w, e, d, n)));
            case ADD, SUB, MUL, DIV -> s(List.of(x3, r.nextBoolean() ? x3 : TensorType.of(DType.F32, d)));
            case ADD_RMS_NORM, ADD_RMS_NORM_DYNAMIC_QUANT -> s(List.of(x2, x2, TensorType.of(w, d)), Attrs.of("eps", 1e-6));
            case DYNAMIC_QUANT -> s(List.of(x2));
            case QUANT_MATMUL -> s(List.of(TensorType.of(DType.I8, t, d), TensorType.of(DType.F32, t), TensorType.of(DType.I8, n, d), TensorType.of(DType.F32, n)));
            case MOE_GATING_TOPK_SOFTMAX -> s(List.of(TensorType.of(DType.F32, t, e)), Attrs.of("k", (long) k, "renorm", r.nextBoolean()));
            case MOE_GATING_TOPK -> s(List.of(TensorType.of(DType.F32, t, e), TensorType.of(DType.F32, e)), Attrs.of("k", (long) k, "groups", 2L,
                    "keep_groups", 1L, "group_select", "top2_sum", "norm_type", r.nextBoolean() ? "sigmoid" : "softmax", "renorm", true,
                    "routed_scaling", 2.5, "eps", 1e-20));
            case MOE_DISPATCH, MOE_DISPATCH_QUANT -> s(List.of(x2, TensorType.of(DType.I32, t, k)), Attrs.of("num_experts", (long) e));
            case GROUPED_MATMUL -> s(List.of(TensorType.of(DType.F32, Dim.times(Dim.parse(t.toString()), k), d), TensorType.of(w, e, n, d), TensorType.of(DType.I32, e)));
            case GROUPED_QUANT_MATMUL -> {
                Dim m = Dim.times(Dim.parse(t.toString()), k);
                yield s(List.of(TensorType.of(DType.I8, m, d), TensorType.of(DType.F32, m), TensorType.of(r.nextBoolean() ? DType.I8 : DType.I4, e, n, d),
                        TensorType.of(DType.F32, e, n), TensorType.of(DType.I32, e)));
            }
            case SWIGLU, SWIGLU_QUANT -> s(List.of(x2));
            case STATIC_QUANT -> s(List.of(x2, TensorType.of(DType.F32, 1), TensorType.of(DType.F32, 1)));
            case QUANT_MATMUL_STATIC -> s(List.of(TensorType.of(DType.I8, t, d), TensorType.of(DType.I8, n, d), TensorType.of(DType.I32, n), TensorType.of(DType.F32, n)));
            case MOE_EXPERTS_QUANT -> {
                DType q = r.nextBoolean() ? DType.I8 : DType.I4;
                yield s(List.of(x2, TensorType.of(DType.F32, t, k), TensorType.of(DType.I32, t, k), TensorType.of(q, e, n, d), TensorType.of(DType.F32, e, n),
                        TensorType.of(q, e, n, d), TensorType.of(DType.F32, e, n), TensorType.of(q, e, d, n), TensorType.of(DType.F32, e, d)));
            }
            case MOE_COMBINE -> {
                Dim m = Dim.times(Dim.parse(t.toString()), k);
                yield s(List.of(TensorType.of(DType.F32, m, d), TensorType.of(DType.I32, m), TensorType.of(DType.F32, t, k)));
            }
        };
    }

    private static Attrs rope(Random r, int d) {
        return switch (r.nextInt(3)) {
            case 0 -> Attrs.of("theta", 10000.0, "rotary_dim", (long) d);
            case 1 -> Attrs.of("theta", 1000000.0, "rotary_dim", (long) (2 * Math.max(1, d / 4)), "interleaved", true);
            default -> Attrs.of("theta", 10000.0, "rotary_dim", (long) d, "interleaved", true, "yarn_factor", 40.0,
                    "yarn_original_max", 4096L, "yarn_beta_fast", 32.0, "yarn_beta_slow", 1.0);
        };
    }

    private static Sample s(List<TensorType> operands) { return new Sample(operands, Attrs.NONE); }
    private static Sample s(List<TensorType> operands, Attrs attrs) { return new Sample(operands, attrs); }

    private static List<TensorType> concat(List<TensorType> a, TensorType b) {
        List<TensorType> out = new java.util.ArrayList<>(a);
        out.add(b);
        return out;
    }
}
