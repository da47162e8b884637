package dev.moec.ir;

import dev.moec.ir.text.IrParser;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;

import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Random well-typed graphs over every op: each verifies, and printing, parsing and printing again gives
 * the same text. Values are reused where a later operand wants exactly an earlier value's type, so graphs
 * have real dataflow, not only fresh inputs.
 */
public class TextFormPropertyTest {
    @Provide
    Arbitrary<Graph> graphs() {
        return Arbitraries.randomValue(TextFormPropertyTest::randomGraph);
    }

    /** A random well-typed graph of 1 to 8 ops of any kind, reusing earlier values where types allow. */
    public static Graph randomGraph(Random r) {
        GraphBuilder g = new GraphBuilder("random");
        List<Value> values = new ArrayList<>();
        List<Value> results = new ArrayList<>();
        Op[] ops = Op.values();
        int count = 1 + r.nextInt(8);
        for (int i = 0; i < count; i++) {
            Op op = ops[r.nextInt(ops.length)];
            OpSamples.Sample s = OpSamples.sample(op, r);
            Value[] operands = new Value[s.operands().size()];
            for (int j = 0; j < operands.length; j++) {
                TensorType t = s.operands().get(j);
                List<Value> fits = values.stream().filter(v -> v.type().equals(t)).toList();
                if (!fits.isEmpty() && r.nextInt(3) > 0) operands[j] = fits.get(r.nextInt(fits.size()));
                else if (t.shape().isStatic() && r.nextBoolean()) operands[j] = g.param("w" + i + "_" + j, "model.w" + i + "_" + j + ".weight", t);
                else operands[j] = g.input("in" + i + "_" + j, t);
                values.add(operands[j]);
            }
            List<String> names = IntStream.range(0, op.resultCount()).mapToObj(k -> "r" + k).toList();
            List<Value> out = g.ops(op, names, s.attrs(), operands);
            values.addAll(out);
            results.addAll(out);
        }
        return g.build(results);
    }

    @Property(tries = 400)
    void printParsePrintIsIdentityAndTheVerifierIsClean(@ForAll("graphs") Graph g) {
        assertTrue(Verifier.check(g).isEmpty(), () -> Verifier.check(g).toString());
        String text = Printer.print(g);
        Graph parsed = IrParser.parse(text);
        assertEquals(text, Printer.print(parsed));
        assertTrue(Verifier.check(parsed).isEmpty(), () -> Verifier.check(parsed).toString());
        assertEquals(g, parsed);
    }

    /** The generator reaches every op (a property over random graphs would otherwise silently skip some). */
    @Property(tries = 1)
    void everyOpAppearsInGeneratedGraphs() {
        Random r = new Random(7);
        Set<Op> seen = EnumSet.noneOf(Op.class);
        for (int i = 0; i < 2000 && seen.size() < Op.values().length; i++) randomGraph(r).nodes().forEach(n -> seen.add(n.op()));
        assertEquals(EnumSet.allOf(Op.class), seen);
    }
}
