package dev.moec.passes;

import dev.moec.ir.Attrs;
import dev.moec.ir.Graph;
import dev.moec.ir.Node;
import dev.moec.ir.Op;
import dev.moec.ir.Value;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * {@code fuse-linears}: Linears that read the same activation become one matmul over their weights
 * concatenated by output channel, and each old result a slice of its output (q, k and v; a dense MLP's
 * gate and up; MLA's q_a and kv_a), as the serving stacks' fused QKV and gate-up Linears are.
 * <pre>
 *   q = matmul(x, Wq); k = matmul(x, Wk); v = matmul(x, Wv)
 *     ->  qkv = matmul(x, [Wq | Wk | Wv]); q, k, v = slice(qkv) along its last axis
 *   quant_matmul(xq, xs, Wq, Sq), ... (one dynamic quantization, W8A8)
 *     ->  quant_matmul(xq, xs, [Wq | Wk | Wv], [Sq | Sk | Sv]), sliced the same way
 * </pre>
 * Each output channel is the same dot product of the same rows, so the values do not change; a decode
 * step makes one launch of the joined weight where it made one a Linear, each with its own fork, tail and
 * start of a stream. Fused only where every weight is a parameter or computed from parameters alone (the
 * concatenations fold into packed weights), of one dtype and width; the lm_head and the routers are left
 * alone. The joined matmul stands where the group's first Linear stood, its activation defined there; the
 * weight transforms (computed from parameters alone) move to the front of the graph so its weights are too.
 *
 * <p>Not in the default pipeline: a decode step of one token reads each slice as a view of the joined
 * result ({@code KernelGraph#withSliceViews}), one of eight copies it (a strided slice), and in one
 * process against the unfused artifact ({@code moec bench decode --versus}, W8A8 bench model, views
 * and a pre-touched heap) the joined step ran at the unjoined one's speed: batch 1 1.001, batch 8 1.002
 * and 0.985. Run it with {@code moec compile --passes}, after the quantization pass (it joins
 * quant_matmuls that share one dynamic quantization).
 */
public final class FuseLinears implements Pass {
    @Override public String name() { return "fuse-linears"; }

    @Override
    public Graph run(Graph g) {
        Rewrite rw = new Rewrite(g);
        Map<List<Value>, List<Node>> byInput = new LinkedHashMap<>();
        for (Node n : g.nodes()) {
            if (fusable(rw, n)) byInput.computeIfAbsent(activation(n), k -> new ArrayList<>()).add(n);
        }
        Map<Node, List<Node>> groupAtFirst = new HashMap<>();
        Set<Node> fused = new HashSet<>();
        for (List<Node> group : byInput.values()) {
            List<Node> same = group.stream().filter(n -> sameWeightKind(n, group.getFirst())).toList();
            if (same.size() < 2) continue;
            groupAtFirst.put(same.getFirst(), same);
            fused.addAll(same);
        }
        if (fused.isEmpty()) return g;
        // Weight transforms (a weight_quant, a concatenation of parameters) go first, so every weight of a
        // group is there where its first Linear stands; they read parameters alone, so any place is theirs.
        List<Node> rest = new ArrayList<>();
        for (Node n : g.nodes()) {
            if (!fused.contains(n) && n.operands().stream().allMatch(rw::constant)) rw.keep(n);
            else rest.add(n);
        }
        for (Node n : rest) {
            if (!fused.contains(n)) {
                rw.keep(n);
                continue;
            }
            List<Node> group = groupAtFirst.get(n);
            if (group != null) emit(rw, group);
            rw.drop(n);
        }
        return rw.finish();
    }

    /** The joined matmul of a group, at the place of its first Linear, and a slice for each old result. */
    private static void emit(Rewrite rw, List<Node> group) {
        Node first = group.getFirst();
        boolean quant = first.op() == Op.QUANT_MATMUL;
        int w = weightIndex(first);
        String base = first.result().name() + ".fused";
        Value weight = first.operand(w), scale = quant ? first.operand(3) : null;
        for (Node n : group.subList(1, group.size())) {
            weight = rw.emit(Op.CONCAT, base + ".w", Attrs.of("axis", 0L), weight, n.operand(w));                   // [N1 + N2, K]
            if (quant) scale = rw.emit(Op.CONCAT, base + ".s", Attrs.of("axis", 0L), scale, n.operand(3));          // [N1 + N2]
        }
        Value y = quant ? rw.emit(Op.QUANT_MATMUL, base, Attrs.NONE, first.operand(0), first.operand(1), weight, scale)
                : rw.emit(Op.MATMUL, base, Attrs.NONE, first.operand(0), weight);
        long axis = y.type().rank() - 1, start = 0;
        for (Node n : group) {
            long width = n.operand(w).type().shape().dim(0).size();
            rw.release(n.result());
            rw.replace(n.result(), rw.emit(Op.SLICE, n.result().name(), Attrs.of("axis", axis, "start", start, "end", start + width), y));
            start += width;
        }
    }

    /** A matmul or quant_matmul with a constant 2-D weight of fixed width, not the lm_head and not read by a router's softmax or gating. */
    private static boolean fusable(Rewrite rw, Node n) {
        if (n.op() != Op.MATMUL && n.op() != Op.QUANT_MATMUL) return false;
        Value weight = n.operand(weightIndex(n));
        if (!rw.constant(weight) || weight.type().rank() != 2 || !weight.type().shape().dim(0).isFixed()) return false;
        if (n.op() == Op.QUANT_MATMUL && !rw.constant(n.operand(3))) return false;
        return !QuantizeW8a8.headOrRouter(rw, n);
    }

    /** The operand that is a Linear's weight: quant_matmul(x, x_scale, weight, w_scale), matmul(x, weight). */
    private static int weightIndex(Node n) { return n.op() == Op.QUANT_MATMUL ? 2 : 1; }

    /** What the Linears of a group share: the activation (and for W8A8 its scale), with the op. */
    private static List<Value> activation(Node n) {
        return n.op() == Op.QUANT_MATMUL ? List.of(n.operand(0), n.operand(1)) : List.of(n.operand(0));
    }

    /** The same op, weight dtype and width (columns), and for W8A8 the same scale dtype. */
    private static boolean sameWeightKind(Node n, Node first) {
        int w = weightIndex(n);
        if (n.op() != first.op()) return false;
        if (!n.operand(w).type().dtype().equals(first.operand(w).type().dtype())) return false;
        if (!n.operand(w).type().shape().dim(1).equals(first.operand(w).type().shape().dim(1))) return false;
        return n.op() != Op.QUANT_MATMUL || n.operand(3).type().dtype().equals(first.operand(3).type().dtype());
    }
}
