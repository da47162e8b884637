package dev.moec.ir;

import java.util.stream.Collectors;

/**
 * The text form of a graph:
 * <pre>
 * graph @name(
 *     %tokens: i32[T],
 * ) {
 *   %w = param "model.norm.weight" : bf16[256]
 *   %h = rms_norm(%x, %w) {eps = 1.0E-6} : f32[T,256]
 *   return %logits
 * }
 * </pre>
 */
public final class Printer {
    private Printer() {}

    public static String print(Graph g) {
        StringBuilder sb = new StringBuilder();
        sb.append("graph @").append(g.name()).append("(\n");
        for (Value in : g.inputs()) sb.append("    ").append(in).append(": ").append(in.type()).append(",\n");
        sb.append(") {\n");
        for (Param p : g.params()) {
            sb.append("  ").append(p.value()).append(" = param ").append(quote(p.tensor())).append(" : ").append(p.value().type()).append('\n');
        }
        for (Node n : g.nodes()) sb.append("  ").append(print(n)).append('\n');
        sb.append("  return ").append(g.outputs().stream().map(Value::toString).collect(Collectors.joining(", "))).append('\n');
        return sb.append("}\n").toString();
    }

    /** A string literal of the text form: in double quotes, with {@code \\} and {@code "} escaped. */
    public static String quote(String s) {
        return '"' + s.replace("\\", "\\\\").replace("\"", "\\\"") + '"';
    }

    public static String print(Node n) {
        StringBuilder sb = new StringBuilder();
        sb.append(n.results().stream().map(Value::toString).collect(Collectors.joining(", ")));
        sb.append(" = ").append(n.op().text()).append('(');
        sb.append(n.operands().stream().map(Value::toString).collect(Collectors.joining(", "))).append(')');
        if (!n.attrs().isEmpty()) sb.append(' ').append(n.attrs());
        sb.append(" : ").append(n.results().stream().map(v -> v.type().toString()).collect(Collectors.joining(", ")));
        return sb.toString();
    }
}
