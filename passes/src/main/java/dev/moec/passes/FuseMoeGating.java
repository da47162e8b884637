package dev.moec.passes;

import dev.moec.ir.Attrs;
import dev.moec.ir.Graph;
import dev.moec.ir.Node;
import dev.moec.ir.Op;
import dev.moec.ir.Value;

import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * {@code fuse-moe-gating}: a router's chain of small ops becomes one Ascend gating kernel.
 * <pre>
 *   softmax -> topk{k} [-> renorm]                                  ->  moe_gating_topk_softmax{k, renorm}
 *   s = sigmoid(r); c = s + bias [-> group_limit]; e = topk(c).1;
 *   take_along(s, e) -> renorm [-> scale{f}]                          ->  moe_gating_topk(r, bias){sigmoid, groups, renorm, routed_scaling f}
 * </pre>
 * Only chains whose intermediate values nothing else reads are fused.
 */
public final class FuseMoeGating implements Pass {
    @Override public String name() { return "fuse-moe-gating"; }

    @Override
    public Graph run(Graph g) {
        Rewrite rw = new Rewrite(g);
        Set<Node> consumed = new HashSet<>();
        for (Node n : g.nodes()) {
            if (consumed.contains(n)) {
                rw.drop(n);
                continue;
            }
            if (n.op() == Op.TOPK && (softmaxChain(rw, n, consumed) || sigmoidChain(rw, n, consumed))) continue;
            rw.keep(n);
        }
        return rw.finish();
    }

    /** p = softmax(r); w, e = topk(p) [; w' = renorm(w)]. Emitted at the topk. */
    private static boolean softmaxChain(Rewrite rw, Node topk, Set<Node> consumed) {
        Node softmax = rw.producer(topk.operand(0));
        if (softmax == null || softmax.op() != Op.SOFTMAX || !rw.onlyUser(softmax.result(), topk) || softmax.result().type().rank() != 2) return false;
        Value w = topk.results().get(0);
        List<Node> wUsers = rw.users(w);
        Node renorm = wUsers.size() == 1 && wUsers.getFirst().op() == Op.RENORM && !rw.graph().outputs().contains(w) ? wUsers.getFirst() : null;
        Value finalWeights = renorm != null ? renorm.result() : w;
        rw.release(finalWeights);
        rw.release(topk.results().get(1));
        List<Value> r = rw.emit(Op.MOE_GATING_TOPK_SOFTMAX, List.of(finalWeights.name(), topk.results().get(1).name()),
                Attrs.of("k", topk.attrs().i("k"), "renorm", renorm != null), softmax.operand(0));
        rw.replace(finalWeights, r.get(0));
        rw.replace(topk.results().get(1), r.get(1));
        if (renorm != null) consumed.add(renorm);
        rw.drop(topk);
        return true;
    }

    /**
     * The sigmoid router, matched at its topk: s = sigmoid(r), c = add(s, bias) [, group_limit],
     * (_, e) = topk(c), w = take_along(s, e), renorm(w) [, scale]. Everything it needs exists at the topk;
     * the take_along, renorm and scale after it are dropped as they come.
     */
    private static boolean sigmoidChain(Rewrite rw, Node topk, Set<Node> consumed) {
        Node choice = rw.producer(topk.operand(0)), groups = null;
        if (choice != null && choice.op() == Op.GROUP_LIMIT) {
            groups = choice;
            choice = rw.producer(groups.operand(0));
        }
        if (choice == null || choice.op() != Op.ADD) return false;
        Node sigmoid = rw.producer(choice.operand(0));
        Value bias = choice.operand(1);
        if (sigmoid == null || sigmoid.op() != Op.SIGMOID || bias.type().rank() != 1) return false;
        Value e = topk.results().get(1);
        List<Node> eUsers = rw.users(e).stream().filter(u -> u.op() == Op.TAKE_ALONG).toList();
        if (eUsers.size() != 1 || !eUsers.getFirst().operand(0).equals(sigmoid.result()) || !rw.users(topk.results().get(0)).isEmpty()) return false;
        Node take = eUsers.getFirst();
        List<Node> wUsers = rw.users(take.result());
        if (wUsers.size() != 1 || wUsers.getFirst().op() != Op.RENORM) return false;    // the kernel normalizes sigmoid weights
        Node renorm = wUsers.getFirst(), scale = null;
        List<Node> rUsers = rw.users(renorm.result());
        if (rUsers.size() == 1 && rUsers.getFirst().op() == Op.SCALE) scale = rUsers.getFirst();
        Value finalWeights = scale != null ? scale.result() : renorm.result();
        Attrs a = Attrs.of("k", topk.attrs().i("k"), "groups", groups != null ? groups.attrs().i("groups") : 1L,
                "keep_groups", groups != null ? groups.attrs().i("keep") : 1L, "group_select", groups != null ? groups.attrs().s("select") : "max",
                "norm_type", "sigmoid", "renorm", true, "routed_scaling", scale != null ? scale.attrs().f("factor") : 1.0, "eps", 0.0);
        rw.release(finalWeights);
        rw.release(e);
        List<Value> r = rw.emit(Op.MOE_GATING_TOPK, List.of(finalWeights.name(), e.name()), a, sigmoid.operand(0), bias);
        rw.replace(finalWeights, r.get(0));
        rw.replace(e, r.get(1));
        consumed.add(take);
        consumed.add(renorm);
        if (scale != null) consumed.add(scale);
        rw.drop(topk);
        return true;
    }
}
