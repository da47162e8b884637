package dev.moec.ir.text;

import dev.moec.ir.Attrs;
import dev.moec.ir.DType;
import dev.moec.ir.Dim;
import dev.moec.ir.Graph;
import dev.moec.ir.Node;
import dev.moec.ir.Op;
import dev.moec.ir.Param;
import dev.moec.ir.Shape;
import dev.moec.ir.TensorType;
import dev.moec.ir.Value;
import org.antlr.v4.runtime.BaseErrorListener;
import org.antlr.v4.runtime.CharStreams;
import org.antlr.v4.runtime.CommonTokenStream;
import org.antlr.v4.runtime.RecognitionException;
import org.antlr.v4.runtime.Recognizer;
import org.antlr.v4.runtime.Token;
import org.antlr.v4.runtime.tree.TerminalNode;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Parses the text form ({@code .mir}) printed by {@link dev.moec.ir.Printer}: {@code print(parse(t)) == t}
 * for every printed graph. Syntax comes from the ANTLR grammar {@code Mir.g4}; op names and dtypes are
 * checked against the op table and {@link DType}. Errors carry {@code line:column} and what was expected.
 * Well-formedness beyond names (types, SSA order, attribute kinds) is the verifier's job, so a parsed graph
 * may still fail {@link dev.moec.ir.Verifier}.
 */
public final class IrParser {
    private IrParser() {}

    public static Graph parse(String text) { return parse(text, "<input>"); }

    public static Graph parse(String text, String source) {
        MirLexer lexer = new MirLexer(CharStreams.fromString(text, source));
        MirParser parser = new MirParser(new CommonTokenStream(lexer));
        BaseErrorListener fail = new BaseErrorListener() {
            @Override
            public void syntaxError(Recognizer<?, ?> r, Object offending, int line, int column, String msg, RecognitionException e) {
                throw new IrParseException(source, line, column + 1, msg);
            }
        };
        lexer.removeErrorListeners();
        lexer.addErrorListener(fail);
        parser.removeErrorListeners();
        parser.addErrorListener(fail);
        return new Builder(source).graph(parser.graph());
    }

    /** Turns the syntax tree into a graph, resolving names as it goes. */
    private static final class Builder {
        private final String source;
        private final Map<String, Value> scope = new HashMap<>();

        Builder(String source) {
            this.source = source;
        }

        Graph graph(MirParser.GraphContext g) {
            List<Value> inputs = new ArrayList<>();
            for (MirParser.InputContext in : g.input()) inputs.add(define(in.VALUE(), type(in.type())));
            List<Param> params = new ArrayList<>();
            List<Node> nodes = new ArrayList<>();
            for (MirParser.StatementContext s : g.statement()) {
                if (s.param() != null) {
                    params.add(new Param(define(s.param().VALUE(), type(s.param().type())), unquote(s.param().STRING().getText())));
                    if (!nodes.isEmpty()) throw error(s.param().getStart(), "parameters must come before the first node");
                } else {
                    nodes.add(node(s.node()));
                }
            }
            List<Value> outputs = new ArrayList<>();
            for (TerminalNode v : g.ret().VALUE()) outputs.add(use(v));
            return new Graph(g.GLOBAL().getText().substring(1), inputs, params, nodes, outputs);
        }

        private Node node(MirParser.NodeContext n) {
            Op op;
            try {
                op = Op.byName(n.IDENT().getText());
            } catch (IllegalArgumentException e) {
                throw error(n.IDENT().getSymbol(), "unknown op '" + n.IDENT().getText() + "' (`moec ir ops` lists them)");
            }
            List<TerminalNode> names = n.VALUE();
            int results = names.size() - (n.getChildCount() == 0 ? 0 : operandCount(n));
            List<Value> operands = new ArrayList<>();
            for (TerminalNode v : names.subList(results, names.size())) operands.add(use(v));
            if (n.type().size() != results) {
                throw error(n.getStart(), results + " result name(s) but " + n.type().size() + " result type(s)");
            }
            Map<String, Object> attrs = new LinkedHashMap<>();
            if (n.attrs() != null) {
                for (MirParser.AttrContext a : n.attrs().attr()) {
                    if (attrs.put(a.IDENT().getText(), attrValue(a.attrValue())) != null) throw error(a.getStart(), "attribute '" + a.IDENT().getText() + "' given twice");
                }
            }
            List<Value> defined = new ArrayList<>();
            for (int r = 0; r < results; r++) defined.add(define(names.get(r), type(n.type(r))));
            return new Node(op, operands, new Attrs(attrs), defined);
        }

        /** Operands are the VALUE tokens after the opening parenthesis. */
        private static int operandCount(MirParser.NodeContext n) {
            int count = 0;
            boolean inside = false;
            for (int i = 0; i < n.getChildCount(); i++) {
                String t = n.getChild(i).getText();
                if (t.equals("(")) inside = true;
                else if (t.equals(")")) break;
                else if (inside && t.startsWith("%")) count++;
            }
            return count;
        }

        private Object attrValue(MirParser.AttrValueContext v) {
            if (v.INT() != null) return parseLong(v.INT().getSymbol());
            if (v.FLOAT() != null) return Double.parseDouble(v.FLOAT().getText());
            if (v.STRING() != null) return unquote(v.STRING().getText());
            if (v.shape() != null) return shape(v.shape());
            return Boolean.parseBoolean(v.getText());
        }

        private TensorType type(MirParser.TypeContext t) {
            DType d;
            try {
                d = DType.parse(t.IDENT().getText());
            } catch (IllegalArgumentException e) {
                throw error(t.IDENT().getSymbol(), "unknown dtype '" + t.IDENT().getText() + "' (dtypes: "
                        + String.join(", ", java.util.Arrays.stream(DType.values()).map(DType::text).toList()) + ")");
            }
            return new TensorType(d, shape(t.shape()));
        }

        private Shape shape(MirParser.ShapeContext s) {
            List<Dim> dims = new ArrayList<>();
            for (MirParser.DimContext d : s.dim()) {
                if (d.INT() != null && d.IDENT() == null) {
                    long size = parseLong(d.INT().getSymbol());
                    if (size < 0) throw error(d.getStart(), "negative dimension " + size);
                    dims.add(Dim.of(size));
                } else if (d.INT() != null) {
                    long factor = parseLong(d.INT().getSymbol());
                    if (factor < 2) throw error(d.getStart(), "a scaled dimension needs a factor >= 2, got " + factor);
                    dims.add(new Dim.Scaled(new Dim.Sym(d.IDENT().getText()), factor));
                } else {
                    dims.add(Dim.sym(d.IDENT().getText()));
                }
            }
            return new Shape(dims);
        }

        private Value define(TerminalNode name, TensorType type) {
            Value v = new Value(name.getText().substring(1), type);
            scope.put(v.name(), v);
            return v;
        }

        private Value use(TerminalNode name) {
            Value v = scope.get(name.getText().substring(1));
            if (v == null) throw error(name.getSymbol(), name.getText() + " is not defined before this use");
            return v;
        }

        private long parseLong(Token t) {
            try {
                return Long.parseLong(t.getText());
            } catch (NumberFormatException e) {
                throw error(t, "integer " + t.getText() + " is out of range");
            }
        }

        private static String unquote(String literal) {
            StringBuilder sb = new StringBuilder();
            for (int i = 1; i < literal.length() - 1; i++) {
                char c = literal.charAt(i);
                if (c == '\\') c = literal.charAt(++i);
                sb.append(c);
            }
            return sb.toString();
        }

        private IrParseException error(Token at, String message) {
            return new IrParseException(source, at.getLine(), at.getCharPositionInLine() + 1, message);
        }
    }
}
