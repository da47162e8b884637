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
import java.util.List;

import static dev.moec.ir.StepAbi.BS;
import static dev.moec.ir.StepAbi.MB;
import static dev.moec.ir.StepAbi.NB;
import static dev.moec.ir.StepAbi.R;
import static dev.moec.ir.StepAbi.S;
import static dev.moec.ir.StepAbi.T;

/**
 * The blocks the family builders share: the step inputs ({@link StepAbi}), state, norms, linears,
 * rotary embedding, GQA attention over a KV cache, SwiGLU MLPs and routed MoE blocks. A family builder
 * reads its config and composes these; value names are prefixed per layer ({@code l3.q}).
 */
final class StepBuilder {
    final GraphBuilder g;
    final Value tokens, positions, slots, logitRows;
    private Value blockTable;                                  // declared with the first paged cache
    private final WeightTypes types;
    private final List<Value> stateOutputs = new ArrayList<>();

    StepBuilder(String name, WeightTypes types) {
        this.g = new GraphBuilder(name);
        this.types = types;
        this.tokens = g.input(StepAbi.TOKENS, TensorType.of(DType.I32, T));
        this.positions = g.input(StepAbi.POSITIONS, TensorType.of(DType.I32, T));
        this.slots = g.input(StepAbi.SLOTS, TensorType.of(DType.I32, T));
        this.logitRows = g.input(StepAbi.LOGIT_ROWS, TensorType.of(DType.I32, R));
    }

    /** Declares a state input; write its new version with {@link #updated}. */
    Value state(String name, Object... dims) {
        return g.input(name, TensorType.of(DType.F32, dims));
    }

    /**
     * Declares a paged per-token cache {@code [NB, BS, rowDims...]} (see {@link StepAbi}); the first one
     * also declares the {@code %block_table} input that addresses them all.
     */
    Value cache(String name, Object... rowDims) {
        blockTable();
        Object[] dims = new Object[rowDims.length + 2];
        dims[0] = NB;
        dims[1] = BS;
        System.arraycopy(rowDims, 0, dims, 2, rowDims.length);
        return state(name, dims);
    }

    /** The {@code %block_table: i32[S, MB]} input of the paged caches. */
    Value blockTable() {
        if (blockTable == null) blockTable = g.input(StepAbi.BLOCK_TABLE, TensorType.of(DType.I32, S, MB));
        return blockTable;
    }

    /** A state's new version: its name must be {@code <state>.next}; it becomes a graph output. */
    Value updated(Value next) {
        stateOutputs.add(next);
        return next;
    }

    Value input(String name, TensorType type) { return g.input(name, type); }

    /** The final norm's output to logits for the requested rows, and the finished graph. */
    Graph finish(Value hidden, Value head) {
        Value rows = g.op(Op.GATHER, "logit_inputs", hidden, logitRows);           // [R, H]
        List<Value> outputs = new ArrayList<>();
        outputs.add(g.op(Op.MATMUL, StepAbi.LOGITS, rows, head));                   // [R, V]
        outputs.addAll(stateOutputs);
        return g.build(outputs);
    }

    // ---- weights -------------------------------------------------------------------------------------

    /** A weight of the given shape; a name with {@code *} stacks per-expert tensors along a new first axis. */
    Value weight(String valueName, String tensor, long... shape) {
        Shape full = Shape.ofSizes(shape);
        TensorType type;
        if (tensor.contains("*")) {
            Shape member = Shape.ofSizes(java.util.Arrays.copyOfRange(shape, 1, shape.length));
            TensorType first = types.resolve(tensor.replace("*", "0"), member);
            for (int e = 1; e < shape[0]; e++) {
                TensorType t = types.resolve(tensor.replace("*", Integer.toString(e)), member);
                if (t.dtype() != first.dtype()) {
                    throw new IllegalArgumentException(tensor.replace("*", Integer.toString(e)) + " is " + t.dtype() + " but expert 0 is " + first.dtype());
                }
            }
            type = new TensorType(first.dtype(), full);
        } else {
            type = types.resolve(tensor, full);
        }
        return g.param(valueName, tensor, type);
    }

    /** v as f32 (a cast node when the weight is stored narrower): for weights used in elementwise math. */
    Value f32(Value v) {
        return v.type().dtype() == DType.F32 ? v : g.op(Op.CAST, v.name() + ".f32", Attrs.of("dtype", "f32"), v);
    }

    // ---- elementary blocks --------------------------------------------------------------------------

    /** RMSNorm over the last dim; {@code offset} 1 for zero-centred (1 + w) weights. */
    Value norm(String name, Value x, String tensor, double eps, double offset) {
        long dim = x.type().shape().last().size();
        Value w = weight(name + ".w", tensor, dim);
        Attrs a = offset == 0 ? Attrs.of("eps", eps) : Attrs.of("eps", eps, "weight_offset", offset);
        return g.op(Op.RMS_NORM, name, a, x, w);
    }

    /**
     * x @ W^T for a Hugging Face Linear weight [out, in]. A weight that an msModelSlim checkpoint quantized
     * stays quantized: W8A8_DYNAMIC is dynamic_quant + quant_matmul with the per-channel weight_scale;
     * W8A8 (static) is static_quant with the per-tensor input_scale/input_offset + quant_matmul_static
     * with quant_bias and deq_scale.
     */
    Value linear(String name, Value x, String tensor, long out) {
        long in = x.type().shape().last().size();
        String q = types.quantization(tensor), base = tensor.endsWith(".weight") ? tensor.substring(0, tensor.length() - ".weight".length()) : tensor;
        return switch (q) {
            case "FLOAT" -> g.op(Op.MATMUL, name, x, weight(name + ".w", tensor, out, in));
            case "W8A8_DYNAMIC" -> {
                Value w = weight(name + ".w", tensor, out, in);                                                     // i8 [out, in]
                Value scale = f32(reshape(name + ".ws_flat", weight(name + ".ws", base + ".weight_scale", out, 1), out));  // [out]
                List<Value> xq = g.ops(Op.DYNAMIC_QUANT, List.of(name + ".xq", name + ".xs"), Attrs.NONE, x);
                yield g.op(Op.QUANT_MATMUL, name, xq.get(0), xq.get(1), w, scale);
            }
            case "W8A8" -> {
                Value w = weight(name + ".w", tensor, out, in);                                                     // i8 [out, in]
                Value inScale = f32(weight(name + ".in_scale", base + ".input_scale", 1));
                Value inOffset = f32(weight(name + ".in_offset", base + ".input_offset", 1));
                Value bias = weight(name + ".qbias", base + ".quant_bias", out);                                   // i32 [out]
                Value deq = f32(weight(name + ".deq", base + ".deq_scale", out));                                   // [out]
                Value xq = g.op(Op.STATIC_QUANT, name + ".xq", x, inScale, inOffset);
                yield g.op(Op.QUANT_MATMUL_STATIC, name, xq, w, bias, deq);
            }
            default -> throw new IllegalArgumentException("tensor " + tensor + " is quantized as " + q
                    + ", which moec does not import for a dense Linear (it reads FLOAT, W8A8 and W8A8_DYNAMIC; W4A8_DYNAMIC for experts)");
        };
    }

    Value reshape(String name, Value x, Object... dims) {
        return g.op(Op.RESHAPE, name, Attrs.of("shape", Shape.of(dims)), x);
    }

    Value slice(String name, Value x, int axis, long start, long end) {
        return g.op(Op.SLICE, name, Attrs.of("axis", (long) axis, "start", start, "end", end), x);
    }

    Value concat(String name, Value a, Value b, int axis) {
        return g.op(Op.CONCAT, name, Attrs.of("axis", (long) axis), a, b);
    }

    Value op(Op op, String name, Value... operands) { return g.op(op, name, operands); }

    Value op(Op op, String name, Attrs attrs, Value... operands) { return g.op(op, name, attrs, operands); }

    // ---- attention ------------------------------------------------------------------------------------

    /** Rotary settings of a family: plain, partial, interleaved, or YaRN-scaled. */
    record Rope(double theta, long rotaryDim, boolean interleaved, Yarn yarn) {
        record Yarn(double factor, long originalMax, double betaFast, double betaSlow) {}

        Attrs attrs() {
            List<Object> kv = new ArrayList<>(List.of("theta", theta, "rotary_dim", rotaryDim));
            if (interleaved) kv.addAll(List.of("interleaved", true));
            if (yarn != null) {
                kv.addAll(List.of("yarn_factor", yarn.factor(), "yarn_original_max", yarn.originalMax(),
                        "yarn_beta_fast", yarn.betaFast(), "yarn_beta_slow", yarn.betaSlow()));
            }
            return Attrs.of(kv.toArray());
        }

        Rope withInterleaved(boolean i) { return new Rope(theta, rotaryDim, i, yarn); }
    }

    Value rope(String name, Value x, Rope rope) { return g.op(Op.ROPE, name, rope.attrs(), x, positions); }

    /**
     * Causal GQA over this layer's KV cache: q [T, H, D] and k, v [T, KVH, D] (already normed and rotated)
     * are written to {@code k_cache.l} / {@code v_cache.l} and attended; returns [T, H * Dv].
     */
    Value gqa(String n, int layer, Value q, Value k, Value v, double scale) {
        long kvh = k.type().shape().dim(1).size(), hd = k.type().shape().last().size(), vd = v.type().shape().last().size();
        Value kc = updated(g.op(Op.KV_WRITE, StepAbi.next(StepAbi.kCache(layer)), cache(StepAbi.kCache(layer), kvh, hd), k, blockTable(), slots, positions));
        Value vc = updated(g.op(Op.KV_WRITE, StepAbi.next(StepAbi.vCache(layer)), cache(StepAbi.vCache(layer), kvh, vd), v, blockTable(), slots, positions));
        Value a = g.op(Op.ATTENTION, n + "attn", Attrs.of("scale", scale), q, kc, vc, blockTable(), slots, positions);
        long heads = q.type().shape().dim(1).size();
        return reshape(n + "attn_flat", a, T, heads * vd);
    }

    // ---- feed-forward -------------------------------------------------------------------------------

    /** SwiGLU MLP: down(silu(gate(x)) * up(x)) with the three Linear weights named by prefix + gate/up/down. */
    Value mlp(String n, Value x, String gate, String up, String down, long inter) {
        long hidden = x.type().shape().last().size();
        Value gv = linear(n + "gate", x, gate, inter);
        Value uv = linear(n + "up", x, up, inter);
        Value act = g.op(Op.MUL, n + "act", g.op(Op.SILU, n + "silu", gv), uv);
        return linear(n + "down", act, down, hidden);
    }

    /**
     * How a family routes tokens: softmax or sigmoid scores, an optional selection bias, expert groups,
     * renormalization and routed scaling.
     */
    record Router(String tensor, long experts, long topK, boolean sigmoid, boolean renorm, String biasTensor,
                  long groups, long keepGroups, double routedScaling) {}

    /** Expert weights: per-expert stacks ({@code *} patterns) or one fused gate_up tensor [E, 2I, H]. */
    record Experts(String gate, String up, String down, String gateUpFused, long intermediate) {
        static Experts stacked(String gate, String up, String down, long inter) { return new Experts(gate, up, down, null, inter); }
        static Experts fused(String gateUp, String down, long inter) { return new Experts(null, null, down, gateUp, inter); }
    }

    /** A shared expert beside the routed ones, optionally scaled by sigmoid(x @ gate^T) (Qwen3-Next). */
    record Shared(String gate, String up, String down, long intermediate, String gateTensor) {}

    /** The routed MoE block (router, top-k, experts) plus a shared expert if the family has one. */
    Value moe(String n, Value x, Router r, Experts ex, Shared shared) {
        long hidden = x.type().shape().last().size();
        Value logits = linear(n + "router", x, r.tensor(), r.experts());                  // [T, E]
        Value weights, experts;
        if (!r.sigmoid()) {
            Value p = g.op(Op.SOFTMAX, n + "router_probs", logits);
            List<Value> top = g.ops(Op.TOPK, List.of(n + "topk_weights", n + "topk_experts"), Attrs.of("k", r.topK()), p);
            weights = top.get(0);
            experts = top.get(1);
        } else {
            // sigmoid scores choose (plus the balancing bias, selection only); the unbiased scores weigh.
            Value scores = g.op(Op.SIGMOID, n + "router_scores", logits);
            Value choice = r.biasTensor() == null ? scores
                    : g.op(Op.ADD, n + "router_choice", scores, f32(weight(n + "router_bias", r.biasTensor(), r.experts())));
            if (r.groups() > 1) {
                choice = g.op(Op.GROUP_LIMIT, n + "router_groups", Attrs.of("groups", r.groups(), "keep", r.keepGroups(), "select", "top2_sum"), choice);
            }
            experts = g.ops(Op.TOPK, List.of(n + "topk_choice", n + "topk_experts"), Attrs.of("k", r.topK()), choice).get(1);
            weights = g.op(Op.TAKE_ALONG, n + "topk_weights", scores, experts);
        }
        if (r.renorm()) weights = g.op(Op.RENORM, n + "route_weights", weights);
        if (r.routedScaling() != 1.0) weights = g.op(Op.SCALE, n + "route_scaled", Attrs.of("factor", r.routedScaling()), weights);

        long e = r.experts(), inter = ex.intermediate();
        String quant = ex.gate() == null ? "FLOAT" : types.quantization(ex.gate().replace("*", "0"));
        if (!quant.equals("FLOAT")) {
            if (!quant.equals("W8A8_DYNAMIC") && !quant.equals("W4A8_DYNAMIC")) {
                throw new IllegalArgumentException("experts " + ex.gate() + " are quantized as " + quant + "; moec imports W8A8_DYNAMIC and W4A8_DYNAMIC experts");
            }
            Value y = g.op(Op.MOE_EXPERTS_QUANT, n + "moe_out", x, weights, experts,
                    weight(n + "experts_gate", ex.gate(), e, inter, hidden), expertScales(n + "experts_gate_s", ex.gate(), e, inter),
                    weight(n + "experts_up", ex.up(), e, inter, hidden), expertScales(n + "experts_up_s", ex.up(), e, inter),
                    weight(n + "experts_down", ex.down(), e, hidden, inter), expertScales(n + "experts_down_s", ex.down(), e, hidden));
            return shared == null ? y : g.op(Op.ADD, n + "ffn_out", y, sharedExpert(n, x, shared));
        }
        Value wg, wu;
        if (ex.gateUpFused() != null) {
            Value gu = weight(n + "experts_gate_up", ex.gateUpFused(), e, 2 * inter, hidden);   // [E, 2I, H]
            wg = slice(n + "experts_gate", gu, 1, 0, inter);
            wu = slice(n + "experts_up", gu, 1, inter, 2 * inter);
        } else {
            wg = weight(n + "experts_gate", ex.gate(), e, inter, hidden);                         // [E, I, H]
            wu = weight(n + "experts_up", ex.up(), e, inter, hidden);                             // [E, I, H]
        }
        Value wd = weight(n + "experts_down", ex.down(), e, hidden, inter);                       // [E, H, I]
        Value y = g.op(Op.MOE_EXPERTS, n + "moe_out", x, weights, experts, wg, wu, wd);
        return shared == null ? y : g.op(Op.ADD, n + "ffn_out", y, sharedExpert(n, x, shared));
    }

    private Value sharedExpert(String n, Value x, Shared shared) {
        Value s = mlp(n + "shared_", x, shared.gate(), shared.up(), shared.down(), shared.intermediate());
        if (shared.gateTensor() == null) return s;
        Value gate = g.op(Op.SIGMOID, n + "shared_gate", linear(n + "shared_gate_logit", x, shared.gateTensor(), 1));  // [T, 1]
        return g.op(Op.MUL, n + "shared_gated", s, gate);
    }

    /** The per-channel scales of quantized expert weights, {@code <weight>_scale} [out, 1] per expert, as f32[E, out]. */
    private Value expertScales(String name, String weightPattern, long experts, long out) {
        String pattern = weightPattern.substring(0, weightPattern.length() - ".weight".length()) + ".weight_scale";
        return f32(reshape(name + "_flat", weight(name, pattern, experts, out, 1), experts, out));
    }
}
