package dev.moec.passes;

import dev.moec.ir.Attrs;
import dev.moec.ir.Graph;
import dev.moec.ir.Node;
import dev.moec.ir.Op;

/**
 * {@code fuse-attention}: attention over the cache becomes the Ascend FusedInferAttentionScore kernel, with
 * the attributes its contract needs: head counts, the explicit softmax scale, causal sparse_mode 3 and the
 * packed TND layout. GQA attention maps to {@code fused_infer_attention}, MLA to its MLA mode
 * ({@code fused_infer_attention_mla}), DeepSeek-V3.2's indexed MLA to {@code sparse_flash_attention}.
 * q/k norms and (partial) rotary embedding stay in front of it as their own kernels.
 */
public final class FuseAttention implements Pass {
    @Override public String name() { return "fuse-attention"; }

    @Override
    public Graph run(Graph g) {
        Rewrite rw = new Rewrite(g);
        for (Node n : g.nodes()) {
            if (n.op() != Op.ATTENTION && n.op() != Op.MLA_ATTENTION && n.op() != Op.MLA_ATTENTION_SPARSE) {
                rw.keep(n);
                continue;
            }
            long heads = n.operand(0).type().shape().dim(1).size();          // q is [T, H, D]
            Op fused = switch (n.op()) {
                case ATTENTION -> Op.FUSED_INFER_ATTENTION;
                case MLA_ATTENTION -> Op.FUSED_INFER_ATTENTION_MLA;
                default -> Op.SPARSE_FLASH_ATTENTION;
            };
            Attrs a = switch (n.op()) {
                // attention(q, kc, vc){scale} -> FIA{num_heads, num_kv_heads, scale, sparse_mode 3 (causal), TND}
                case ATTENTION -> Attrs.of("num_heads", heads, "num_kv_heads", n.operand(1).type().shape().dim(2).size(),
                        "scale", n.attrs().f("scale"), "sparse_mode", 3L, "input_layout", "TND");
                case MLA_ATTENTION -> Attrs.of("num_heads", heads, "scale", n.attrs().f("scale"), "v_head_dim", n.attrs().i("v_head_dim"),
                        "sparse_mode", 3L, "input_layout", "TND");
                default -> Attrs.of("num_heads", heads, "scale", n.attrs().f("scale"), "v_head_dim", n.attrs().i("v_head_dim"));
            };
            rw.release(n.result());
            rw.replace(n.result(), rw.emit(fused, n.result().name(), a, n.operands().toArray(dev.moec.ir.Value[]::new)));
            rw.drop(n);
        }
        return rw.finish();
    }
}
