package dev.moec.frontend.arch;

import dev.moec.ir.Graph;
import dev.moec.ir.Op;
import dev.moec.ir.Value;

import java.util.HashSet;
import java.util.List;
import java.util.Set;

import static dev.moec.ir.StepAbi.T;

/**
 * Qwen3 dense ({@code qwen3}) and Qwen3-MoE ({@code qwen3_moe}): pre-norm decoder, GQA with explicit
 * head_dim, per-head q/k RMSNorm before NeoX RoPE, untied lm_head. MoE layers route with softmax top-k
 * (renormalized when {@code norm_topk_prob}) over SwiGLU experts; a layer is a dense SwiGLU MLP when the
 * model is dense, listed in {@code mlp_only_layers}, or off the {@code decoder_sparse_step} grid.
 */
public final class Qwen3 implements Architecture {
    @Override public List<String> modelTypes() { return List.of("qwen3", "qwen3_moe"); }

    @Override
    public Graph buildStep(ModelConfig c, WeightTypes types) {
        int layers = c.integer("num_hidden_layers"), heads = c.integer("num_attention_heads"), hidden = c.integer("hidden_size");
        int kvHeads = c.integer("num_key_value_heads", heads), hd = c.has("head_dim") ? c.integer("head_dim") : hidden / heads;
        double eps = c.number("rms_norm_eps");
        boolean moe = c.modelType().equals("qwen3_moe") && c.integer("num_experts", 0) > 0;
        Set<Integer> dense = new HashSet<>();
        if (c.has("mlp_only_layers")) c.json().get("mlp_only_layers").forEach(n -> dense.add(n.asInt()));
        int step = c.integer("decoder_sparse_step", 1);
        StepBuilder.Rope rope = new StepBuilder.Rope(c.number("rope_theta"), hd, false, null);

        StepBuilder b = new StepBuilder(c.modelType(), types);
        Value embed = b.weight("embed", "model.embed_tokens.weight", c.integer("vocab_size"), hidden);   // [V, H]
        Value x = b.op(Op.GATHER, "x", embed, b.tokens);                                                  // [T, H]
        for (int l = 0; l < layers; l++) {
            String p = "model.layers." + l + ".", n = "l" + l + ".";
            Value h = b.norm(n + "attn_in", x, p + "input_layernorm.weight", eps, 0);
            Value q = b.reshape(n + "q_heads", b.linear(n + "q", h, p + "self_attn.q_proj.weight", (long) heads * hd), T, heads, hd);
            Value k = b.reshape(n + "k_heads", b.linear(n + "k", h, p + "self_attn.k_proj.weight", (long) kvHeads * hd), T, kvHeads, hd);
            Value v = b.reshape(n + "v_heads", b.linear(n + "v", h, p + "self_attn.v_proj.weight", (long) kvHeads * hd), T, kvHeads, hd);
            q = b.rope(n + "q_rot", b.norm(n + "q_normed", q, p + "self_attn.q_norm.weight", eps, 0), rope);
            k = b.rope(n + "k_rot", b.norm(n + "k_normed", k, p + "self_attn.k_norm.weight", eps, 0), rope);
            Value a = b.gqa(n, l, q, k, v, 1.0 / Math.sqrt(hd));
            x = b.op(Op.ADD, n + "x_attn", x, b.linear(n + "attn_out", a, p + "self_attn.o_proj.weight", hidden));

            h = b.norm(n + "mlp_in", x, p + "post_attention_layernorm.weight", eps, 0);
            boolean sparse = moe && !dense.contains(l) && (l + 1) % step == 0;
            Value y = sparse
                    ? b.moe(n, h, router(c, p), StepBuilder.Experts.stacked(p + "mlp.experts.*.gate_proj.weight",
                            p + "mlp.experts.*.up_proj.weight", p + "mlp.experts.*.down_proj.weight", c.integer("moe_intermediate_size")), null)
                    : b.mlp(n + "mlp_", h, p + "mlp.gate_proj.weight", p + "mlp.up_proj.weight", p + "mlp.down_proj.weight", c.integer("intermediate_size"));
            x = b.op(Op.ADD, n + "x_out", x, y);
        }
        Value xf = b.norm("final_norm", x, "model.norm.weight", eps, 0);
        Value head = c.bool("tie_word_embeddings", false) ? embed : b.weight("lm_head", "lm_head.weight", c.integer("vocab_size"), hidden);
        return b.finish(xf, head);
    }

    /** Softmax top-k routing, renormalized when {@code norm_topk_prob}. */
    static StepBuilder.Router router(ModelConfig c, String layerPrefix) {
        return new StepBuilder.Router(layerPrefix + "mlp.gate.weight", c.integer("num_experts"), c.integer("num_experts_per_tok"), false,
                c.bool("norm_topk_prob", false), null, 1, 1, 1.0);
    }
}
