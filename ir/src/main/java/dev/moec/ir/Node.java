package dev.moec.ir;

import java.util.List;

/** One operation: {@code %r = op(%a, %b) {attrs} : type}. Immutable; passes build new nodes. */
public record Node(Op op, List<Value> operands, Attrs attrs, List<Value> results) {
    public Node {
        operands = List.copyOf(operands);
        results = List.copyOf(results);
    }

    public Value result() {
        if (results.size() != 1) throw new IllegalStateException(op.text() + " has " + results.size() + " results");
        return results.getFirst();
    }

    public Value operand(int i) { return operands.get(i); }
}
