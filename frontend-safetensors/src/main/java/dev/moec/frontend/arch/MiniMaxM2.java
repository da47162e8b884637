package dev.moec.frontend.arch;

import dev.moec.frontend.CheckpointException;
import dev.moec.ir.Graph;
import dev.moec.ir.Op;
import dev.moec.ir.Value;

import java.util.List;

import static dev.moec.ir.StepAbi.T;

/**
 * MiniMax-M2 / M2.1 / M2.5 / M2.7 ({@code minimax_m2}): GQA whose q/k RMSNorm spans the whole projection
 * ({@code qk_norm_type: per_layer}) before the split into heads, partial NeoX RoPE over the first
 * {@code rotary_dim} dims of each head, and an MoE in every layer: sigmoid scores, selection with
 * e_score_correction_bias, weights from the unbiased scores renormalized, experts w1 (gate), w3 (up),
 * w2 (down). The MTP modules (layers past num_hidden_layers) are not read: no engine documents their
 * names or forward pass.
 */
public final class MiniMaxM2 implements Architecture {
    @Override public List<String> modelTypes() { return List.of("minimax_m2"); }

    /** Sigmoid scores, selection with the routing bias, unbiased weights renormalized. */
    static StepBuilder.Router router(ModelConfig c, String layerPrefix) {
        String m = layerPrefix + "block_sparse_moe.";
        return new StepBuilder.Router(m + "gate.weight", c.integer("num_local_experts"), c.integer("num_experts_per_tok"), true, true,
                c.bool("use_routing_bias", true) ? m + "e_score_correction_bias" : null, 1, 1, 1.0);
    }

    @Override
    public Graph buildStep(ModelConfig c, WeightTypes types) {
        int layers = c.integer("num_hidden_layers"), heads = c.integer("num_attention_heads"), hidden = c.integer("hidden_size");
        int kvHeads = c.integer("num_key_value_heads"), hd = c.integer("head_dim");
        double eps = c.number("rms_norm_eps");
        if (!c.string("scoring_func", "sigmoid").equals("sigmoid")) throw new CheckpointException(c.file(), null, "scoring_func must be sigmoid");
        if (!c.string("qk_norm_type", "per_layer").equals("per_layer")) throw new CheckpointException(c.file(), null, "qk_norm_type must be per_layer");
        if (c.integer("shared_intermediate_size", 0) != 0) throw new CheckpointException(c.file(), null, "a shared expert (shared_intermediate_size > 0) is not supported");
        long rotary = c.has("rotary_dim") ? c.integer("rotary_dim") : Math.round(hd * c.number("partial_rotary_factor", 1.0));
        StepBuilder.Rope rope = new StepBuilder.Rope(c.number("rope_theta"), rotary, false, null);

        StepBuilder b = new StepBuilder("minimax_m2", types);
        Value x = b.op(Op.GATHER, "x", b.weight("embed", "model.embed_tokens.weight", c.integer("vocab_size"), hidden), b.tokens);
        for (int l = 0; l < layers; l++) {
            String p = "model.layers." + l + ".", n = "l" + l + ".";
            Value h = b.norm(n + "attn_in", x, p + "input_layernorm.weight", eps, 0);
            // q/k norms over the whole projection, then heads.
            Value q = b.norm(n + "q_normed", b.linear(n + "q", h, p + "self_attn.q_proj.weight", (long) heads * hd), p + "self_attn.q_norm.weight", eps, 0);
            Value k = b.norm(n + "k_normed", b.linear(n + "k", h, p + "self_attn.k_proj.weight", (long) kvHeads * hd), p + "self_attn.k_norm.weight", eps, 0);
            Value v = b.reshape(n + "v_heads", b.linear(n + "v", h, p + "self_attn.v_proj.weight", (long) kvHeads * hd), T, kvHeads, hd);
            q = b.rope(n + "q_rot", b.reshape(n + "q_heads", q, T, heads, hd), rope);
            k = b.rope(n + "k_rot", b.reshape(n + "k_heads", k, T, kvHeads, hd), rope);
            Value a = b.gqa(n, l, q, k, v, 1.0 / Math.sqrt(hd));
            x = b.op(Op.ADD, n + "x_attn", x, b.linear(n + "attn_out", a, p + "self_attn.o_proj.weight", hidden));

            h = b.norm(n + "mlp_in", x, p + "post_attention_layernorm.weight", eps, 0);
            String m = p + "block_sparse_moe.";
            StepBuilder.Router r = router(c, p);
            Value y = b.moe(n, h, r, StepBuilder.Experts.stacked(m + "experts.*.w1.weight", m + "experts.*.w3.weight", m + "experts.*.w2.weight",
                    c.integer("intermediate_size")), null);
            x = b.op(Op.ADD, n + "x_out", x, y);
        }
        Value xf = b.norm("final_norm", x, "model.norm.weight", eps, 0);
        return b.finish(xf, b.weight("lm_head", "lm_head.weight", c.integer("vocab_size"), hidden));
    }
}
