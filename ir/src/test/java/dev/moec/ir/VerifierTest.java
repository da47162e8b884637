package dev.moec.ir;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class VerifierTest {
    private static Graph tiny() {
        GraphBuilder g = new GraphBuilder("tiny");
        Value x = g.input("x", TensorType.of(DType.F32, "T", 4));
        Value w = g.param("w", "proj.weight", TensorType.of(DType.BF16, 8, 4));
        Value y = g.op(Op.MATMUL, "y", x, w);
        return g.build(List.of(y));
    }

    @Test void aWellTypedGraphVerifiesAndPrints() {
        Graph g = tiny();
        assertTrue(Verifier.check(g).isEmpty());
        assertEquals("""
                graph @tiny(
                    %x: f32[T,4],
                ) {
                  %w = param "proj.weight" : bf16[8,4]
                  %y = matmul(%x, %w) : f32[T,8]
                  return %y
                }
                """, Printer.print(g));
    }

    @Test void aViolationNamesTheNodeTheRuleAndTheTypes() {
        Graph g = tiny();
        Value x = g.inputs().getFirst();
        Value bad = new Value("w2", TensorType.of(DType.BF16, 8, 5));
        Node n = new Node(Op.MATMUL, List.of(x, bad), Attrs.NONE, List.of(new Value("z", TensorType.of(DType.F32, "T", 8))));
        Graph broken = new Graph("broken", g.inputs(), List.of(g.params().getFirst(), new Param(bad, "other.weight")), List.of(n), List.of(n.result()));
        var violations = Verifier.check(broken);
        assertEquals(1, violations.size());
        var v = violations.getFirst();
        assertEquals("matmul.contraction", v.rule());
        assertEquals("%z = matmul(%x, %w2) : f32[T,8]", v.where());
        assertTrue(v.message().contains("f32[T,4]") && v.message().contains("bf16[8,5]"), v.message());
    }

    @Test void useBeforeDefinitionAndWrongResultTypesAreCaught() {
        Value x = new Value("x", TensorType.of(DType.F32, 2));
        Value y = new Value("y", TensorType.of(DType.F32, 2));
        Value z = new Value("z", TensorType.of(DType.F32, 3));
        Node useY = new Node(Op.ADD, List.of(x, y), Attrs.NONE, List.of(z));
        Graph g = new Graph("g", List.of(x), List.of(), List.of(useY), List.of(z));
        var rules = Verifier.check(g).stream().map(Verifier.Violation::rule).toList();
        assertTrue(rules.contains("ssa.defined-before-use"), rules.toString());
        assertThrows(Verifier.VerificationException.class, () -> Verifier.verify(g));
    }

    @Test void theBuilderRefusesIllTypedNodes() {
        GraphBuilder g = new GraphBuilder("g");
        Value a = g.input("a", TensorType.of(DType.F32, 2));
        Value b = g.input("b", TensorType.of(DType.F32, 3));
        var e = assertThrows(IllegalArgumentException.class, () -> g.op(Op.ADD, "c", a, b));
        assertTrue(e.getMessage().contains("broadcast.shapes"), e.getMessage());
    }

    @Test void reshapeChecksVolumeWithSymbols() {
        GraphBuilder g = new GraphBuilder("g");
        Value a = g.input("a", TensorType.of(DType.F32, "T", 8));
        g.op(Op.RESHAPE, "ok", Attrs.of("shape", Shape.of("T", 2, 4)), a);
        assertThrows(IllegalArgumentException.class, () -> g.op(Op.RESHAPE, "bad", Attrs.of("shape", Shape.of("T", 3, 4)), a));
        assertThrows(IllegalArgumentException.class, () -> g.op(Op.RESHAPE, "bad2", Attrs.of("shape", Shape.of("R", 8)), a));
    }
}
