package dev.moec.ir;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashSet;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The op table's own consistency: names, examples, and the generated documentation. */
class OpTableTest {
    private static final Pattern NODE = Pattern.compile("^(%[\\w.]+(?:, %[\\w.]+)*) = (\\w+)\\(([^)]*)\\)(?: \\{(.*)})? : (.+)$");

    @Test void namesAreUnique() {
        Set<String> names = new HashSet<>();
        for (Op op : Op.values()) assertTrue(names.add(op.text()), "duplicate op name " + op.text());
    }

    @Test void everyExampleIsANodeOfItsOpWithTheDeclaredArity() {
        for (Op op : Op.values()) {
            Matcher m = NODE.matcher(op.example());
            assertTrue(m.matches(), op.text() + ": example is not a node line: " + op.example());
            assertEquals(op.text(), m.group(2), op.text() + ": example names another op");
            assertEquals(op.resultCount(), m.group(1).split(", ").length, op.text() + ": result names");
            assertEquals(op.resultCount(), m.group(5).split(", (?=[a-z0-9]+\\[)").length, op.text() + ": result types");
            assertEquals(op.operandNames().size(), m.group(3).isEmpty() ? 0 : m.group(3).split(", ").length, op.text() + ": operands");
            Set<String> attrs = new HashSet<>();
            if (m.group(4) != null) Arrays.stream(m.group(4).split(", (?=\\w+ = )")).forEach(a -> attrs.add(a.substring(0, a.indexOf(" = "))));
            for (AttrSpec spec : op.attrs()) if (spec.required()) assertTrue(attrs.contains(spec.name()), op.text() + ": example lacks " + spec.name());
            for (String a : attrs) assertTrue(op.attrs().stream().anyMatch(s -> s.name().equals(a)), op.text() + ": example has unknown attribute " + a);
            assertTrue(op.summary().endsWith("."), op.text() + ": summary is a sentence");
        }
    }

    @Test void docsOpsMdIsGeneratedFromTheTable() throws IOException {
        Path doc = Path.of("..", "docs", "ops.md");
        assertEquals(OpDocs.markdown(), Files.readString(doc), "docs/ops.md is stale: regenerate it with `./moec ir ops --markdown > docs/ops.md`");
    }
}
