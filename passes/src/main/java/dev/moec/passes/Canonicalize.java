package dev.moec.passes;

import dev.moec.ir.Graph;
import dev.moec.ir.Node;
import dev.moec.ir.Op;
import dev.moec.ir.Value;

/**
 * {@code canonicalize}: removes ops that do nothing and merges op chains into one, so later patterns see
 * one form. Each rule's algebra is on its line.
 */
public final class Canonicalize implements Pass {
    @Override public String name() { return "canonicalize"; }

    @Override
    public Graph run(Graph g) {
        Rewrite rw = new Rewrite(g);
        for (Node n : g.nodes()) {
            Value x = n.operands().isEmpty() ? null : rw.map(n.operand(0));
            Value same = switch (n.op()) {
                case RESHAPE, CAST -> x.type().equals(n.result().type()) ? x : null;                          // reshape(x: t) to t -> x; cast(x: t) to t -> x
                case SCALE -> n.attrs().f("factor") == 1.0 ? x : null;                                        // x * 1 -> x
                case REPEAT -> n.attrs().i("times") == 1 ? x : null;                                          // repeat(x, 1) -> x
                case SLICE -> x.type().equals(n.result().type()) ? x : null;                                  // x[0:len] -> x
                case CONCAT -> adjacentSlices(rw, n);                                                         // [x[a:b] | x[b:c]] = x[a:c] -> x when a:c is all of x
                default -> null;
            };
            if (same != null) {
                rw.replace(n.result(), same);
                rw.drop(n);
                continue;
            }
            Node inner = x == null ? null : rw.producer(x);
            if (n.op() == Op.RESHAPE && inner != null && inner.op() == Op.RESHAPE) {
                // reshape(reshape(y)) -> reshape(y)
                rw.release(n.result());
                rw.replace(n.result(), rw.emit(Op.RESHAPE, n.result().name(), n.attrs(), inner.operand(0)));
                rw.drop(n);
                continue;
            }
            rw.keep(n);
        }
        return rw.finish();
    }

    /** concat(slice(x, axis, 0, m), slice(x, axis, m, len(x))) along the same axis is x. */
    private static Value adjacentSlices(Rewrite rw, Node n) {
        Node a = rw.producer(n.operand(0)), b = rw.producer(n.operand(1));
        if (a == null || b == null || a.op() != Op.SLICE || b.op() != Op.SLICE || !a.operand(0).equals(b.operand(0))) return null;
        Value x = a.operand(0);
        int rank = x.type().rank();
        long axis = Math.floorMod(n.attrs().i("axis"), rank);
        if (Math.floorMod(a.attrs().i("axis"), rank) != axis || Math.floorMod(b.attrs().i("axis"), rank) != axis) return null;
        boolean whole = a.attrs().i("start") == 0 && a.attrs().i("end") == b.attrs().i("start")
                && x.type().shape().dim((int) axis).isFixed() && b.attrs().i("end") == x.type().shape().dim((int) axis).size();
        return whole ? rw.map(x) : null;
    }
}
