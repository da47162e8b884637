package dev.moec.frontend.arch;

import dev.moec.ir.Attrs;
import dev.moec.ir.DType;
import dev.moec.ir.Graph;
import dev.moec.ir.GraphBuilder;
import dev.moec.ir.Op;
import dev.moec.ir.Shape;
import dev.moec.ir.StepAbi;
import dev.moec.ir.TensorType;
import dev.moec.ir.Value;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import static dev.moec.ir.StepAbi.L;
import static dev.moec.ir.StepAbi.R;
import static dev.moec.ir.StepAbi.S;
import static dev.moec.ir.StepAbi.T;

/**
 * Qwen3-MoE ({@code model_type: qwen3_moe}, Qwen3MoeForCausalLM): pre-norm decoder, GQA with explicit
 * head_dim, per-head q/k RMSNorm before NeoX RoPE, softmax top-k router with optional renormalization,
 * SwiGLU experts, untied lm_head. A layer is dense instead when it is listed in {@code mlp_only_layers}
 * or {@code (layer + 1) % decoder_sparse_step != 0}.
 */
public final class Qwen3Moe implements Architecture {
    @Override public String modelType() { return "qwen3_moe"; }

    /** The config values this family reads. */
    public record Dims(int hidden, int layers, int heads, int kvHeads, int headDim, int experts, int topK,
                       int moeIntermediate, int intermediate, int vocab, double eps, double ropeTheta,
                       boolean normTopK, boolean tied, Set<Integer> denseLayers) {
        public static Dims of(ModelConfig c) {
            int layers = c.integer("num_hidden_layers");
            int heads = c.integer("num_attention_heads");
            int hidden = c.integer("hidden_size");
            int step = c.integer("decoder_sparse_step", 1);
            int experts = c.integer("num_experts", 0);
            Set<Integer> dense = new HashSet<>();
            if (c.has("mlp_only_layers")) c.json().get("mlp_only_layers").forEach(n -> dense.add(n.asInt()));
            for (int l = 0; l < layers; l++) if (experts == 0 || (l + 1) % step != 0) dense.add(l);
            return new Dims(hidden, layers, heads, c.integer("num_key_value_heads", heads),
                    c.has("head_dim") ? c.integer("head_dim") : hidden / heads,
                    experts, c.integer("num_experts_per_tok", 0), c.integer("moe_intermediate_size", 0),
                    c.integer("intermediate_size", 0), c.integer("vocab_size"), c.number("rms_norm_eps"),
                    c.number("rope_theta"), c.bool("norm_topk_prob", false), c.bool("tie_word_embeddings", false),
                    Set.copyOf(dense));
        }
    }

    @Override
    public Graph buildStep(ModelConfig config, WeightTypes weights) {
        Dims d = Dims.of(config);
        GraphBuilder g = new GraphBuilder("qwen3_moe");
        Value tokens = g.input(StepAbi.TOKENS, TensorType.of(DType.I32, T));
        Value positions = g.input(StepAbi.POSITIONS, TensorType.of(DType.I32, T));
        Value slots = g.input(StepAbi.SLOTS, TensorType.of(DType.I32, T));
        Value logitRows = g.input(StepAbi.LOGIT_ROWS, TensorType.of(DType.I32, R));
        TensorType cacheType = TensorType.of(DType.F32, S, L, d.kvHeads(), d.headDim());
        List<Value> kCaches = new ArrayList<>(), vCaches = new ArrayList<>();
        for (int l = 0; l < d.layers(); l++) {
            kCaches.add(g.input(StepAbi.kCache(l), cacheType));
            vCaches.add(g.input(StepAbi.vCache(l), cacheType));
        }
        Weights w = new Weights(g, weights);

        Value embed = w.get("embed", "model.embed_tokens.weight", d.vocab(), d.hidden());   // [V, H]
        Value x = g.op(Op.GATHER, "x", embed, tokens);                                    // [T, H]
        List<Value> outputs = new ArrayList<>();
        List<Value> newCaches = new ArrayList<>();
        Attrs eps = Attrs.of("eps", d.eps());
        for (int l = 0; l < d.layers(); l++) {
            String p = "model.layers." + l + ".", n = "l" + l + ".";
            // Attention: q/k/v projections, per-head q/k norm, rope, cache write, causal GQA.
            Value h = g.op(Op.RMS_NORM, n + "attn_in", eps, x, w.get(n + "ln1", p + "input_layernorm.weight", d.hidden()));
            Value q = g.op(Op.MATMUL, n + "q", h, w.get(n + "wq", p + "self_attn.q_proj.weight", d.heads() * d.headDim(), d.hidden()));
            Value k = g.op(Op.MATMUL, n + "k", h, w.get(n + "wk", p + "self_attn.k_proj.weight", d.kvHeads() * d.headDim(), d.hidden()));
            Value v = g.op(Op.MATMUL, n + "v", h, w.get(n + "wv", p + "self_attn.v_proj.weight", d.kvHeads() * d.headDim(), d.hidden()));
            q = g.op(Op.RESHAPE, n + "q_heads", Attrs.of("shape", Shape.of(T, d.heads(), d.headDim())), q);
            k = g.op(Op.RESHAPE, n + "k_heads", Attrs.of("shape", Shape.of(T, d.kvHeads(), d.headDim())), k);
            v = g.op(Op.RESHAPE, n + "v_heads", Attrs.of("shape", Shape.of(T, d.kvHeads(), d.headDim())), v);
            q = g.op(Op.RMS_NORM, n + "q_normed", eps, q, w.get(n + "q_norm", p + "self_attn.q_norm.weight", d.headDim()));
            k = g.op(Op.RMS_NORM, n + "k_normed", eps, k, w.get(n + "k_norm", p + "self_attn.k_norm.weight", d.headDim()));
            Attrs rope = Attrs.of("theta", d.ropeTheta(), "rotary_dim", (long) d.headDim());
            q = g.op(Op.ROPE, n + "q_rot", rope, q, positions);
            k = g.op(Op.ROPE, n + "k_rot", rope, k, positions);
            Value kc = g.op(Op.KV_WRITE, StepAbi.next(StepAbi.kCache(l)), kCaches.get(l), k, slots, positions);
            Value vc = g.op(Op.KV_WRITE, StepAbi.next(StepAbi.vCache(l)), vCaches.get(l), v, slots, positions);
            newCaches.add(kc);
            newCaches.add(vc);
            Value a = g.op(Op.ATTENTION, n + "attn", Attrs.of("scale", 1.0 / Math.sqrt(d.headDim())), q, kc, vc, slots, positions);
            a = g.op(Op.RESHAPE, n + "attn_flat", Attrs.of("shape", Shape.of(T, d.heads() * d.headDim())), a);
            Value o = g.op(Op.MATMUL, n + "attn_out", a, w.get(n + "wo", p + "self_attn.o_proj.weight", d.hidden(), d.heads() * d.headDim()));
            x = g.op(Op.ADD, n + "x_attn", x, o);

            // Feed-forward: a routed MoE block, or a dense SwiGLU MLP.
            h = g.op(Op.RMS_NORM, n + "mlp_in", eps, x, w.get(n + "ln2", p + "post_attention_layernorm.weight", d.hidden()));
            Value y = d.denseLayers().contains(l) ? denseMlp(g, w, d, h, p, n) : moe(g, w, d, h, p, n);
            x = g.op(Op.ADD, n + "x_out", x, y);
        }
        Value xf = g.op(Op.RMS_NORM, "final_norm", eps, x, w.get("norm", "model.norm.weight", d.hidden()));
        Value rows = g.op(Op.GATHER, "logit_inputs", xf, logitRows);                     // [R, H]
        Value head = d.tied() ? embed : w.get("lm_head", "lm_head.weight", d.vocab(), d.hidden());
        outputs.add(g.op(Op.MATMUL, StepAbi.LOGITS, rows, head));                         // [R, V]
        outputs.addAll(newCaches);
        return g.build(outputs);
    }

    private static Value moe(GraphBuilder g, Weights w, Dims d, Value h, String p, String n) {
        Value router = g.op(Op.MATMUL, n + "router_logits", h, w.get(n + "router", p + "mlp.gate.weight", d.experts(), d.hidden()));
        Value probs = g.op(Op.SOFTMAX, n + "router_probs", router);
        List<Value> top = g.ops(Op.TOPK, List.of(n + "topk_weights", n + "topk_experts"), Attrs.of("k", (long) d.topK()), probs);
        Value weights = d.normTopK() ? g.op(Op.RENORM, n + "route_weights", top.get(0)) : top.get(0);
        String e = p + "mlp.experts.*.";
        return g.op(Op.MOE_EXPERTS, n + "moe_out", h, weights, top.get(1),
                w.get(n + "experts_gate", e + "gate_proj.weight", d.experts(), d.moeIntermediate(), d.hidden()),   // [E, I, H]
                w.get(n + "experts_up", e + "up_proj.weight", d.experts(), d.moeIntermediate(), d.hidden()),       // [E, I, H]
                w.get(n + "experts_down", e + "down_proj.weight", d.experts(), d.hidden(), d.moeIntermediate())); // [E, H, I]
    }

    private static Value denseMlp(GraphBuilder g, Weights w, Dims d, Value h, String p, String n) {
        Value gate = g.op(Op.MATMUL, n + "mlp_gate", h, w.get(n + "w_gate", p + "mlp.gate_proj.weight", d.intermediate(), d.hidden()));
        Value up = g.op(Op.MATMUL, n + "mlp_up", h, w.get(n + "w_up", p + "mlp.up_proj.weight", d.intermediate(), d.hidden()));
        Value act = g.op(Op.MUL, n + "mlp_act", g.op(Op.SILU, n + "mlp_silu", gate), up);
        return g.op(Op.MATMUL, n + "mlp_out", act, w.get(n + "w_down", p + "mlp.down_proj.weight", d.hidden(), d.intermediate()));
    }
}
