package dev.moec.passes;

import dev.moec.ir.Attrs;
import dev.moec.ir.Graph;
import dev.moec.ir.Node;
import dev.moec.ir.Op;
import dev.moec.ir.Param;
import dev.moec.ir.TensorType;
import dev.moec.ir.Value;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The rewrite driver the passes share. It walks a graph's nodes in order; a pass {@link #keep}s a node,
 * or {@link #emit}s new nodes and {@link #replace}s old values by new ones. Operands and outputs are
 * remapped as it goes, names stay unique, and {@link #finish} returns the same graph instance when nothing
 * changed, so every pass reports its changed flag exactly.
 */
final class Rewrite {
    private final Graph graph;
    private final List<Node> out = new ArrayList<>();
    private final Map<Value, Value> replaced = new HashMap<>();
    private final Set<String> names = new HashSet<>();
    private final Map<Value, List<Node>> users = new HashMap<>();
    private final Map<Value, Node> producers;
    private final Set<Value> params = new HashSet<>();                 // the graph's parameter values
    private final Map<Value, Boolean> constants = new HashMap<>();     // constant(v), once decided
    private boolean changed;

    Rewrite(Graph graph) {
        this.graph = graph;
        for (Value v : graph.inputs()) names.add(v.name());
        for (Param p : graph.params()) {
            names.add(p.value().name());
            params.add(p.value());
        }
        for (Node n : graph.nodes()) {
            for (Value r : n.results()) names.add(r.name());
            for (Value o : n.operands()) users.computeIfAbsent(o, k -> new ArrayList<>()).add(n);
        }
        this.producers = graph.producers();
    }

    Graph graph() { return graph; }

    /** The nodes of the input graph that read {@code v}. */
    List<Node> users(Value v) { return users.getOrDefault(v, List.of()); }

    /** True if {@code v} is read by exactly this one node and is not a graph output. */
    boolean onlyUser(Value v, Node n) { return users(v).size() == 1 && users(v).getFirst() == n && !graph.outputs().contains(v); }

    /** The node of the input graph that defines {@code v}, or null for inputs and parameters. */
    Node producer(Value v) { return producers.get(v); }

    /**
     * True if {@code v} is a parameter, or computed from parameters alone (a weight transform). Each value
     * is decided once: asked of every operand of every node, an undecided walk back along the residual
     * stream made a 94-layer graph's pass quadratic (fuse-linears on Qwen3-235B's graph took 20 s).
     */
    boolean constant(Value v) {
        Boolean known = constants.get(v);
        if (known != null) return known;
        Node n = producers.get(v);
        boolean c = params.contains(v) || n != null && n.operands().stream().allMatch(this::constant);
        constants.put(v, c);
        return c;
    }

    /** The current version of a value (after replacements). */
    Value map(Value v) {
        Value r = replaced.get(v);
        return r == null ? v : map(r);
    }

    void keep(Node n) {
        List<Value> ops = n.operands().stream().map(this::map).toList();
        out.add(ops.equals(n.operands()) ? n : new Node(n.op(), ops, n.attrs(), n.results()));
        if (!ops.equals(n.operands())) changed = true;
    }

    /** Drops a node; its results must have been replaced (or be dead). */
    void drop(Node n) { changed = true; }

    /** Frees the name of a value this pass is about to replace, so the replacement can keep it. */
    void release(Value v) { names.remove(v.name()); }

    void replace(Value old, Value with) {
        if (!old.equals(with)) {
            replaced.put(old, with);
            changed = true;
        }
    }

    /** Adds a new node computing {@code op}; returns its results, typed by the op's type rule. */
    List<Value> emit(Op op, List<String> resultNames, Attrs attrs, Value... operands) {
        List<Value> ops = List.of(operands).stream().map(this::map).toList();
        List<TensorType> types = op.inferTypes(ops.stream().map(Value::type).toList(), attrs);
        List<Value> results = new ArrayList<>();
        for (int r = 0; r < types.size(); r++) results.add(new Value(fresh(resultNames.get(r)), types.get(r)));
        out.add(new Node(op, ops, attrs, results));
        changed = true;
        return results;
    }

    Value emit(Op op, String resultName, Attrs attrs, Value... operands) { return emit(op, List.of(resultName), attrs, operands).getFirst(); }

    String fresh(String base) {
        String n = base;
        for (int i = 1; !names.add(n); i++) n = base + "_" + i;
        return n;
    }

    Graph finish() {
        if (!changed) return graph;
        List<Value> outputs = graph.outputs().stream().map(this::map).toList();
        return new Graph(graph.name(), graph.inputs(), graph.params(), out, outputs);
    }
}
