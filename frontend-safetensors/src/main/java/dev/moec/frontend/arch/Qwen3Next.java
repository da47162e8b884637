package dev.moec.frontend.arch;

import dev.moec.ir.Attrs;
import dev.moec.ir.DType;
import dev.moec.ir.Graph;
import dev.moec.ir.Op;
import dev.moec.ir.StepAbi;
import dev.moec.ir.TensorType;
import dev.moec.ir.Value;

import java.util.List;
import java.util.Optional;

import static dev.moec.ir.StepAbi.S;
import static dev.moec.ir.StepAbi.T;

/**
 * Qwen3-Next ({@code qwen3_next}) and Qwen3.5 MoE ({@code qwen3_5_moe}, its text model under
 * {@code model.language_model.}, config in {@code text_config}). Hybrid layers: every
 * {@code full_attention_interval}-th layer is gated full attention (per-head [query | gate] projection,
 * (1 + w) q/k norms, partial NeoX RoPE, output times sigmoid(gate)); the others are gated delta net
 * linear attention (depthwise causal conv over [q | k | v], SiLU, L2-normed q and k, the gated delta
 * rule with per-slot recurrent state, RMSNorm times SiLU(z)). Every RMSNorm but the delta net's is
 * zero-centred, (1 + w). MoE in every layer: softmax top-k renormalized, plus a shared expert scaled by
 * sigmoid(shared_expert_gate). The MTP layer ({@code mtp.}) is its own graph.
 */
public final class Qwen3Next implements Architecture {
    @Override public List<String> modelTypes() { return List.of("qwen3_next", "qwen3_5_moe"); }

    /** What differs between Qwen3-Next and Qwen3.5 MoE. */
    private record Variant(ModelConfig c, String prefix, boolean qwen35) {
        static Variant of(ModelConfig config) {
            boolean q35 = config.modelType().equals("qwen3_5_moe");
            return new Variant(q35 ? config.section("text_config") : config, q35 ? "model.language_model." : "model.", q35);
        }
    }

    private record Dims(int hidden, int layers, int heads, int kvHeads, int hd, int interval, double eps, int vocab,
                        int kHeads, int vHeads, int dk, int dv, int conv, int experts, int topK, int moeInter, int sharedInter,
                        boolean renorm, StepBuilder.Rope rope) {
        static Dims of(ModelConfig c, boolean q35) {
            int hd = c.integer("head_dim");
            double partial = c.number("partial_rotary_factor", c.has("rope_parameters") ? c.json().get("rope_parameters").path("partial_rotary_factor").asDouble(1.0) : 1.0);
            double theta = c.number("rope_theta", c.has("rope_parameters") ? c.json().get("rope_parameters").path("rope_theta").asDouble(10000) : 10000);
            return new Dims(c.integer("hidden_size"), c.integer("num_hidden_layers"), c.integer("num_attention_heads"),
                    c.integer("num_key_value_heads"), hd, c.integer("full_attention_interval", 4), c.number("rms_norm_eps"), c.integer("vocab_size"),
                    c.integer("linear_num_key_heads"), c.integer("linear_num_value_heads"), c.integer("linear_key_head_dim"),
                    c.integer("linear_value_head_dim"), c.integer("linear_conv_kernel_dim"), c.integer("num_experts"),
                    c.integer("num_experts_per_tok"), c.integer("moe_intermediate_size"), c.integer("shared_expert_intermediate_size"),
                    q35 || c.bool("norm_topk_prob", true), new StepBuilder.Rope(theta, Math.round(hd * partial), false, null));
        }
    }

    @Override
    public Graph buildStep(ModelConfig config, WeightTypes types) {
        Variant var = Variant.of(config);
        Dims d = Dims.of(var.c(), var.qwen35());
        StepBuilder b = new StepBuilder(config.modelType(), types);
        Value embed = b.weight("embed", var.prefix() + "embed_tokens.weight", d.vocab(), d.hidden());
        Value x = b.op(Op.GATHER, "x", embed, b.tokens);
        for (int l = 0; l < d.layers(); l++) {
            boolean full = (l + 1) % d.interval() == 0;
            x = layer(b, var, d, l, var.prefix() + "layers." + l + ".", "l" + l + ".", x, full);
        }
        Value xf = b.norm("final_norm", x, var.prefix() + "norm.weight", d.eps(), 1);
        return b.finish(xf, b.weight("lm_head", "lm_head.weight", d.vocab(), d.hidden()));
    }

    /** MTP: fc([norm(embed(token)) | norm(hidden)]), one full-attention layer, norm, the shared lm_head. */
    @Override
    public Optional<Graph> buildMtp(ModelConfig config, WeightTypes types) {
        Variant var = Variant.of(config);
        int mtpLayers = var.c().integer("mtp_num_hidden_layers", var.c().integer("num_nextn_predict_layers", var.qwen35() ? 0 : 1));
        if (mtpLayers < 1) return Optional.empty();
        Dims d = Dims.of(var.c(), var.qwen35());
        StepBuilder b = new StepBuilder(config.modelType() + "_mtp", types);
        Value hidden = b.input(StepAbi.HIDDEN, TensorType.of(DType.F32, T, d.hidden()));
        Value e = b.op(Op.GATHER, "mtp.embed", b.weight("embed", var.prefix() + "embed_tokens.weight", d.vocab(), d.hidden()), b.tokens);
        Value en = b.norm("mtp.enorm", e, "mtp.pre_fc_norm_embedding.weight", d.eps(), 1);
        Value hn = b.norm("mtp.hnorm", hidden, "mtp.pre_fc_norm_hidden.weight", d.eps(), 1);
        Value x = b.linear("mtp.fc", b.concat("mtp.fc_in", en, hn, 1), "mtp.fc.weight", d.hidden());
        for (int l = 0; l < mtpLayers; l++) x = layer(b, var, d, d.layers() + l, "mtp.layers." + l + ".", "mtp" + l + ".", x, true);
        Value xf = b.norm("mtp.final_norm", x, "mtp.norm.weight", d.eps(), 1);
        return Optional.of(b.finish(xf, b.weight("lm_head", "lm_head.weight", d.vocab(), d.hidden())));
    }

    private static Value layer(StepBuilder b, Variant var, Dims d, int l, String p, String n, Value x, boolean full) {
        Value h = b.norm(n + "attn_in", x, p + "input_layernorm.weight", d.eps(), 1);
        Value a = full ? gatedAttention(b, d, l, p, n, h) : deltaNet(b, var, d, l, p, n, h);
        x = b.op(Op.ADD, n + "x_attn", x, a);
        h = b.norm(n + "mlp_in", x, p + "post_attention_layernorm.weight", d.eps(), 1);
        String m = p + "mlp.";
        StepBuilder.Router r = router(d, p);
        StepBuilder.Experts ex = var.qwen35()
                ? StepBuilder.Experts.fused(m + "experts.gate_up_proj", m + "experts.down_proj", d.moeInter())
                : StepBuilder.Experts.stacked(m + "experts.*.gate_proj.weight", m + "experts.*.up_proj.weight", m + "experts.*.down_proj.weight", d.moeInter());
        StepBuilder.Shared shared = new StepBuilder.Shared(m + "shared_expert.gate_proj.weight", m + "shared_expert.up_proj.weight",
                m + "shared_expert.down_proj.weight", d.sharedInter(), m + "shared_expert_gate.weight");
        return b.op(Op.ADD, n + "x_out", x, b.moe(n, h, r, ex, shared));
    }

    /** Softmax top-k routing, renormalized (always, for Qwen3.5). {@code c} is the text config. */
    static StepBuilder.Router router(ModelConfig c, boolean qwen35, String layerPrefix) { return router(Dims.of(c, qwen35), layerPrefix); }

    private static StepBuilder.Router router(Dims d, String p) {
        return new StepBuilder.Router(p + "mlp.gate.weight", d.experts(), d.topK(), false, d.renorm(), null, 1, 1, 1.0);
    }

    /** Gated full attention; returns o_proj's output [T, H]. */
    private static Value gatedAttention(StepBuilder b, Dims d, int l, String p, String n, Value h) {
        int heads = d.heads(), hd = d.hd();
        Value qg = b.reshape(n + "qg_heads", b.linear(n + "qg", h, p + "self_attn.q_proj.weight", 2L * heads * hd), T, heads, 2 * hd);  // per head [query | gate]
        Value q = b.slice(n + "q_heads", qg, 2, 0, hd);
        Value gate = b.reshape(n + "gate", b.slice(n + "gate_heads", qg, 2, hd, 2L * hd), T, (long) heads * hd);
        Value k = b.reshape(n + "k_heads", b.linear(n + "k", h, p + "self_attn.k_proj.weight", (long) d.kvHeads() * hd), T, d.kvHeads(), hd);
        Value v = b.reshape(n + "v_heads", b.linear(n + "v", h, p + "self_attn.v_proj.weight", (long) d.kvHeads() * hd), T, d.kvHeads(), hd);
        q = b.rope(n + "q_rot", b.norm(n + "q_normed", q, p + "self_attn.q_norm.weight", d.eps(), 1), d.rope());
        k = b.rope(n + "k_rot", b.norm(n + "k_normed", k, p + "self_attn.k_norm.weight", d.eps(), 1), d.rope());
        Value a = b.gqa(n, l, q, k, v, 1.0 / Math.sqrt(hd));
        a = b.op(Op.MUL, n + "attn_gated", a, b.op(Op.SIGMOID, n + "gate_sigmoid", gate));
        return b.linear(n + "attn_out", a, p + "self_attn.o_proj.weight", d.hidden());
    }

    /** Gated delta net linear attention; returns out_proj's output [T, H]. */
    private static Value deltaNet(StepBuilder b, Variant var, Dims d, int l, String p, String n, Value h) {
        String a = p + "linear_attn.";
        int kh = d.kHeads(), vh = d.vHeads(), dk = d.dk(), dv = d.dv(), ratio = vh / kh;
        long keyDim = (long) kh * dk, valueDim = (long) vh * dv, convDim = 2 * keyDim + valueDim;
        Value mixed, z, beta, alpha;
        if (var.qwen35()) {
            mixed = b.linear(n + "qkv", h, a + "in_proj_qkv.weight", convDim);                                   // [q_all | k_all | v_all]
            z = b.linear(n + "z", h, a + "in_proj_z.weight", valueDim);
            beta = b.linear(n + "b", h, a + "in_proj_b.weight", vh);
            alpha = b.linear(n + "a", h, a + "in_proj_a.weight", vh);
        } else {
            // in_proj_qkvz rows are grouped per key head: [q (dk) | k (dk) | v (ratio*dv) | z (ratio*dv)].
            long group = 2L * dk + 2L * ratio * dv;
            Value qkvz = b.reshape(n + "qkvz_groups", b.linear(n + "qkvz", h, a + "in_proj_qkvz.weight", kh * group), T, kh, group);
            Value q = b.reshape(n + "q_flat", b.slice(n + "q_g", qkvz, 2, 0, dk), T, keyDim);
            Value k = b.reshape(n + "k_flat", b.slice(n + "k_g", qkvz, 2, dk, 2L * dk), T, keyDim);
            Value v = b.reshape(n + "v_flat", b.slice(n + "v_g", qkvz, 2, 2L * dk, 2L * dk + (long) ratio * dv), T, valueDim);
            z = b.reshape(n + "z", b.slice(n + "z_g", qkvz, 2, 2L * dk + (long) ratio * dv, group), T, valueDim);
            mixed = b.concat(n + "qkv", b.concat(n + "qk", q, k, 1), v, 1);
            Value ba = b.reshape(n + "ba_groups", b.linear(n + "ba", h, a + "in_proj_ba.weight", 2L * vh), T, kh, 2L * ratio);   // [b (ratio) | a (ratio)]
            beta = b.reshape(n + "b", b.slice(n + "b_g", ba, 2, 0, ratio), T, vh);
            alpha = b.reshape(n + "a", b.slice(n + "a_g", ba, 2, ratio, 2L * ratio), T, vh);
        }
        // Depthwise causal conv over [q | k | v] with per-slot state, then SiLU.
        Value convW = b.reshape(n + "conv_w2", b.weight(n + "conv_w", a + "conv1d.weight", convDim, 1, d.conv()), convDim, d.conv());
        String convState = "conv_state." + l;
        List<Value> conv = b.g.ops(Op.CAUSAL_CONV1D, List.of(n + "conv", StepAbi.next(convState)), Attrs.NONE,
                mixed, convW, b.state(convState, S, d.conv() - 1, convDim), b.slots, b.positions);
        b.updated(conv.get(1));
        mixed = b.op(Op.SILU, n + "conv_act", conv.get(0));
        Value q = b.reshape(n + "q_heads", b.slice(n + "q_mixed", mixed, 1, 0, keyDim), T, kh, dk);
        Value k = b.reshape(n + "k_heads", b.slice(n + "k_mixed", mixed, 1, keyDim, 2 * keyDim), T, kh, dk);
        Value v = b.reshape(n + "v_heads", b.slice(n + "v_mixed", mixed, 1, 2 * keyDim, convDim), T, vh, dv);
        // beta = sigmoid(b); g = -exp(A_log) * softplus(a + dt_bias), per value head.
        Value betaS = b.op(Op.SIGMOID, n + "beta", beta);
        Value decay = b.op(Op.NEG, n + "neg_a", b.op(Op.EXP, n + "a_exp", b.f32(b.weight(n + "a_log", a + "A_log", vh))));
        Value g = b.op(Op.MUL, n + "g", decay, b.op(Op.SOFTPLUS, n + "dt", b.op(Op.ADD, n + "a_dt", alpha, b.f32(b.weight(n + "dt_bias", a + "dt_bias", vh)))));
        if (ratio > 1) {
            q = b.op(Op.REPEAT, n + "q_rep", Attrs.of("axis", 1L, "times", (long) ratio), q);
            k = b.op(Op.REPEAT, n + "k_rep", Attrs.of("axis", 1L, "times", (long) ratio), k);
        }
        q = b.op(Op.SCALE, n + "q_scaled", Attrs.of("factor", 1.0 / Math.sqrt(dk)), b.op(Op.L2_NORM, n + "q_l2", Attrs.of("eps", 1e-6), q));
        k = b.op(Op.L2_NORM, n + "k_l2", Attrs.of("eps", 1e-6), k);
        String ssm = "ssm_state." + l;
        List<Value> rule = b.g.ops(Op.GATED_DELTA_RULE, List.of(n + "core", StepAbi.next(ssm)), Attrs.NONE,
                q, k, v, g, betaS, b.state(ssm, S, vh, dk, dv), b.slots, b.positions);
        b.updated(rule.get(1));
        Value core = b.norm(n + "core_normed", rule.get(0), a + "norm.weight", d.eps(), 0);
        core = b.op(Op.MUL, n + "core_gated", core, b.op(Op.SILU, n + "z_silu", b.reshape(n + "z_heads", z, T, vh, dv)));
        return b.linear(n + "attn_out", b.reshape(n + "core_flat", core, T, valueDim), a + "out_proj.weight", d.hidden());
    }
}
