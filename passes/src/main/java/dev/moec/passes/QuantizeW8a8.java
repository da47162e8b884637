package dev.moec.passes;

import dev.moec.ir.Attrs;
import dev.moec.ir.Graph;
import dev.moec.ir.Node;
import dev.moec.ir.Op;
import dev.moec.ir.StepAbi;
import dev.moec.ir.Value;

import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * {@code quantize-w8a8}: W8A8 dynamic quantization. Every Linear on a float weight (except the lm_head and
 * the routers, which stay in float as the released W8A8 models keep them) takes int8 per-channel weights
 * and int8 per-token activations:
 * <pre>
 *   matmul(x, W)         ->  q, s = weight_quant(W){8}; xq, xs = dynamic_quant(x); quant_matmul(xq, xs, q, s)
 *   moe_experts(...)     ->  moe_experts_quant(..., weight_quant(Wg), weight_quant(Wu), weight_quant(Wd))
 *   add_rms_norm -> dynamic_quant (its only reader)  ->  add_rms_norm_dynamic_quant
 * </pre>
 * One dynamic_quant serves all Linears reading the same activation (q, k and v share one).
 */
public final class QuantizeW8a8 implements Pass {
    @Override public String name() { return "quantize-w8a8"; }

    @Override
    public Graph run(Graph g) {
        Rewrite rw = new Rewrite(g);
        Map<Value, List<Value>> quantized = new HashMap<>();        // activation -> (xq, xs)
        for (Node n : g.nodes()) {
            if (n.op() == Op.MATMUL && quantizable(rw, n)) {
                Value x = rw.map(n.operand(0));
                List<Value> xq = quantized.computeIfAbsent(x, v -> activation(rw, g, v));
                List<Value> w = rw.emit(Op.WEIGHT_QUANT, List.of(n.operand(1).name() + ".q8", n.operand(1).name() + ".s8"), Attrs.of("bits", 8L), n.operand(1));
                rw.release(n.result());
                rw.replace(n.result(), rw.emit(Op.QUANT_MATMUL, n.result().name(), Attrs.NONE, xq.get(0), xq.get(1), w.get(0), w.get(1)));
                rw.drop(n);
            } else if (n.op() == Op.MOE_EXPERTS) {
                QuantizeW4a8.quantizeExperts(rw, n, 8);
            } else {
                rw.keep(n);
            }
        }
        return rw.finish();
    }

    /** A Linear with a float parameter weight that is neither the lm_head nor a router. */
    static boolean quantizable(Rewrite rw, Node n) {
        return rw.constant(n.operand(1)) && n.operand(1).type().dtype().isFloating() && !headOrRouter(rw, n);
    }

    /** A Linear that is the lm_head, or a router: read by a softmax, a sigmoid or a gating op. */
    static boolean headOrRouter(Rewrite rw, Node n) {
        if (n.result().name().equals(StepAbi.LOGITS)) return true;
        for (Node u : rw.users(n.result())) {
            if (u.op() == Op.SOFTMAX || u.op() == Op.SIGMOID || u.op() == Op.MOE_GATING_TOPK || u.op() == Op.MOE_GATING_TOPK_SOFTMAX) return true;
        }
        return false;
    }

    /**
     * (xq, xs) for an activation: folded into the add_rms_norm that produced it when that norm's output is
     * read by nothing but quantized Linears; otherwise a dynamic_quant of its own.
     */
    private static List<Value> activation(Rewrite rw, Graph g, Value x) {
        Node producer = rw.producer(x);
        if (producer != null && producer.op() == Op.ADD_RMS_NORM && x.equals(producer.results().get(0))
                && rw.users(x).stream().allMatch(u -> u.op() == Op.MATMUL && quantizable(rw, u) && u.operand(0).equals(x))) {
            List<Value> r = rw.emit(Op.ADD_RMS_NORM_DYNAMIC_QUANT, List.of(x.name() + ".q", producer.results().get(1).name() + ".q", x.name() + ".scale"),
                    producer.attrs(), producer.operands().toArray(Value[]::new));
            rw.replace(producer.results().get(1), r.get(1));     // the residual reads the fused op's sum
            return List.of(r.get(0), r.get(2));
        }
        return rw.emit(Op.DYNAMIC_QUANT, List.of(x.name() + ".q", x.name() + ".scale"), Attrs.NONE, x);
    }

}
