package dev.moec.passes;

import dev.moec.ir.Graph;
import dev.moec.ir.Node;
import dev.moec.ir.Param;
import dev.moec.ir.Value;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * {@code dce}: removes nodes none of whose results reach an output, then parameters nothing reads.
 * Inputs stay: they are the graph's calling convention.
 */
public final class Dce implements Pass {
    @Override public String name() { return "dce"; }

    @Override
    public Graph run(Graph g) {
        // 1. Walk backwards from the outputs, marking what is live.
        Set<Value> live = new HashSet<>(g.outputs());
        List<Node> kept = new ArrayList<>();
        for (int i = g.nodes().size() - 1; i >= 0; i--) {
            Node n = g.nodes().get(i);
            if (n.results().stream().anyMatch(live::contains)) {
                kept.add(n);
                live.addAll(n.operands());
            }
        }
        // 2. Keep the parameters that live nodes read.
        List<Param> params = g.params().stream().filter(p -> live.contains(p.value())).toList();
        if (kept.size() == g.nodes().size() && params.size() == g.params().size()) return g;
        return g.withNodes(kept.reversed(), params);
    }
}
