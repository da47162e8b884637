package dev.moec.ir;

import java.util.stream.Collectors;

/** The op table as documentation: {@code moec ir ops} prints it, {@code docs/ops.md} is its Markdown form. */
public final class OpDocs {
    private OpDocs() {}

    /** One block per op: signature, attributes, summary and example. */
    public static String text() {
        StringBuilder sb = new StringBuilder();
        for (Op.Level level : Op.Level.values()) {
            sb.append(level == Op.Level.CORE ? "Core ops (from the frontends)\n" : "\nFused ops (from the passes; one Ascend kernel each)\n");
            for (Op op : Op.values()) {
                if (op.level() != level) continue;
                sb.append("\n  ").append(signature(op)).append('\n');
                sb.append("      ").append(op.summary()).append('\n');
                sb.append("      e.g. ").append(op.example()).append('\n');
            }
        }
        return sb.toString();
    }

    public static String markdown() {
        StringBuilder sb = new StringBuilder();
        sb.append("# moec IR ops\n\n");
        sb.append("Generated from the op table (`ir/src/main/java/dev/moec/ir/Op.java`) by `moec ir ops --markdown`;\n");
        sb.append("a test keeps this file equal to the table. Attributes marked `?` are optional.\n");
        for (Op.Level level : Op.Level.values()) {
            sb.append(level == Op.Level.CORE ? "\n## Core ops\n\nBuilt by the frontends; the reference interpreter defines them.\n"
                    : "\n## Fused ops\n\nProduced by the passes; each maps onto one Ascend kernel.\n");
            sb.append("\n| op | signature | semantics | example |\n|---|---|---|---|\n");
            for (Op op : Op.values()) {
                if (op.level() != level) continue;
                sb.append("| `").append(op.text()).append("` | `").append(signature(op).replace("|", "\\|")).append("` | ")
                        .append(op.summary().replace("|", "\\|")).append(" | `").append(op.example().replace("|", "\\|")).append("` |\n");
            }
        }
        return sb.toString();
    }

    static String signature(Op op) {
        String results = op.resultCount() == 1 ? "%r" : java.util.stream.IntStream.range(0, op.resultCount()).mapToObj(i -> "%r" + i).collect(Collectors.joining(", "));
        String attrs = op.attrs().isEmpty() ? "" : " {" + op.attrs().stream()
                .map(a -> a.name() + (a.required() ? "" : "?") + ": " + a.kind().name().toLowerCase()).collect(Collectors.joining(", ")) + "}";
        return results + " = " + op.text() + "(" + op.operandNames().stream().map(n -> "%" + n).collect(Collectors.joining(", ")) + ")" + attrs;
    }
}
