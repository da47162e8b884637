package dev.moec.passes;

import dev.moec.ir.Graph;
import dev.moec.ir.Node;
import dev.moec.ir.Op;
import dev.moec.ir.Value;

import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * {@code fuse-add-rms-norm}: the residual add and the RMSNorm that reads it become one
 * {@code add_rms_norm}, which returns the normalized rows and the sum (the new residual).
 * <pre>  s = add(a, b); y = rms_norm(s, w)  ->  y, s = add_rms_norm(a, b, w)</pre>
 */
public final class FuseAddRmsNorm implements Pass {
    @Override public String name() { return "fuse-add-rms-norm"; }

    @Override
    public Graph run(Graph g) {
        Rewrite rw = new Rewrite(g);
        // 1. Pick, for each plain add (equal operand types), the first rms_norm that reads it.
        Map<Node, Node> normOf = new HashMap<>();
        for (Node n : g.nodes()) {
            if (n.op() != Op.RMS_NORM) continue;
            Node add = rw.producer(n.operand(0));
            if (add != null && add.op() == Op.ADD && add.operand(0).type().equals(add.operand(1).type()) && !normOf.containsKey(add)) {
                normOf.put(add, n);
            }
        }
        // 2. Emit the fused op where the add was; the norm's result and the sum read from it.
        Map<Node, Value> fusedNorm = new HashMap<>();
        for (Node n : g.nodes()) {
            Node norm = normOf.get(n);
            if (norm != null) {
                rw.release(norm.result());
                rw.release(n.result());
                List<Value> r = rw.emit(Op.ADD_RMS_NORM, List.of(norm.result().name(), n.result().name()), norm.attrs(),
                        n.operand(0), n.operand(1), norm.operand(1));
                rw.replace(n.result(), r.get(1));
                fusedNorm.put(norm, r.get(0));
                rw.drop(n);
            } else if (fusedNorm.containsKey(n)) {
                rw.replace(n.result(), fusedNorm.get(n));
                rw.drop(n);
            } else {
                rw.keep(n);
            }
        }
        return rw.finish();
    }

}
