package dev.moec.passes;

import dev.moec.ir.Attrs;
import dev.moec.ir.Graph;
import dev.moec.ir.Node;
import dev.moec.ir.Op;
import dev.moec.ir.Value;

import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * {@code cse}: a node equal to an earlier one (same op, same operands, same attributes) is removed and its
 * results read the earlier node's. Every op is pure (state ops return new versions), so equality of inputs
 * is equality of results. The rope tables of q and k, and of every layer, become one this way.
 */
public final class Cse implements Pass {
    @Override public String name() { return "cse"; }

    private record Key(Op op, List<Value> operands, Attrs attrs) {}

    @Override
    public Graph run(Graph g) {
        Rewrite rw = new Rewrite(g);
        Map<Key, Node> seen = new HashMap<>();
        for (Node n : g.nodes()) {
            Key k = new Key(n.op(), n.operands().stream().map(rw::map).toList(), n.attrs());
            Node first = seen.get(k);
            if (first == null) {
                seen.put(k, n);
                rw.keep(n);
                continue;
            }
            // n = first  ->  n's results are first's
            for (int r = 0; r < n.results().size(); r++) rw.replace(n.results().get(r), first.results().get(r));
            rw.drop(n);
        }
        return rw.finish();
    }
}
