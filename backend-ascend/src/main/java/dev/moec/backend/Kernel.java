package dev.moec.backend;

import dev.moec.ir.Op;

/**
 * The kernel list: every kernel a {@link KernelGraph} can launch, the IR op it implements, and the
 * Ascend (aclnn) operator that runs it on an NPU. The CPU executor has its own loops for every entry
 * ({@code CpuKernels.launch}); operands it does not take in place (broadcasting elementwise operands,
 * weights as elementwise operands) run the op's reference semantics on the buffers.
 * {@code reshape} is not here: the backend turns it into a buffer alias, which launches nothing; nor are
 * the weight transforms (ops on parameters alone), which the backend computes once at capture.
 */
public enum Kernel {
    EMBEDDING(Op.GATHER, "aclnnEmbedding"),
    RMS_NORM(Op.RMS_NORM, "aclnnRmsNorm"),
    MATMUL(Op.MATMUL, "aclnnMatmul"),
    ROTARY_EMBEDDING(Op.ROPE, "aclnnRotaryPositionEmbedding"),
    KV_CACHE_WRITE(Op.KV_WRITE, "aclnnScatterPaKvCache"),
    ATTENTION(Op.ATTENTION, "aclnnFusedInferAttentionScore"),
    SOFTMAX(Op.SOFTMAX, "aclnnSoftmax"),
    TOPK(Op.TOPK, "aclnnTopk"),
    RENORM(Op.RENORM, "aclnnDiv"),
    MOE_EXPERTS(Op.MOE_EXPERTS, "aclnnMoeInitRouting+aclnnGroupedMatmul+aclnnSwiGlu+aclnnGroupedMatmul+aclnnMoeFinalizeRouting"),
    SILU(Op.SILU, "aclnnSilu"),
    MUL(Op.MUL, "aclnnMul"),
    ADD(Op.ADD, "aclnnAdd"),
    FUSED_INFER_ATTENTION(Op.FUSED_INFER_ATTENTION, "aclnnFusedInferAttentionScoreV3"),
    ADD_RMS_NORM(Op.ADD_RMS_NORM, "aclnnAddRmsNorm"),
    ROPE_COS_SIN(Op.ROPE_COS_SIN, "aclnnRopeCosSin (host-side table)"),
    APPLY_ROTARY(Op.APPLY_ROTARY, "aclnnRotaryPositionEmbedding"),
    MOE_GATING_TOPK_SOFTMAX(Op.MOE_GATING_TOPK_SOFTMAX, "aclnnMoeGatingTopKSoftmax"),
    MOE_DISPATCH(Op.MOE_DISPATCH, "aclnnMoeInitRoutingV3"),
    MOE_DISPATCH_QUANT(Op.MOE_DISPATCH_QUANT, "aclnnMoeInitRoutingV3 (quant_mode 1: dynamic per-token int8)"),
    GROUPED_MATMUL(Op.GROUPED_MATMUL, "aclnnGroupedMatmulV4"),
    SWIGLU(Op.SWIGLU, "aclnnSwiGlu"),
    SWIGLU_QUANT(Op.SWIGLU_QUANT, "aclnnSwiGluQuant (dynamic per-token int8)"),
    MOE_COMBINE(Op.MOE_COMBINE, "aclnnMoeFinalizeRoutingV2"),
    DYNAMIC_QUANT(Op.DYNAMIC_QUANT, "aclnnDynamicQuant"),
    QUANT_MATMUL(Op.QUANT_MATMUL, "aclnnQuantMatmulV4"),
    ADD_RMS_NORM_DYNAMIC_QUANT(Op.ADD_RMS_NORM_DYNAMIC_QUANT, "aclnnAddRmsNormDynamicQuant"),
    GROUPED_QUANT_MATMUL(Op.GROUPED_QUANT_MATMUL, "aclnnGroupedMatmulV4 (int8/int4 weights, per-token scale)"),
    KV_CACHE_WRITE_INT8(Op.KV_WRITE_INT8, "aclnnScatterPaKvCache (int8 cache, per-token scales)"),
    FUSED_INFER_ATTENTION_INT8(Op.FUSED_INFER_ATTENTION_INT8, "aclnnFusedInferAttentionScoreV3 (key/value antiquant mode 3)"),
    FUSED_INFER_ATTENTION_MLA(Op.FUSED_INFER_ATTENTION_MLA, "aclnnFusedInferAttentionScoreV3 (MLA: query_rope, key_rope)"),
    SPARSE_FLASH_ATTENTION(Op.SPARSE_FLASH_ATTENTION, "aclnnSparseFlashAttention"),
    MOE_GATING_TOPK(Op.MOE_GATING_TOPK, "aclnnMoeGatingTopK"),
    // The ops below have no fused form; on an NPU each is one aclnn operator (or a short composite).
    LAYER_NORM(Op.LAYER_NORM, "aclnnLayerNorm"),
    L2_NORM(Op.L2_NORM, "aclnnNorm + aclnnDiv"),
    HEAD_MATMUL(Op.HEAD_MATMUL, "aclnnBatchMatMul"),
    CAST(Op.CAST, "aclnnCast"),
    SLICE(Op.SLICE, "aclnnSlice"),
    CONCAT(Op.CONCAT, "aclnnCat"),
    REPEAT(Op.REPEAT, "aclnnRepeatInterleave"),
    MLA_ATTENTION(Op.MLA_ATTENTION, "aclnnFusedInferAttentionScoreV3 (MLA)"),
    MLA_ATTENTION_SPARSE(Op.MLA_ATTENTION_SPARSE, "aclnnSparseFlashAttention"),
    INDEXER_TOPK(Op.INDEXER_TOPK, "aclnnLightningIndexer"),
    HADAMARD(Op.HADAMARD, "aclnnMatmul (Hadamard matrix)"),
    CAUSAL_CONV1D(Op.CAUSAL_CONV1D, "causal_conv1d (vllm-ascend Triton / custom op)"),
    GATED_DELTA_RULE(Op.GATED_DELTA_RULE, "fused_recurrent_gated_delta_rule / chunk_gated_delta_rule (vllm-ascend custom ops)"),
    GROUP_LIMIT(Op.GROUP_LIMIT, "aclnnMoeGatingTopK (group selection)"),
    TAKE_ALONG(Op.TAKE_ALONG, "aclnnGather"),
    SIGMOID(Op.SIGMOID, "aclnnSigmoid"),
    SOFTPLUS(Op.SOFTPLUS, "aclnnSoftplus"),
    EXP(Op.EXP, "aclnnExp"),
    NEG(Op.NEG, "aclnnNeg"),
    RELU(Op.RELU, "aclnnRelu"),
    SCALE(Op.SCALE, "aclnnMuls"),
    SUB(Op.SUB, "aclnnSub"),
    DIV(Op.DIV, "aclnnDiv"),
    WEIGHT_QUANT(Op.WEIGHT_QUANT, "(capture-time weight transform)"),
    STATIC_QUANT(Op.STATIC_QUANT, "aclnnAscendQuantV3"),
    QUANT_MATMUL_STATIC(Op.QUANT_MATMUL_STATIC, "aclnnQuantMatmulV4 (deq_scale, bias)"),
    MOE_EXPERTS_QUANT(Op.MOE_EXPERTS_QUANT, "aclnnMoeInitRouting + aclnnGroupedMatmul (int8/int4) + aclnnDequantSwigluQuant + aclnnMoeFinalizeRouting");

    private final Op op;
    private final String ascendOperator;

    Kernel(Op op, String ascendOperator) {
        this.op = op;
        this.ascendOperator = ascendOperator;
    }

    public Op op() { return op; }
    public String ascendOperator() { return ascendOperator; }

    public static Kernel forOp(Op op) {
        for (Kernel k : values()) if (k.op == op) return k;
        throw new IllegalArgumentException("no kernel implements op " + op.text());
    }
}
