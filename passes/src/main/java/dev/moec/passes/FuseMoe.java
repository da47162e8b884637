package dev.moec.passes;

import dev.moec.ir.Attrs;
import dev.moec.ir.Graph;
import dev.moec.ir.Node;
import dev.moec.ir.Op;
import dev.moec.ir.Value;

import java.util.List;

/**
 * {@code fuse-moe}: the routed experts become the Ascend MoE chain: dispatch the (token, choice) rows sorted
 * by expert, one grouped matmul over the concatenated gate and up weights, SwiGLU, one grouped matmul for
 * down, and the weighted combine back into token order. A shared expert stays alongside, untouched.
 * <pre>
 *   moe_experts(x, w, e, Wg, Wu, Wd)  ->  xe, rows, counts = moe_dispatch(x, e)
 *                                         y = moe_combine(gmm(swiglu(gmm(xe, [Wg | Wu], counts)), Wd, counts), rows, w)
 *   moe_experts_quant(...)            ->  xq, xs, rows, counts = moe_dispatch_quant(x, e), then the same with
 *                                         grouped_quant_matmul, and SwiGLU and the dynamic quantization of its rows
 *                                         for down as one swiglu_quant
 * </pre>
 * The quantized dispatch quantizes each token once, as aclnnMoeInitRoutingV3 (quant_mode 1) and MC2's dispatch
 * (quant_mode 2) do, where a dynamic_quant after the dispatch quantized each token's K rows; swiglu_quant
 * is aclnnSwiGluQuant, the operator the Ascend stacks put between the two grouped matmuls (one launch
 * where swiglu and dynamic_quant were two, the f32 activations never written).
 * The weight concatenations are parameter-only; the backend folds them into packed weights.
 */
public final class FuseMoe implements Pass {
    @Override public String name() { return "fuse-moe"; }

    @Override
    public Graph run(Graph g) {
        Rewrite rw = new Rewrite(g);
        for (Node n : g.nodes()) {
            if (n.op() != Op.MOE_EXPERTS && n.op() != Op.MOE_EXPERTS_QUANT) {
                rw.keep(n);
                continue;
            }
            boolean quant = n.op() == Op.MOE_EXPERTS_QUANT;
            String p = n.result().name() + ".";
            Value x = n.operand(0), weights = n.operand(1), experts = n.operand(2);
            long e = n.operand(3).type().shape().dim(0).size();
            Value y, rows;
            if (!quant) {
                List<Value> d = rw.emit(Op.MOE_DISPATCH, List.of(p + "rows_x", p + "rows", p + "counts"), Attrs.of("num_experts", e), x, experts);
                rows = d.get(1);
                Value counts = d.get(2);
                Value gateUp = rw.emit(Op.CONCAT, p + "w_gate_up", Attrs.of("axis", 1L), n.operand(3), n.operand(4));   // [E, 2I, H]
                Value h = rw.emit(Op.GROUPED_MATMUL, p + "gate_up", Attrs.NONE, d.get(0), gateUp, counts);
                Value a = rw.emit(Op.SWIGLU, p + "act", Attrs.NONE, h);
                y = rw.emit(Op.GROUPED_MATMUL, p + "down", Attrs.NONE, a, n.operand(5), counts);
            } else {
                List<Value> d = rw.emit(Op.MOE_DISPATCH_QUANT, List.of(p + "rows_xq", p + "rows_xs", p + "rows", p + "counts"), Attrs.of("num_experts", e), x, experts);
                rows = d.get(2);
                Value counts = d.get(3);
                Value gateUp = rw.emit(Op.CONCAT, p + "w_gate_up", Attrs.of("axis", 1L), n.operand(3), n.operand(5));   // [E, 2I, H]
                Value gateUpScale = rw.emit(Op.CONCAT, p + "s_gate_up", Attrs.of("axis", 1L), n.operand(4), n.operand(6)); // [E, 2I]
                Value h = rw.emit(Op.GROUPED_QUANT_MATMUL, p + "gate_up", Attrs.NONE, d.get(0), d.get(1), gateUp, gateUpScale, counts);
                List<Value> aq = rw.emit(Op.SWIGLU_QUANT, List.of(p + "act_q", p + "act_s"), Attrs.NONE, h);
                y = rw.emit(Op.GROUPED_QUANT_MATMUL, p + "down", Attrs.NONE, aq.get(0), aq.get(1), n.operand(7), n.operand(8), counts);
            }
            rw.release(n.result());
            rw.replace(n.result(), rw.emit(Op.MOE_COMBINE, n.result().name(), Attrs.NONE, y, rows, weights));
            rw.drop(n);
        }
        return rw.finish();
    }
}
