package dev.moec.backend;

import dev.moec.ir.Dim;

import java.util.ArrayList;
import java.util.List;

/**
 * The documented limits of the Ascend operators a kernel graph launches (docs/ascend/02_ops_reference.md),
 * checked when compiling. A violated limit with a documented fallback takes it and says so in the compile
 * report (MC2 dispatch/combine falls back to all-gather MoE); one without fails, naming op, attribute and
 * rule. {@code maxTokens} is the largest token count of a captured step.
 */
public final class Contracts {
    private Contracts() {}

    /** A contract a graph cannot meet and has no fallback for. */
    public static final class ContractViolation extends RuntimeException {
        public ContractViolation(Kernel kernel, String attribute, String rule) {
            super(kernel.ascendOperator() + " (" + kernel.name().toLowerCase() + "): " + attribute + " violates: " + rule);
        }
    }

    /** MC2 (MoeDistributeDispatch/Combine, A3 fullmesh): batch per rank, hidden size and top-k limits. */
    static final int MC2_MAX_BATCH = 512, MC2_MIN_HIDDEN = 1024, MC2_MAX_HIDDEN = 8192, MC2_MAX_TOPK = 16;
    /** QuantMatmul: the last dimension of x1 and x2 is at most 65535. */
    static final long QUANT_MATMUL_MAX_K = 65535;
    /** FusedInferAttentionScore: head counts and head size. */
    static final long FIA_MAX_HEADS = 256, FIA_MAX_GROUP = 64, FIA_MAX_HEAD_DIM = 512;

    /** Checks every launch; returns the report lines (fallbacks taken); throws on a violation without one. */
    public static List<String> check(KernelGraph g, long maxTokens) { return check(g, maxTokens, 128); }

    /**
     * {@code kvBlockSize}: the paged KV cache's block size. FIA's rule: for prefill (query length > 1) a
     * multiple of 128 in [128, 512]; for decode at most 512 (128 recommended).
     */
    public static List<String> check(KernelGraph g, long maxTokens, int kvBlockSize) {
        List<String> report = new ArrayList<>();
        boolean attention = g.launches().stream().anyMatch(l -> l.kernel() == Kernel.FUSED_INFER_ATTENTION || l.kernel() == Kernel.FUSED_INFER_ATTENTION_INT8
                || l.kernel() == Kernel.FUSED_INFER_ATTENTION_MLA);
        if (attention && (kvBlockSize < 128 || kvBlockSize > 512 || kvBlockSize % 128 != 0)) {
            throw new ContractViolation(Kernel.FUSED_INFER_ATTENTION, "block_size = " + kvBlockSize,
                    "with queries longer than 1 (prefill) the KV block size is a multiple of 128 in [128, 512]");
        }
        boolean moeNoted = false;
        for (KernelGraph.Launch l : g.launches()) {
            switch (l.kernel()) {
                case FUSED_INFER_ATTENTION, FUSED_INFER_ATTENTION_INT8 -> {
                    long heads = l.attrs().i("num_heads"), kv = l.attrs().i("num_kv_heads");
                    if (heads > FIA_MAX_HEADS) throw new ContractViolation(l.kernel(), "num_heads = " + heads, "N <= " + FIA_MAX_HEADS);
                    if (kv < 1 || heads % kv != 0 || heads / kv > FIA_MAX_GROUP) {
                        throw new ContractViolation(l.kernel(), "num_heads / num_kv_heads = " + heads + " / " + kv, "num_heads % num_kv_heads == 0 and the ratio <= " + FIA_MAX_GROUP);
                    }
                    long d = lastDim(g, l.inputs().getFirst());
                    if (d > FIA_MAX_HEAD_DIM) throw new ContractViolation(l.kernel(), "head_dim = " + d, "D <= " + FIA_MAX_HEAD_DIM);
                    double scale = l.attrs().f("scale");
                    if (scale == 1.0 && d > 1) throw new ContractViolation(l.kernel(), "scale = 1.0", "the softmax scale must be passed explicitly (1/sqrt(D) = " + 1 / Math.sqrt(d) + ")");
                }
                case QUANT_MATMUL, QUANT_MATMUL_STATIC -> {
                    long k = lastDim(g, l.inputs().getFirst());
                    if (k > QUANT_MATMUL_MAX_K) throw new ContractViolation(l.kernel(), "K = " + k, "the last dimension of x1 and x2 <= " + QUANT_MATMUL_MAX_K);
                }
                case MOE_DISPATCH, MOE_DISPATCH_QUANT -> {
                    if (moeNoted) continue;
                    moeNoted = true;
                    long hidden = lastDim(g, l.inputs().getFirst()), topk = lastDim(g, l.inputs().get(1));
                    List<String> why = new ArrayList<>();
                    if (maxTokens > MC2_MAX_BATCH) why.add("tokens per step " + maxTokens + " > " + MC2_MAX_BATCH);
                    if (hidden < MC2_MIN_HIDDEN || hidden > MC2_MAX_HIDDEN) why.add("hidden " + hidden + " outside [" + MC2_MIN_HIDDEN + ", " + MC2_MAX_HIDDEN + "]");
                    if (topk > MC2_MAX_TOPK) why.add("top-k " + topk + " > " + MC2_MAX_TOPK);
                    report.add(why.isEmpty() ? "moe: MC2 dispatch/combine (aclnnMoeDistributeDispatchV2 / CombineV2) for every MoE block"
                            : "moe: all-gather MoE (aclnnMoeInitRoutingV3 + aclnnMoeFinalizeRoutingV2) instead of MC2: " + String.join("; ", why));
                }
                default -> { }
            }
        }
        return report;
    }

    private static long lastDim(KernelGraph g, String buffer) {
        Dim d = g.buffer(buffer).type().shape().last();
        return d.isFixed() ? d.size() : 0;
    }
}
