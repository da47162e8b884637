package dev.moec.ir;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * Checks a graph against named rules. A violation names the node as printed, the rule and the types.
 * Rules: {@code ssa.single-definition}, {@code ssa.defined-before-use}, {@code ssa.output-defined},
 * {@code type.result-count}, {@code type.result-mismatch}, and every op's own type rules
 * ({@code matmul.contraction}, ...), which come from {@link TypeRules}.
 */
public final class Verifier {
    private Verifier() {}

    public record Violation(String rule, String where, String message) {
        @Override public String toString() { return "[" + rule + "] " + where + ": " + message; }
    }

    public static List<Violation> check(Graph g) {
        List<Violation> out = new ArrayList<>();
        Set<Value> defined = new HashSet<>();
        Set<String> names = new HashSet<>();
        for (Value v : g.inputs()) define(v, "input " + v, defined, names, out);
        for (Param p : g.params()) define(p.value(), "param " + p.value(), defined, names, out);
        for (Node n : g.nodes()) {
            String where = Printer.print(n);
            for (Value v : n.operands()) {
                if (!defined.contains(v)) out.add(new Violation("ssa.defined-before-use", where, "operand " + v + " : " + v.type() + " is not defined before this node"));
            }
            try {
                List<TensorType> want = n.op().inferTypes(n.operands().stream().map(Value::type).toList(), n.attrs());
                if (want.size() != n.results().size()) {
                    out.add(new Violation("type.result-count", where, n.op().text() + " has " + want.size() + " results, node declares " + n.results().size()));
                } else {
                    for (int r = 0; r < want.size(); r++) {
                        if (!want.get(r).equals(n.results().get(r).type())) {
                            out.add(new Violation("type.result-mismatch", where, "result " + n.results().get(r) + " is declared "
                                    + n.results().get(r).type() + " but the type rule gives " + want.get(r)));
                        }
                    }
                }
            } catch (TypeError e) {
                out.add(new Violation(e.rule(), where, e.getMessage()));
            }
            for (Value r : n.results()) define(r, where, defined, names, out);
        }
        for (Value v : g.outputs()) {
            if (!defined.contains(v)) out.add(new Violation("ssa.output-defined", "return", "output " + v + " is never defined"));
        }
        return out;
    }

    /** Throws {@link VerificationException} listing every violation, if there is any. */
    public static Graph verify(Graph g) {
        List<Violation> v = check(g);
        if (!v.isEmpty()) throw new VerificationException(g.name(), v);
        return g;
    }

    private static void define(Value v, String where, Set<Value> defined, Set<String> names, List<Violation> out) {
        if (!names.add(v.name())) out.add(new Violation("ssa.single-definition", where, v + " is defined more than once"));
        defined.add(v);
    }

    public static final class VerificationException extends RuntimeException {
        private final List<Violation> violations;

        public VerificationException(String graph, List<Violation> violations) {
            super("graph @" + graph + " fails verification:\n  " + String.join("\n  ", violations.stream().map(Violation::toString).toList()));
            this.violations = List.copyOf(violations);
        }

        public List<Violation> violations() { return violations; }
    }
}
