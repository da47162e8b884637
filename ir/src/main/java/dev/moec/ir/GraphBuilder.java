package dev.moec.ir;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/** Builds a graph in order, inferring each result type from the op table's type rule. */
public final class GraphBuilder {
    private final String name;
    private final List<Value> inputs = new ArrayList<>();
    private final List<Param> params = new ArrayList<>();
    private final List<Node> nodes = new ArrayList<>();
    private final Set<String> names = new HashSet<>();

    public GraphBuilder(String name) {
        this.name = name;
    }

    public Value input(String inputName, TensorType type) {
        Value v = new Value(fresh(inputName), type);
        inputs.add(v);
        return v;
    }

    public Value param(String valueName, String tensor, TensorType type) {
        Value v = new Value(fresh(valueName), type);
        params.add(new Param(v, tensor));
        return v;
    }

    public Value op(Op op, String resultName, Attrs attrs, Value... operands) {
        return ops(op, List.of(resultName), attrs, operands).getFirst();
    }

    public Value op(Op op, String resultName, Value... operands) {
        return op(op, resultName, Attrs.NONE, operands);
    }

    public List<Value> ops(Op op, List<String> resultNames, Attrs attrs, Value... operands) {
        List<TensorType> types;
        try {
            types = op.inferTypes(List.of(operands).stream().map(Value::type).toList(), attrs);
        } catch (TypeError e) {
            throw new IllegalArgumentException("building " + op.text() + " -> %" + resultNames + ": [" + e.rule() + "] " + e.getMessage(), e);
        }
        List<Value> results = new ArrayList<>();
        for (int r = 0; r < types.size(); r++) results.add(new Value(fresh(resultNames.get(r)), types.get(r)));
        nodes.add(new Node(op, List.of(operands), attrs, results));
        return results;
    }

    public Graph build(List<Value> outputs) {
        return Verifier.verify(new Graph(name, inputs, params, nodes, outputs));
    }

    private String fresh(String base) {
        String n = base;
        for (int i = 1; !names.add(n); i++) n = base + "_" + i;
        return n;
    }
}
