package dev.moec.frontend.arch;

import com.fasterxml.jackson.databind.JsonNode;
import dev.moec.frontend.CheckpointException;
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
 * DeepSeek-V3 / R1 ({@code deepseek_v3}) and V3.2 ({@code deepseek_v32}).
 * <ul>
 * <li>MLA: q through a LoRA pair (q_a, norm, q_b) split per head into [nope | rope]; one shared k_rope and
 *     the normed latent c_kv are cached per token ([NB, BS, 1, kv_lora_rank + rope], paged); keys and values are
 *     expanded from c_kv by kv_b_proj inside {@code mla_attention}.</li>
 * <li>RoPE on the rope dims only, interleaved pairs, YaRN frequencies; the softmax scale is
 *     qk_head_dim^-0.5 times mscale^2 with mscale = 0.1 * mscale_all_dim * ln(factor) + 1.</li>
 * <li>Dense SwiGLU FFN for the first {@code first_k_dense_replace} layers, then MoE: sigmoid scores,
 *     e_score_correction_bias for selection, top-2-sum group limit (n_group, topk_group), weights from the
 *     unbiased scores renormalized and times routed_scaling_factor, plus an ungated shared expert.</li>
 * <li>V3.2 adds the lightning indexer: LayerNorm'd index keys cached per token, Hadamard-rotated q and k,
 *     a top-k of earlier positions per token, and attention restricted to them.</li>
 * <li>The MTP layer ({@code model.layers.<num_hidden_layers>}) is its own graph: {@link #buildMtp}.</li>
 * </ul>
 */
public final class DeepSeekV3 implements Architecture {
    @Override public List<String> modelTypes() { return List.of("deepseek_v3", "deepseek_v32"); }

    /** The config values this family reads. */
    record Dims(int hidden, int layers, int heads, int qLora, int kvLora, int nope, int ropeDim, int v, int inter,
                int moeInter, int experts, int topK, int groups, int topkGroup, int shared, int denseLayers, int vocab,
                double eps, double routedScaling, boolean renorm, StepBuilder.Rope rope, double scale,
                boolean indexer, int indexHeads, int indexDim, int indexTopk, int mtpLayers) {
        static Dims of(ModelConfig c) {
            int nope = c.integer("qk_nope_head_dim"), rope = c.integer("qk_rope_head_dim");
            double scale = 1.0 / Math.sqrt(nope + rope);
            StepBuilder.Rope.Yarn yarn = null;
            JsonNode rs = c.json().get("rope_scaling");
            if (rs != null && !rs.isNull()) {
                String type = rs.path("type").asText(rs.path("rope_type").asText(""));
                if (!type.equals("yarn")) throw new CheckpointException(c.file(), null, "rope_scaling type '" + type + "' is not supported for deepseek (yarn is)");
                double factor = rs.path("factor").asDouble();
                double mscale = rs.path("mscale").asDouble(1.0), mscaleAll = rs.path("mscale_all_dim").asDouble(0.0);
                if (mscaleAll != 0 && mscale != mscaleAll) {
                    throw new CheckpointException(c.file(), null, "YaRN with mscale != mscale_all_dim (a cos/sin attention factor) is not supported");
                }
                yarn = new StepBuilder.Rope.Yarn(factor, rs.path("original_max_position_embeddings").asLong(), rs.path("beta_fast").asDouble(32),
                        rs.path("beta_slow").asDouble(1));
                if (mscaleAll != 0 && factor > 1) {
                    double m = 0.1 * mscaleAll * Math.log(factor) + 1.0;
                    scale *= m * m;
                }
            }
            boolean v32 = c.modelType().equals("deepseek_v32");
            String method = c.string("topk_method", "noaux_tc");
            if (!method.equals("noaux_tc")) throw new CheckpointException(c.file(), null, "topk_method '" + method + "' is not supported (noaux_tc is)");
            if (!c.string("scoring_func", "sigmoid").equals("sigmoid")) throw new CheckpointException(c.file(), null, "scoring_func must be sigmoid");
            return new Dims(c.integer("hidden_size"), c.integer("num_hidden_layers"), c.integer("num_attention_heads"),
                    c.integer("q_lora_rank", 0), c.integer("kv_lora_rank"), nope, rope, c.integer("v_head_dim"),
                    c.integer("intermediate_size"), c.integer("moe_intermediate_size"), c.integer("n_routed_experts"),
                    c.integer("num_experts_per_tok"), c.integer("n_group", 1), c.integer("topk_group", 1),
                    c.integer("n_shared_experts", 0), c.integer("first_k_dense_replace", 0), c.integer("vocab_size"),
                    c.number("rms_norm_eps"), c.number("routed_scaling_factor", 1.0), c.bool("norm_topk_prob", true),
                    new StepBuilder.Rope(c.number("rope_theta"), rope, true, yarn), scale,
                    v32, v32 ? c.integer("index_n_heads") : 0, v32 ? c.integer("index_head_dim") : 0, v32 ? c.integer("index_topk") : 0,
                    c.integer("num_nextn_predict_layers", 0));
        }
    }

    @Override
    public Graph buildStep(ModelConfig c, WeightTypes types) {
        Dims d = Dims.of(c);
        StepBuilder b = new StepBuilder(c.modelType(), types);
        Value x = b.op(Op.GATHER, "x", b.weight("embed", "model.embed_tokens.weight", d.vocab(), d.hidden()), b.tokens);
        for (int l = 0; l < d.layers(); l++) x = layer(b, d, l, x);
        Value xf = b.norm("final_norm", x, "model.norm.weight", d.eps(), 0);
        return b.finish(xf, b.weight("lm_head", "lm_head.weight", d.vocab(), d.hidden()));
    }

    /** MTP: z = eh_proj([enorm(embed(token)) | hnorm(hidden)]), one decoder layer, shared_head norm and head. */
    @Override
    public Optional<Graph> buildMtp(ModelConfig c, WeightTypes types) {
        Dims d = Dims.of(c);
        if (d.mtpLayers() < 1) return Optional.empty();
        int l = d.layers();
        String p = "model.layers." + l + ".";
        StepBuilder b = new StepBuilder(c.modelType() + "_mtp", types);
        Value hidden = b.input(StepAbi.HIDDEN, TensorType.of(DType.F32, T, d.hidden()));
        Value e = b.op(Op.GATHER, "mtp.embed", b.weight("mtp.embed_w", p + "embed_tokens.weight", d.vocab(), d.hidden()), b.tokens);
        Value en = b.norm("mtp.enorm", e, p + "enorm.weight", d.eps(), 0);
        Value hn = b.norm("mtp.hnorm", hidden, p + "hnorm.weight", d.eps(), 0);
        Value x = b.linear("mtp.eh_proj", b.concat("mtp.eh_in", en, hn, 1), p + "eh_proj.weight", d.hidden());
        x = layer(b, d, l, x);
        Value xf = b.norm("mtp.final_norm", x, p + "shared_head.norm.weight", d.eps(), 0);
        return Optional.of(b.finish(xf, b.weight("mtp.head", p + "shared_head.head.weight", d.vocab(), d.hidden())));
    }

    private static Value layer(StepBuilder b, Dims d, int l, Value x) {
        String p = "model.layers." + l + ".", n = "l" + l + ".";
        Value h = b.norm(n + "attn_in", x, p + "input_layernorm.weight", d.eps(), 0);
        x = b.op(Op.ADD, n + "x_attn", x, attention(b, d, l, p, n, h));
        h = b.norm(n + "mlp_in", x, p + "post_attention_layernorm.weight", d.eps(), 0);
        Value y;
        if (l < d.denseLayers()) {
            y = b.mlp(n + "mlp_", h, p + "mlp.gate_proj.weight", p + "mlp.up_proj.weight", p + "mlp.down_proj.weight", d.inter());
        } else {
            StepBuilder.Router r = router(d, p);
            StepBuilder.Shared shared = d.shared() == 0 ? null : new StepBuilder.Shared(p + "mlp.shared_experts.gate_proj.weight",
                    p + "mlp.shared_experts.up_proj.weight", p + "mlp.shared_experts.down_proj.weight", (long) d.shared() * d.moeInter(), null);
            y = b.moe(n, h, r, StepBuilder.Experts.stacked(p + "mlp.experts.*.gate_proj.weight", p + "mlp.experts.*.up_proj.weight",
                    p + "mlp.experts.*.down_proj.weight", d.moeInter()), shared);
        }
        return b.op(Op.ADD, n + "x_out", x, y);
    }

    /** Sigmoid scores, biased selection within the best groups, unbiased weights renormalized and scaled. */
    static StepBuilder.Router router(ModelConfig c, String layerPrefix) { return router(Dims.of(c), layerPrefix); }

    private static StepBuilder.Router router(Dims d, String p) {
        return new StepBuilder.Router(p + "mlp.gate.weight", d.experts(), d.topK(), true, d.renorm(),
                p + "mlp.gate.e_score_correction_bias", d.groups(), d.topkGroup(), d.routedScaling());
    }

    /** MLA (and, for V3.2, the indexer and sparse attention); returns [T, H * v] after o_proj's input. */
    private static Value attention(StepBuilder b, Dims d, int l, String p, String n, Value h) {
        int heads = d.heads(), qk = d.nope() + d.ropeDim();
        Value q, cq = null;
        if (d.qLora() > 0) {
            cq = b.norm(n + "q_a_normed", b.linear(n + "q_a", h, p + "self_attn.q_a_proj.weight", d.qLora()), p + "self_attn.q_a_layernorm.weight", d.eps(), 0);
            q = b.linear(n + "q", cq, p + "self_attn.q_b_proj.weight", (long) heads * qk);
        } else {
            q = b.linear(n + "q", h, p + "self_attn.q_proj.weight", (long) heads * qk);
        }
        q = b.reshape(n + "q_heads", q, T, heads, qk);
        Value qNope = b.slice(n + "q_nope", q, 2, 0, d.nope());
        Value qPe = b.rope(n + "q_pe", b.slice(n + "q_rope", q, 2, d.nope(), qk), d.rope());
        Value kvA = b.linear(n + "kv_a", h, p + "self_attn.kv_a_proj_with_mqa.weight", d.kvLora() + d.ropeDim());      // [T, C + rope]
        Value ckv = b.norm(n + "c_kv", b.slice(n + "c_kv_raw", kvA, 1, 0, d.kvLora()), p + "self_attn.kv_a_layernorm.weight", d.eps(), 0);
        Value kPe = b.rope(n + "k_pe", b.reshape(n + "k_rope", b.slice(n + "k_rope_flat", kvA, 1, d.kvLora(), d.kvLora() + d.ropeDim()), T, 1, d.ropeDim()), d.rope());
        Value latent = b.concat(n + "latent", b.reshape(n + "c_kv_row", ckv, T, 1, d.kvLora()), kPe, 2);              // [T, 1, C + rope]
        String cacheName = "kv_cache." + l;
        Value cache = b.updated(b.op(Op.KV_WRITE, StepAbi.next(cacheName), b.cache(cacheName, 1, d.kvLora() + d.ropeDim()), latent, b.blockTable(), b.slots, b.positions));
        Value wkvb = b.weight(n + "kv_b", p + "self_attn.kv_b_proj.weight", (long) heads * (d.nope() + d.v()), d.kvLora());  // [H * (nope + v), C]
        Attrs a = Attrs.of("scale", d.scale(), "v_head_dim", (long) d.v());
        Value out;
        if (d.indexer()) {
            Value sel = indexer(b, d, l, p, n, h, cq);
            out = b.op(Op.MLA_ATTENTION_SPARSE, n + "attn", a, qNope, qPe, cache, wkvb, b.blockTable(), b.slots, b.positions, sel);
        } else {
            out = b.op(Op.MLA_ATTENTION, n + "attn", a, qNope, qPe, cache, wkvb, b.blockTable(), b.slots, b.positions);
        }
        return b.linear(n + "attn_out", b.reshape(n + "attn_flat", out, T, (long) heads * d.v()), p + "self_attn.o_proj.weight", d.hidden());
    }

    /** The V3.2 lightning indexer: which earlier positions each token's attention may read. */
    private static Value indexer(StepBuilder b, Dims d, int l, String p, String n, Value h, Value cq) {
        if (cq == null) throw new IllegalArgumentException("the V3.2 indexer needs q_lora_rank");
        String ip = p + "self_attn.indexer.", in = n + "index_";
        int heads = d.indexHeads(), dim = d.indexDim();
        double hadamard = 1.0 / Math.sqrt(dim);
        StepBuilder.Rope rope = d.rope().withInterleaved(false);                  // the indexer's rope is NeoX-style
        Value q = b.reshape(in + "q_heads", b.linear(in + "q", cq, ip + "wq_b.weight", (long) heads * dim), T, heads, dim);
        q = b.op(Op.HADAMARD, in + "q_rot", Attrs.of("scale", hadamard), b.rope(in + "q_pe", q, rope));
        Value k = b.op(Op.LAYER_NORM, in + "k_normed", Attrs.of("eps", d.eps()), b.linear(in + "k", h, ip + "wk.weight", dim),
                b.weight(in + "k_norm_w", ip + "k_norm.weight", dim), b.weight(in + "k_norm_b", ip + "k_norm.bias", dim));
        k = b.op(Op.HADAMARD, in + "k_rot", Attrs.of("scale", hadamard), b.rope(in + "k_pe", b.reshape(in + "k_row", k, T, 1, dim), rope));
        String cacheName = "index_cache." + l;
        Value cache = b.updated(b.op(Op.KV_WRITE, StepAbi.next(cacheName), b.cache(cacheName, 1, dim), k, b.blockTable(), b.slots, b.positions));
        Value w = b.op(Op.SCALE, in + "weights", Attrs.of("factor", 1.0 / Math.sqrt(heads)), b.linear(in + "w", h, ip + "weights_proj.weight", heads));
        return b.op(Op.INDEXER_TOPK, in + "topk", Attrs.of("topk", (long) d.indexTopk(), "scale", hadamard), q, cache, w, b.blockTable(), b.slots, b.positions);
    }
}
