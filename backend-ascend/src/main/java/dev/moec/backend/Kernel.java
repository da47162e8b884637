package dev.moec.backend;

import dev.moec.ir.Op;

/**
 * The kernel list: every kernel a {@link KernelGraph} can launch, the IR op it implements, and the
 * Ascend (aclnn) operator that runs it on an NPU. The CPU executor has one kernel for each entry.
 * {@code reshape} is not here: the backend turns it into a buffer alias, which launches nothing.
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
    ADD(Op.ADD, "aclnnAdd");

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
