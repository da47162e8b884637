package dev.moec.ir;

import org.jgrapht.graph.DirectedMultigraph;
import org.jgrapht.nio.Attribute;
import org.jgrapht.nio.DefaultAttribute;
import org.jgrapht.nio.dot.DOTExporter;

import java.io.StringWriter;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

/** Whole-graph utilities: binding symbols, and the JGraphT view used for DOT. */
public final class Graphs {
    private Graphs() {}

    /** The same graph with the given symbols replaced by sizes in every type and shape attribute. */
    public static Graph bind(Graph g, Map<String, Long> bindings) {
        Map<Value, Value> map = new HashMap<>();
        List<Value> inputs = new ArrayList<>();
        for (Value v : g.inputs()) inputs.add(rebind(v, bindings, map));
        List<Param> params = new ArrayList<>();
        for (Param p : g.params()) params.add(new Param(rebind(p.value(), bindings, map), p.tensor()));
        List<Node> nodes = new ArrayList<>();
        for (Node n : g.nodes()) {
            Map<String, Object> attrs = new LinkedHashMap<>();
            n.attrs().values().forEach((k, v) -> attrs.put(k, v instanceof Shape s ? s.bind(bindings) : v));
            List<Value> results = new ArrayList<>();
            for (Value r : n.results()) results.add(rebind(r, bindings, map));
            nodes.add(new Node(n.op(), n.operands().stream().map(map::get).toList(), new Attrs(attrs), results));
        }
        return new Graph(g.name(), inputs, params, nodes, g.outputs().stream().map(map::get).toList());
    }

    private static Value rebind(Value v, Map<String, Long> bindings, Map<Value, Value> map) {
        Value b = new Value(v.name(), v.type().bind(bindings));
        map.put(v, b);
        return b;
    }

    /** A dataflow edge: the value that flows from its producer to a consumer. */
    public record Edge(Value value) {}

    /**
     * The graph as a JGraphT multigraph: vertices are the inputs ({@code in:%x}), parameters
     * ({@code param:%w}), nodes ({@code node:N}) and a {@code return} vertex; one edge per operand use.
     */
    public static DirectedMultigraph<String, Edge> dataflow(Graph g) {
        DirectedMultigraph<String, Edge> d = new DirectedMultigraph<>(Edge.class);
        Map<Value, String> producer = new HashMap<>();
        for (Value v : g.inputs()) producer.put(v, vertex(d, "in:" + v));
        for (Param p : g.params()) producer.put(p.value(), vertex(d, "param:" + p.value()));
        for (int i = 0; i < g.nodes().size(); i++) {
            Node n = g.nodes().get(i);
            String id = vertex(d, "node:" + i);
            for (Value v : n.operands()) d.addEdge(producer.get(v), id, new Edge(v));
            for (Value r : n.results()) producer.put(r, id);
        }
        String ret = vertex(d, "return");
        for (Value v : g.outputs()) d.addEdge(producer.get(v), ret, new Edge(v));
        return d;
    }

    private static String vertex(DirectedMultigraph<String, Edge> d, String id) {
        d.addVertex(id);
        return id;
    }

    /** Graphviz DOT text of the dataflow graph: nodes labelled with their op and attributes, edges with value and type. */
    public static String dot(Graph g) {
        DirectedMultigraph<String, Edge> d = dataflow(g);
        Map<String, String> labels = new HashMap<>();
        Map<String, String> shapes = new HashMap<>();
        for (Value v : g.inputs()) { labels.put("in:" + v, v + ": " + v.type()); shapes.put("in:" + v, "invhouse"); }
        for (Param p : g.params()) { labels.put("param:" + p.value(), p.value() + "\n" + p.tensor() + "\n" + p.value().type()); shapes.put("param:" + p.value(), "note"); }
        for (int i = 0; i < g.nodes().size(); i++) {
            Node n = g.nodes().get(i);
            labels.put("node:" + i, n.results().stream().map(Value::toString).collect(Collectors.joining(", ")) + " = " + n.op().text()
                    + (n.attrs().isEmpty() ? "" : "\n" + n.attrs()));
            shapes.put("node:" + i, n.op().level() == Op.Level.FUSED ? "box3d" : "box");
        }
        labels.put("return", "return");
        shapes.put("return", "house");
        Map<String, Integer> ids = new HashMap<>();
        DOTExporter<String, Edge> exporter = new DOTExporter<>(v -> "v" + ids.computeIfAbsent(v, k -> ids.size()));
        exporter.setGraphIdProvider(() -> "\"" + g.name() + "\"");
        exporter.setVertexAttributeProvider(v -> {
            Map<String, Attribute> m = new LinkedHashMap<>();
            m.put("label", DefaultAttribute.createAttribute(labels.get(v)));
            m.put("shape", DefaultAttribute.createAttribute(shapes.get(v)));
            return m;
        });
        exporter.setEdgeAttributeProvider(e -> Map.of("label", DefaultAttribute.createAttribute(e.value() + " : " + e.value().type())));
        StringWriter w = new StringWriter();
        exporter.exportGraph(d, w);
        return w.toString();
    }
}
