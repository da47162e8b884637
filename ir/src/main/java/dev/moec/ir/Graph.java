package dev.moec.ir;

import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * An SSA dataflow graph: inputs, weight parameters, nodes in a valid (topological) order, outputs.
 * Immutable; a pass returns a new graph.
 */
public record Graph(String name, List<Value> inputs, List<Param> params, List<Node> nodes, List<Value> outputs) {
    public Graph {
        inputs = List.copyOf(inputs);
        params = List.copyOf(params);
        nodes = List.copyOf(nodes);
        outputs = List.copyOf(outputs);
    }

    public Graph withNodes(List<Node> newNodes, List<Param> newParams) {
        return new Graph(name, inputs, newParams, newNodes, outputs);
    }

    /** The node that defines each node result. */
    public Map<Value, Node> producers() {
        Map<Value, Node> m = new HashMap<>();
        for (Node n : nodes) for (Value r : n.results()) m.put(r, n);
        return m;
    }

    public Value input(String inputName) {
        return inputs.stream().filter(v -> v.name().equals(inputName)).findFirst()
                .orElseThrow(() -> new IllegalArgumentException("graph @" + name + " has no input %" + inputName));
    }

    public long parameterElements() {
        return params.stream().mapToLong(p -> p.value().type().shape().elements()).sum();
    }

    @Override public String toString() { return Printer.print(this); }
}
