package dev.moec.passes;

import dev.moec.ir.Attrs;
import dev.moec.ir.Graph;
import dev.moec.ir.Node;
import dev.moec.ir.Op;
import dev.moec.ir.Value;

/**
 * {@code fold}: folds chains of elementwise constants into one op. Weight transforms (slices, casts,
 * concatenations and quantization of parameters) are not computed here: the backend folds every
 * parameter-only subgraph into a packed weight when it captures the artifact.
 */
public final class Fold implements Pass {
    @Override public String name() { return "fold"; }

    @Override
    public Graph run(Graph g) {
        Rewrite rw = new Rewrite(g);
        for (Node n : g.nodes()) {
            Value x = n.operands().isEmpty() ? null : rw.map(n.operand(0));
            Node inner = x == null ? null : rw.producer(x);
            if (inner != null && n.op() == Op.SCALE && inner.op() == Op.SCALE) {
                // (y * a) * b -> y * (a * b)
                Attrs a = Attrs.of("factor", inner.attrs().f("factor") * n.attrs().f("factor"));
                rw.release(n.result());
                rw.replace(n.result(), rw.emit(Op.SCALE, n.result().name(), a, inner.operand(0)));
                rw.drop(n);
            } else if (inner != null && n.op() == Op.NEG && inner.op() == Op.NEG) {
                // -(-y) -> y
                rw.replace(n.result(), rw.map(inner.operand(0)));
                rw.drop(n);
            } else if (inner != null && n.op() == Op.RENORM && inner.op() == Op.RENORM) {
                // renorm(renorm(y)) -> renorm(y): the sum is already 1
                rw.replace(n.result(), x);
                rw.drop(n);
            } else {
                rw.keep(n);
            }
        }
        return rw.finish();
    }
}
