package dev.moec.ir;

import dev.moec.ir.interp.Reference;
import dev.moec.ir.interp.Semantics;

import java.util.List;

import static dev.moec.ir.AttrSpec.Kind.BOOL;
import static dev.moec.ir.AttrSpec.Kind.FLOAT;
import static dev.moec.ir.AttrSpec.Kind.INT;
import static dev.moec.ir.AttrSpec.Kind.SHAPE;
import static dev.moec.ir.AttrSpec.Kind.STRING;
import static dev.moec.ir.AttrSpec.opt;
import static dev.moec.ir.AttrSpec.req;

/**
 * The op table: the one place that defines every IR op. Each entry declares its printed name, operands,
 * attributes, number of results, type rule ({@link TypeRules}), reference semantics ({@link Reference}),
 * a one-line example in the printed syntax, and a summary. Printer, verifier, interpreter and
 * {@code moec ir ops} all read this table.
 *
 * <p>Activations are f32 on the reference path; weights keep their checkpoint dtype and are widened
 * as they are read. Linear weights use the Hugging Face layout {@code [out, in]}.
 */
public enum Op {
    /** {@code %x = gather(%embed, %tokens) : f32[T,256]} */
    GATHER("gather", Level.CORE, List.of("table", "index"), List.of(), 1, TypeRules::gather, Reference::gather,
            "%x = gather(%embed, %tokens) : f32[T,256]",
            "Rows of table[N, ...] picked by integer index[...]: the embedding lookup, and picking logit rows."),

    /** {@code %h = rms_norm(%x, %w) {eps = 1.0E-6} : f32[T,256]} */
    RMS_NORM("rms_norm", Level.CORE, List.of("x", "weight"), List.of(req("eps", FLOAT), opt("weight_offset", FLOAT)), 1, TypeRules::rmsNorm, Reference::rmsNorm,
            "%h = rms_norm(%x, %w) {eps = 1.0E-6} : f32[T,256]",
            "x / sqrt(mean(x^2, last) + eps) * (weight + weight_offset); weight_offset 1 is the zero-centred (1 + w) norm."),

    /** {@code %h = layer_norm(%x, %w, %b) {eps = 1.0E-6} : f32[T,128]} */
    LAYER_NORM("layer_norm", Level.CORE, List.of("x", "weight", "bias"), List.of(req("eps", FLOAT)), 1, TypeRules::layerNorm, Reference::layerNorm,
            "%h = layer_norm(%x, %w, %b) {eps = 1.0E-6} : f32[T,128]",
            "(x - mean) / sqrt(var + eps) * weight + bias over the last dimension (the V3.2 indexer's key norm)."),

    /** {@code %q = l2_norm(%x) {eps = 1.0E-6} : f32[T,32,128]} */
    L2_NORM("l2_norm", Level.CORE, List.of("x"), List.of(req("eps", FLOAT)), 1, TypeRules::floatUnary, Reference::l2Norm,
            "%q = l2_norm(%x) {eps = 1.0E-6} : f32[T,32,128]",
            "x / sqrt(sum(x^2, last) + eps): the gated delta net's query and key normalization."),

    /** {@code %q = matmul(%h, %wq) : f32[T,512]} */
    MATMUL("matmul", Level.CORE, List.of("x", "weight"), List.of(), 1, TypeRules::matmul, Reference::matmul,
            "%q = matmul(%h, %wq) : f32[T,512]",
            "x[..., K] times weight[N, K] transposed (the Hugging Face Linear layout): result [..., N]."),

    /** {@code %y = head_matmul(%x, %w) : f32[T,4,512]} */
    HEAD_MATMUL("head_matmul", Level.CORE, List.of("x", "weight"), List.of(), 1, TypeRules::headMatmul, Reference::headMatmul,
            "%y = head_matmul(%x, %w) : f32[T,4,512]",
            "Per-head linear: y[t, h] = weight[h] @ x[t, h], x [T, H, K], weight [H, N, K] (absorbed MLA projections)."),

    /** {@code %qh = reshape(%q) {shape = [T,4,128]} : f32[T,4,128]} */
    RESHAPE("reshape", Level.CORE, List.of("x"), List.of(req("shape", SHAPE)), 1, TypeRules::reshape, Reference::reshape,
            "%qh = reshape(%q) {shape = [T,4,128]} : f32[T,4,128]",
            "The same elements in row-major order under a new shape."),

    /** {@code %a = cast(%alog) {dtype = "f32"} : f32[32]} */
    CAST("cast", Level.CORE, List.of("x"), List.of(req("dtype", STRING)), 1, TypeRules::cast, Reference::cast,
            "%a = cast(%alog) {dtype = \"f32\"} : f32[32]",
            "The values of a floating-point tensor in another floating-point dtype, rounded to nearest even."),

    /** {@code %pe = slice(%q) {axis = 2, end = 192, start = 128} : f32[T,4,64]} */
    SLICE("slice", Level.CORE, List.of("x"), List.of(req("axis", INT), req("start", INT), req("end", INT)), 1, TypeRules::slice, Reference::slice,
            "%pe = slice(%q) {axis = 2, end = 192, start = 128} : f32[T,4,64]",
            "x[..., start:end, ...] along axis (negative axes count from the end)."),

    /** {@code %k = concat(%kn, %kp) {axis = 2} : f32[T,4,192]} */
    CONCAT("concat", Level.CORE, List.of("a", "b"), List.of(req("axis", INT)), 1, TypeRules::concat, Reference::concat,
            "%k = concat(%kn, %kp) {axis = 2} : f32[T,4,192]",
            "a and b joined along axis; the other dimensions must agree."),

    /** {@code %kr = repeat(%k) {axis = 1, times = 2} : f32[T,32,128]} */
    REPEAT("repeat", Level.CORE, List.of("x"), List.of(req("axis", INT), req("times", INT)), 1, TypeRules::repeat, Reference::repeat,
            "%kr = repeat(%k) {axis = 1, times = 2} : f32[T,32,128]",
            "Each element repeated times in place along axis (repeat_interleave): head j of the result is head j / times."),

    /** {@code %qr = rope(%qh, %positions) {rotary_dim = 128, theta = 1000000.0} : f32[T,4,128]} */
    ROPE("rope", Level.CORE, List.of("x", "positions"), List.of(req("theta", FLOAT), req("rotary_dim", INT), opt("interleaved", BOOL), opt("yarn_factor", FLOAT), opt("yarn_original_max", INT), opt("yarn_beta_fast", FLOAT), opt("yarn_beta_slow", FLOAT)), 1, TypeRules::rope, Reference::rope,
            "%qr = rope(%qh, %positions) {rotary_dim = 128, theta = 1000000.0} : f32[T,4,128]",
            "Rotary embedding of the first rotary_dim dims of each head: NeoX pairs (i, i + rotary_dim/2), or adjacent pairs when interleaved; YaRN frequency blending when yarn_factor is set."),

    /** {@code %kc1 = kv_write(%kc, %k, %block_table, %slots, %positions) : f32[NB,BS,2,128]} */
    KV_WRITE("kv_write", Level.CORE, List.of("cache", "kv", "block_table", "slots", "positions"), List.of(), 1, TypeRules::kvWrite, Reference::kvWrite,
            "%kc1 = kv_write(%kc, %k, %block_table, %slots, %positions) : f32[NB,BS,2,128]",
            "New cache version: kv[t] is written at position positions[t] of slot slots[t] in the paged cache, i.e. cache[block_table[s, p / BS], p % BS] (slot < 0: padding, skipped); a bf16 cache stores kv rounded to bf16 (ties to even)."),

    /** {@code %a = attention(%qr, %kc1, %vc1, %block_table, %slots, %positions) {scale = 0.08838834764831845} : f32[T,4,128]} */
    ATTENTION("attention", Level.CORE, List.of("q", "k_cache", "v_cache", "block_table", "slots", "positions"), List.of(req("scale", FLOAT)), 1, TypeRules::attention, Reference::attention,
            "%a = attention(%qr, %kc1, %vc1, %block_table, %slots, %positions) {scale = 0.08838834764831845} : f32[T,4,128]",
            "Causal GQA: token t attends to positions 0..positions[t] of slot slots[t], found through block_table; query head h reads KV head h/(H/KVH)."),

    /** {@code %a = mla_attention(%qn, %qp, %ckv, %wkvb, %block_table, %slots, %positions) {scale = 0.1, v_head_dim = 32} : f32[T,4,32]} */
    MLA_ATTENTION("mla_attention", Level.CORE, List.of("q_nope", "q_pe", "cache", "w_kv_b", "block_table", "slots", "positions"), List.of(req("scale", FLOAT), req("v_head_dim", INT)), 1, TypeRules::mlaAttention, Reference::mlaAttention,
            "%a = mla_attention(%qn, %qp, %ckv, %wkvb, %block_table, %slots, %positions) {scale = 0.1, v_head_dim = 32} : f32[T,4,32]",
            "Multi-head latent attention over a cache of [c_kv | k_pe] rows: keys W_k c_kv joined with the shared k_pe, values W_v c_kv, where w_kv_b is [H * (nope + v), C]."),

    /** {@code %a = mla_attention_sparse(%qn, %qp, %ckv, %wkvb, %block_table, %slots, %positions, %sel) {scale = 0.1, v_head_dim = 32} : f32[T,4,32]} */
    MLA_ATTENTION_SPARSE("mla_attention_sparse", Level.CORE, List.of("q_nope", "q_pe", "cache", "w_kv_b", "block_table", "slots", "positions", "indices"), List.of(req("scale", FLOAT), req("v_head_dim", INT)), 1, TypeRules::mlaAttentionSparse, Reference::mlaAttentionSparse,
            "%a = mla_attention_sparse(%qn, %qp, %ckv, %wkvb, %block_table, %slots, %positions, %sel) {scale = 0.1, v_head_dim = 32} : f32[T,4,32]",
            "mla_attention restricted to the cache positions listed in indices[t] (entries < 0 ignored): DeepSeek-V3.2 sparse attention."),

    /** {@code %sel = indexer_topk(%qi, %kic, %iw, %block_table, %slots, %positions) {scale = 0.08838834764831845, topk = 8} : i32[T,8]} */
    INDEXER_TOPK("indexer_topk", Level.CORE, List.of("q", "k_cache", "weights", "block_table", "slots", "positions"), List.of(req("topk", INT), req("scale", FLOAT)), 1, TypeRules::indexerTopk, Reference::indexerTopk,
            "%sel = indexer_topk(%qi, %kic, %iw, %block_table, %slots, %positions) {scale = 0.08838834764831845, topk = 8} : i32[T,8]",
            "Lightning indexer: score[s] = scale * sum_h weights[t,h] * relu(q[t,h] . k[s]) over s <= positions[t]; the topk best positions, -1 padded."),

    /** {@code %qh = hadamard(%q) {scale = 0.08838834764831845} : f32[T,4,128]} */
    HADAMARD("hadamard", Level.CORE, List.of("x"), List.of(req("scale", FLOAT)), 1, TypeRules::hadamard, Reference::hadamard,
            "%qh = hadamard(%q) {scale = 0.08838834764831845} : f32[T,4,128]",
            "scale * H x over the last dimension (a power of two), H the Sylvester Hadamard matrix."),

    /** {@code %y, %cs1 = causal_conv1d(%x, %w, %cs, %slots, %positions) : f32[T,64], f32[S,3,64]} */
    CAUSAL_CONV1D("causal_conv1d", Level.CORE, List.of("x", "weight", "state", "slots", "positions"), List.of(), 2, TypeRules::causalConv1d, Reference::causalConv1d,
            "%y, %cs1 = causal_conv1d(%x, %w, %cs, %slots, %positions) : f32[T,64], f32[S,3,64]",
            "Depthwise causal convolution over each sequence's time axis, weight [C, K]; state holds each slot's last K-1 inputs (reset at position 0)."),

    /** {@code %o, %st1 = gated_delta_rule(%q, %k, %v, %g, %b, %st, %slots, %positions) : f32[T,4,16], f32[S,4,16,16]} */
    GATED_DELTA_RULE("gated_delta_rule", Level.CORE, List.of("q", "k", "v", "g", "beta", "state", "slots", "positions"), List.of(opt("chunk_size", INT)), 2, TypeRules::gatedDeltaRule, Reference::gatedDeltaRule,
            "%o, %st1 = gated_delta_rule(%q, %k, %v, %g, %b, %st, %slots, %positions) : f32[T,4,16], f32[S,4,16,16]",
            "Per token: S = S*exp(g); S += k (x) ((v - S^T k) * beta); o = S^T q, with one state [Dk, Dv] per slot and head (reset at position 0); chunk_size computes the same in the chunked (WY) form."),

    /** {@code %p = softmax(%r) : f32[T,8]} */
    SOFTMAX("softmax", Level.CORE, List.of("x"), List.of(), 1, TypeRules::floatUnary, Reference::softmax,
            "%p = softmax(%r) : f32[T,8]",
            "exp(x - max) / sum, over the last dimension."),

    /** {@code %w, %e = topk(%p) {k = 2} : f32[T,2], i32[T,2]} */
    TOPK("topk", Level.CORE, List.of("x"), List.of(req("k", INT)), 2, TypeRules::topk, Reference::topk,
            "%w, %e = topk(%p) {k = 2} : f32[T,2], i32[T,2]",
            "The k largest values of the last dimension, descending (ties: lower index first), and their indices."),

    /** {@code %wn = renorm(%w) : f32[T,2]} */
    RENORM("renorm", Level.CORE, List.of("x"), List.of(), 1, TypeRules::floatUnary, Reference::renorm,
            "%wn = renorm(%w) : f32[T,2]",
            "x / sum(x) over the last dimension: the router's norm_topk_prob."),

    /** {@code %m = group_limit(%s) {groups = 4, keep = 2, select = "top2_sum"} : f32[T,16]} */
    GROUP_LIMIT("group_limit", Level.CORE, List.of("x"), List.of(req("groups", INT), req("keep", INT), req("select", STRING)), 1, TypeRules::groupLimit, Reference::groupLimit,
            "%m = group_limit(%s) {groups = 4, keep = 2, select = \"top2_sum\"} : f32[T,16]",
            "Grouped routing: experts split into groups, each group scored by its max or its top-2 sum (select), experts outside the keep best groups set to -inf."),

    /** {@code %w = take_along(%s, %e) : f32[T,2]} */
    TAKE_ALONG("take_along", Level.CORE, List.of("x", "index"), List.of(), 1, TypeRules::takeAlong, Reference::takeAlong,
            "%w = take_along(%s, %e) : f32[T,2]",
            "x[t, index[t, k]] along the last dimension: the routing weights of the chosen experts."),

    /** {@code %y = moe_experts(%h, %wn, %e, %wg, %wu, %wd) : f32[T,256]} */
    MOE_EXPERTS("moe_experts", Level.CORE, List.of("x", "weights", "experts", "w_gate", "w_up", "w_down"), List.of(), 1, TypeRules::moeExperts, Reference::moeExperts,
            "%y = moe_experts(%h, %wn, %e, %wg, %wu, %wd) : f32[T,256]",
            "sum_k weights[t,k] * w_down[e] @ (silu(w_gate[e] @ x[t]) * (w_up[e] @ x[t])), e = experts[t,k]."),

    /** {@code %g = silu(%x) : f32[T,512]} */
    SILU("silu", Level.CORE, List.of("x"), List.of(), 1, TypeRules::floatUnary, Reference::silu,
            "%g = silu(%x) : f32[T,512]",
            "x * sigmoid(x), elementwise."),

    /** {@code %s = sigmoid(%x) : f32[T,8]} */
    SIGMOID("sigmoid", Level.CORE, List.of("x"), List.of(), 1, TypeRules::floatUnary, Reference::sigmoid,
            "%s = sigmoid(%x) : f32[T,8]",
            "1 / (1 + exp(-x)), elementwise."),

    /** {@code %s = softplus(%x) : f32[T,32]} */
    SOFTPLUS("softplus", Level.CORE, List.of("x"), List.of(), 1, TypeRules::floatUnary, Reference::softplus,
            "%s = softplus(%x) : f32[T,32]",
            "log(1 + exp(x)), elementwise."),

    /** {@code %e = exp(%x) : f32[32]} */
    EXP("exp", Level.CORE, List.of("x"), List.of(), 1, TypeRules::floatUnary, Reference::exp,
            "%e = exp(%x) : f32[32]",
            "exp(x), elementwise."),

    /** {@code %n = neg(%x) : f32[32]} */
    NEG("neg", Level.CORE, List.of("x"), List.of(), 1, TypeRules::floatUnary, Reference::neg,
            "%n = neg(%x) : f32[32]",
            "-x, elementwise."),

    /** {@code %r = relu(%x) : f32[T,64]} */
    RELU("relu", Level.CORE, List.of("x"), List.of(), 1, TypeRules::floatUnary, Reference::relu,
            "%r = relu(%x) : f32[T,64]",
            "max(x, 0), elementwise."),

    /** {@code %y = scale(%x) {factor = 2.5} : f32[T,8]} */
    SCALE("scale", Level.CORE, List.of("x"), List.of(req("factor", FLOAT)), 1, TypeRules::floatUnary, Reference::scale,
            "%y = scale(%x) {factor = 2.5} : f32[T,8]",
            "x * factor."),

    /** {@code %y = add(%a, %b) : f32[T,256]} */
    ADD("add", Level.CORE, List.of("a", "b"), List.of(), 1, TypeRules::broadcast, Reference::add,
            "%y = add(%a, %b) : f32[T,256]",
            "a + b, elementwise; shapes broadcast from the right (equal dims, or 1)."),

    /** {@code %y = sub(%a, %b) : f32[T,256]} */
    SUB("sub", Level.CORE, List.of("a", "b"), List.of(), 1, TypeRules::broadcast, Reference::sub,
            "%y = sub(%a, %b) : f32[T,256]",
            "a - b, elementwise; shapes broadcast from the right (equal dims, or 1)."),

    /** {@code %y = mul(%a, %b) : f32[T,256]} */
    MUL("mul", Level.CORE, List.of("a", "b"), List.of(), 1, TypeRules::broadcast, Reference::mul,
            "%y = mul(%a, %b) : f32[T,256]",
            "a * b, elementwise; shapes broadcast from the right (equal dims, or 1)."),

    /** {@code %y = div(%a, %b) : f32[T,256]} */
    DIV("div", Level.CORE, List.of("a", "b"), List.of(), 1, TypeRules::broadcast, Reference::div,
            "%y = div(%a, %b) : f32[T,256]",
            "a / b, elementwise; shapes broadcast from the right (equal dims, or 1)."),

    /** {@code %a = fused_infer_attention(%q, %kc, %vc, %block_table, %slots, %positions) {input_layout = "TND", num_heads = 4, num_kv_heads = 2, scale = 0.08838834764831845, sparse_mode = 3} : f32[T,4,128]} */
    FUSED_INFER_ATTENTION("fused_infer_attention", Level.FUSED, List.of("q", "k_cache", "v_cache", "block_table", "slots", "positions"), List.of(req("num_heads", INT), req("num_kv_heads", INT), req("scale", FLOAT), req("sparse_mode", INT), req("input_layout", STRING)), 1, TypeRules::fusedInferAttention, Reference::attention,
            "%a = fused_infer_attention(%q, %kc, %vc, %block_table, %slots, %positions) {input_layout = \"TND\", num_heads = 4, num_kv_heads = 2, scale = 0.08838834764831845, sparse_mode = 3} : f32[T,4,128]",
            "aclnnFusedInferAttentionScore: causal (sparse_mode 3) GQA over the paged cache (block_table), TND layout; the semantics of attention."),

    /** {@code %kc1, %ks1 = kv_write_int8(%kc, %ks, %k, %block_table, %slots, %positions) : i8[NB,BS,2,128], f32[NB,BS,2]} */
    KV_WRITE_INT8("kv_write_int8", Level.FUSED, List.of("cache", "scale", "kv", "block_table", "slots", "positions"), List.of(), 2,
            TypeRules::kvWriteInt8, Reference::kvWriteInt8,
            "%kc1, %ks1 = kv_write_int8(%kc, %ks, %k, %block_table, %slots, %positions) : i8[NB,BS,2,128], f32[NB,BS,2]",
            "The int8 (C8) cache write: each token's row of each KV head is quantized symmetrically, scale = max|kv| / 127, and stored with its scale (aclnnScatterPaKvCache, int8 cache)."),

    /** {@code %a = fused_infer_attention_int8(%q, %kc, %ks, %vc, %vs, %block_table, %slots, %positions) {input_layout = "TND", num_heads = 4, num_kv_heads = 2, scale = 0.08838834764831845, sparse_mode = 3} : f32[T,4,128]} */
    FUSED_INFER_ATTENTION_INT8("fused_infer_attention_int8", Level.FUSED, List.of("q", "k_cache", "k_scale", "v_cache", "v_scale", "block_table", "slots", "positions"),
            List.of(req("num_heads", INT), req("num_kv_heads", INT), req("scale", FLOAT), req("sparse_mode", INT), req("input_layout", STRING)), 1,
            TypeRules::fusedInferAttentionInt8, Reference::attentionInt8,
            "%a = fused_infer_attention_int8(%q, %kc, %ks, %vc, %vs, %block_table, %slots, %positions) {input_layout = \"TND\", num_heads = 4, num_kv_heads = 2, scale = 0.08838834764831845, sparse_mode = 3} : f32[T,4,128]",
            "FusedInferAttentionScore over an int8 cache with per-token, per-head antiquant scales (mode 3): attention on the dequantized rows."),

    /** {@code %a = fused_infer_attention_mla(%qn, %qp, %ckv, %wkvb, %block_table, %slots, %positions) {input_layout = "TND", num_heads = 4, scale = 0.1, sparse_mode = 3, v_head_dim = 32} : f32[T,4,32]} */
    FUSED_INFER_ATTENTION_MLA("fused_infer_attention_mla", Level.FUSED, List.of("q_nope", "q_pe", "cache", "w_kv_b", "block_table", "slots", "positions"),
            List.of(req("num_heads", INT), req("scale", FLOAT), req("v_head_dim", INT), req("sparse_mode", INT), req("input_layout", STRING)), 1,
            TypeRules::fusedInferAttentionMla, Reference::mlaAttention,
            "%a = fused_infer_attention_mla(%qn, %qp, %ckv, %wkvb, %block_table, %slots, %positions) {input_layout = \"TND\", num_heads = 4, scale = 0.1, sparse_mode = 3, v_head_dim = 32} : f32[T,4,32]",
            "aclnnFusedInferAttentionScore in MLA mode (query_rope/key_rope, latent KV with W_UK/W_UV absorbed by the backend); the semantics of mla_attention."),

    /** {@code %a = sparse_flash_attention(%qn, %qp, %ckv, %wkvb, %block_table, %slots, %positions, %sel) {num_heads = 4, scale = 0.1, v_head_dim = 32} : f32[T,4,32]} */
    SPARSE_FLASH_ATTENTION("sparse_flash_attention", Level.FUSED, List.of("q_nope", "q_pe", "cache", "w_kv_b", "block_table", "slots", "positions", "indices"),
            List.of(req("num_heads", INT), req("scale", FLOAT), req("v_head_dim", INT)), 1,
            TypeRules::sparseFlashAttention, Reference::mlaAttentionSparse,
            "%a = sparse_flash_attention(%qn, %qp, %ckv, %wkvb, %block_table, %slots, %positions, %sel) {num_heads = 4, scale = 0.1, v_head_dim = 32} : f32[T,4,32]",
            "aclnnSparseFlashAttention (DeepSeek-V3.2): MLA attention over the positions the indexer chose; the semantics of mla_attention_sparse."),

    /** {@code %cos, %sin = rope_cos_sin(%positions) {rotary_dim = 128, theta = 1000000.0} : f32[T,64], f32[T,64]} */
    ROPE_COS_SIN("rope_cos_sin", Level.FUSED, List.of("positions"), List.of(req("theta", FLOAT), req("rotary_dim", INT), opt("interleaved", BOOL), opt("yarn_factor", FLOAT), opt("yarn_original_max", INT), opt("yarn_beta_fast", FLOAT), opt("yarn_beta_slow", FLOAT)), 2, TypeRules::ropeCosSin, Reference::ropeCosSin,
            "%cos, %sin = rope_cos_sin(%positions) {rotary_dim = 128, theta = 1000000.0} : f32[T,64], f32[T,64]",
            "cos and sin of position * inv_freq[i] for each rotary pair i (YaRN-blended when yarn_factor is set), shared by every rotary application of a step."),

    /** {@code %qr = apply_rotary(%q, %cos, %sin) {rotary_dim = 128} : f32[T,4,128]} */
    APPLY_ROTARY("apply_rotary", Level.FUSED, List.of("x", "cos", "sin"), List.of(req("rotary_dim", INT), opt("interleaved", BOOL)), 1, TypeRules::applyRotary, Reference::applyRotary,
            "%qr = apply_rotary(%q, %cos, %sin) {rotary_dim = 128} : f32[T,4,128]",
            "aclnnRotaryPositionEmbedding: rotate the pairs of the first rotary_dim dims by the given cos/sin (NeoX or interleaved pairing)."),

    /** {@code %h, %x1 = add_rms_norm(%x, %o, %w) {eps = 1.0E-6} : f32[T,256], f32[T,256]} */
    ADD_RMS_NORM("add_rms_norm", Level.FUSED, List.of("x", "residual", "weight"), List.of(req("eps", FLOAT), opt("weight_offset", FLOAT)), 2, TypeRules::addRmsNorm, Reference::addRmsNorm,
            "%h, %x1 = add_rms_norm(%x, %o, %w) {eps = 1.0E-6} : f32[T,256], f32[T,256]",
            "aclnnAddRmsNorm: s = x + residual; returns rms_norm(s) and s (the new residual)."),

    /** {@code %xq, %xs = dynamic_quant(%x) : i8[T,256], f32[T]} */
    DYNAMIC_QUANT("dynamic_quant", Level.FUSED, List.of("x"), List.of(), 2, TypeRules::dynamicQuant, Reference::dynamicQuant,
            "%xq, %xs = dynamic_quant(%x) : i8[T,256], f32[T]",
            "aclnnDynamicQuant: per-row symmetric int8, scale = max|x| / 127, q = round(x / scale)."),

    /** {@code %hq, %x1, %hs = add_rms_norm_dynamic_quant(%x, %o, %w) {eps = 1.0E-6} : i8[T,256], f32[T,256], f32[T]} */
    ADD_RMS_NORM_DYNAMIC_QUANT("add_rms_norm_dynamic_quant", Level.FUSED, List.of("x", "residual", "weight"), List.of(req("eps", FLOAT), opt("weight_offset", FLOAT)), 3, TypeRules::addRmsNormDynamicQuant, Reference::addRmsNormDynamicQuant,
            "%hq, %x1, %hs = add_rms_norm_dynamic_quant(%x, %o, %w) {eps = 1.0E-6} : i8[T,256], f32[T,256], f32[T]",
            "aclnnAddRmsNormDynamicQuant: add_rms_norm, then dynamic_quant of the normalized rows."),

    /** {@code %y = quant_matmul(%xq, %xs, %wq, %ws) : f32[T,512]} */
    QUANT_MATMUL("quant_matmul", Level.FUSED, List.of("x", "x_scale", "weight", "w_scale"), List.of(), 1, TypeRules::quantMatmul, Reference::quantMatmul,
            "%y = quant_matmul(%xq, %xs, %wq, %ws) : f32[T,512]",
            "aclnnQuantMatmul (W8A8): int8 x[.., K] . int8 weight[N, K] accumulated in int32, times x_scale[..] and w_scale[N]."),

    /** {@code %wq, %ws = weight_quant(%w) {bits = 8} : i8[512,256], f32[512]} */
    WEIGHT_QUANT("weight_quant", Level.CORE, List.of("weight"), List.of(req("bits", INT)), 2, TypeRules::weightQuant, Reference::weightQuant,
            "%wq, %ws = weight_quant(%w) {bits = 8} : i8[512,256], f32[512]",
            "Per-output-channel symmetric quantization of a weight [..., out, in] to int8 or int4: scale = max|w| / (2^(bits-1) - 1); a compile-time weight transform."),

    /** {@code %xq = static_quant(%x, %in_scale, %in_offset) : i8[T,256]} */
    STATIC_QUANT("static_quant", Level.FUSED, List.of("x", "scale", "offset"), List.of(), 1, TypeRules::staticQuant, Reference::staticQuant,
            "%xq = static_quant(%x, %in_scale, %in_offset) : i8[T,256]",
            "aclnnAscendQuant (static W8A8): per-tensor asymmetric int8, q = clamp(round(x / scale + offset), -128, 127)."),

    /** {@code %y = quant_matmul_static(%xq, %wq, %qbias, %deq) : f32[T,512]} */
    QUANT_MATMUL_STATIC("quant_matmul_static", Level.FUSED, List.of("x", "weight", "quant_bias", "deq_scale"), List.of(), 1,
            TypeRules::quantMatmulStatic, Reference::quantMatmulStatic,
            "%y = quant_matmul_static(%xq, %wq, %qbias, %deq) : f32[T,512]",
            "aclnnQuantMatmul with a dequant scale (static W8A8): (int8 x . int8 weight[N, K] + quant_bias[N]) * deq_scale[N]."),

    /** {@code %y = moe_experts_quant(%h, %w, %e, %wg, %sg, %wu, %su, %wd, %sd) : f32[T,256]} */
    MOE_EXPERTS_QUANT("moe_experts_quant", Level.CORE, List.of("x", "weights", "experts", "w_gate", "s_gate", "w_up", "s_up", "w_down", "s_down"), List.of(), 1,
            TypeRules::moeExpertsQuant, Reference::moeExpertsQuant,
            "%y = moe_experts_quant(%h, %w, %e, %wg, %sg, %wu, %su, %wd, %sd) : f32[T,256]",
            "moe_experts with int8 or int4 expert weights and per-channel scales (W8A8/W4A8 dynamic): x and the SwiGLU activations are quantized per row to int8 before each projection."),

    /** {@code %w, %e = moe_gating_topk_softmax(%r) {k = 2, renorm = true} : f32[T,2], i32[T,2]} */
    MOE_GATING_TOPK_SOFTMAX("moe_gating_topk_softmax", Level.FUSED, List.of("x"), List.of(req("k", INT), req("renorm", BOOL)), 2, TypeRules::gatingSoftmax, Reference::gatingSoftmax,
            "%w, %e = moe_gating_topk_softmax(%r) {k = 2, renorm = true} : f32[T,2], i32[T,2]",
            "aclnnMoeGatingTopKSoftmax: softmax over experts, top-k, optionally renormalized to sum 1."),

    /** {@code %w, %e = moe_gating_topk(%r, %bias) {eps = 1.0E-20, group_select = "top2_sum", groups = 4, k = 2, keep_groups = 2, norm_type = "sigmoid", renorm = true, routed_scaling = 2.5} : f32[T,2], i32[T,2]} */
    MOE_GATING_TOPK("moe_gating_topk", Level.FUSED, List.of("x", "bias"), List.of(req("k", INT), req("groups", INT), req("keep_groups", INT), req("group_select", STRING), req("norm_type", STRING), req("renorm", BOOL), req("routed_scaling", FLOAT), req("eps", FLOAT)), 2, TypeRules::gatingTopk, Reference::gatingTopk,
            "%w, %e = moe_gating_topk(%r, %bias) {eps = 1.0E-20, group_select = \"top2_sum\", groups = 4, k = 2, keep_groups = 2, norm_type = \"sigmoid\", renorm = true, routed_scaling = 2.5} : f32[T,2], i32[T,2]",
            "aclnnMoeGatingTopK: scores = softmax|sigmoid(x); choose with scores + bias inside the keep_groups best groups; weights are the unbiased scores, normalized (sigmoid, or renorm) and times routed_scaling."),

    /** {@code %xe, %rows, %counts = moe_dispatch(%h, %e) {num_experts = 8} : f32[T*2,256], i32[T*2], i32[8]} */
    MOE_DISPATCH("moe_dispatch", Level.FUSED, List.of("x", "experts"), List.of(req("num_experts", INT)), 3, TypeRules::moeDispatch, Reference::moeDispatch,
            "%xe, %rows, %counts = moe_dispatch(%h, %e) {num_experts = 8} : f32[T*2,256], i32[T*2], i32[8]",
            "aclnnMoeInitRouting: the (token, choice) rows sorted stably by expert, the source index t*K+k of each row, and the rows per expert."),

    /** {@code %xq, %xs, %rows, %counts = moe_dispatch_quant(%h, %e) {num_experts = 8} : i8[T*2,256], f32[T*2], i32[T*2], i32[8]} */
    MOE_DISPATCH_QUANT("moe_dispatch_quant", Level.FUSED, List.of("x", "experts"), List.of(req("num_experts", INT)), 4, TypeRules::moeDispatchQuant, Reference::moeDispatchQuant,
            "%xq, %xs, %rows, %counts = moe_dispatch_quant(%h, %e) {num_experts = 8} : i8[T*2,256], f32[T*2], i32[T*2], i32[8]",
            "aclnnMoeInitRoutingV3 with quant_mode 1 (MC2 dispatch: quant_mode 2): moe_dispatch, then each row quantized as dynamic_quant does; a token's rows are copies of one quantization."),

    /** {@code %g = grouped_matmul(%xe, %wgu, %counts) : f32[T*2,256]} */
    GROUPED_MATMUL("grouped_matmul", Level.FUSED, List.of("x", "weight", "counts"), List.of(), 1, TypeRules::groupedMatmul, Reference::groupedMatmul,
            "%g = grouped_matmul(%xe, %wgu, %counts) : f32[T*2,256]",
            "aclnnGroupedMatmul: consecutive row groups of x (counts[e] rows each) times weight[e][N, K] transposed; rows past the groups are zero."),

    /** {@code %g = grouped_quant_matmul(%xq, %xs, %wq, %ws, %counts) : f32[T*2,256]} */
    GROUPED_QUANT_MATMUL("grouped_quant_matmul", Level.FUSED, List.of("x", "x_scale", "weight", "w_scale", "counts"), List.of(), 1, TypeRules::groupedQuantMatmul, Reference::groupedQuantMatmul,
            "%g = grouped_quant_matmul(%xq, %xs, %wq, %ws, %counts) : f32[T*2,256]",
            "aclnnGroupedMatmul, W8A8/W4A8: int8 rows times int8 or int4 expert weights, accumulated in int32, times x_scale[row] and w_scale[e, n]."),

    /** {@code %a = swiglu(%g) : f32[T*2,128]} */
    SWIGLU("swiglu", Level.FUSED, List.of("x"), List.of(), 1, TypeRules::swiglu, Reference::swiglu,
            "%a = swiglu(%g) : f32[T*2,128]",
            "aclnnSwiGlu: silu(first half of the last dimension) * second half."),

    /** {@code %aq, %as = swiglu_quant(%g) : i8[T*2,128], f32[T*2]} */
    SWIGLU_QUANT("swiglu_quant", Level.FUSED, List.of("x"), List.of(), 2, TypeRules::swigluQuant, Reference::swigluQuant,
            "%aq, %as = swiglu_quant(%g) : i8[T*2,128], f32[T*2]",
            "aclnnSwiGluQuant (dynamic): swiglu, then dynamic_quant of each row, as one operator: the int8 rows of a W8A8 MoE's down projection."),

    /** {@code %y = moe_combine(%ye, %rows, %w) : f32[T,256]} */
    MOE_COMBINE("moe_combine", Level.FUSED, List.of("y", "rows", "weights"), List.of(), 1, TypeRules::moeCombine, Reference::moeCombine,
            "%y = moe_combine(%ye, %rows, %w) : f32[T,256]",
            "aclnnMoeFinalizeRouting: out[t] = sum_k weights[t,k] * y[row of (t,k)], undoing moe_dispatch's permutation.");

    /** Core ops come from the frontends; fused ops are produced by passes and map 1:1 onto Ascend kernels. */
    public enum Level { CORE, FUSED }

    private final String text;
    private final Level level;
    private final List<String> operandNames;
    private final List<AttrSpec> attrs;
    private final int resultCount;
    private final TypeRule typeRule;
    private final Semantics semantics;
    private final String example;
    private final String summary;

    Op(String text, Level level, List<String> operandNames, List<AttrSpec> attrs, int resultCount, TypeRule typeRule,
       Semantics semantics, String example, String summary) {
        this.text = text;
        this.level = level;
        this.operandNames = operandNames;
        this.attrs = attrs;
        this.resultCount = resultCount;
        this.typeRule = typeRule;
        this.semantics = semantics;
        this.example = example;
        this.summary = summary;
    }

    public String text() { return text; }
    public Level level() { return level; }
    public List<String> operandNames() { return operandNames; }
    public List<AttrSpec> attrs() { return attrs; }
    public int resultCount() { return resultCount; }
    public TypeRule typeRule() { return typeRule; }
    public Semantics semantics() { return semantics; }
    public String example() { return example; }
    public String summary() { return summary; }

    public static Op byName(String text) {
        for (Op op : values()) if (op.text.equals(text)) return op;
        throw new IllegalArgumentException("unknown op '" + text + "'");
    }

    /** Result types of this op for the given operand types, or a {@link TypeError}. */
    public List<TensorType> inferTypes(List<TensorType> operands, Attrs attrs) {
        if (operands.size() != operandNames.size()) {
            throw new TypeError("operand-count", text + " takes " + operandNames.size() + " operands "
                    + operandNames + ", got " + operands.size());
        }
        for (AttrSpec spec : this.attrs) {
            Object v = attrs.values().get(spec.name());
            if (v == null && spec.required()) throw new TypeError("attr-missing", text + " needs attribute '" + spec.name() + "'");
            if (v != null && !spec.kind().accepts(v)) {
                throw new TypeError("attr-kind", text + " attribute '" + spec.name() + "' must be " + spec.kind() + ", got " + Attrs.format(v));
            }
        }
        for (String name : attrs.values().keySet()) {
            if (this.attrs.stream().noneMatch(a -> a.name().equals(name))) {
                throw new TypeError("attr-unknown", text + " has no attribute '" + name + "'");
            }
        }
        List<TensorType> out = typeRule.infer(operands, attrs);
        if (out.size() != resultCount) throw new IllegalStateException("type rule of " + text + " gave " + out.size() + " results");
        return out;
    }

    /** A type rule: result types from operand types and attributes; throws {@link TypeError}. */
    @FunctionalInterface
    public interface TypeRule {
        List<TensorType> infer(List<TensorType> operands, Attrs attrs);
    }
}
