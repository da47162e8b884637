package dev.moec.passes;

import dev.moec.ir.Graph;
import dev.moec.ir.Printer;
import dev.moec.ir.text.IrParser;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * FileCheck-style golden tests under {@code src/test/resources/golden}: IR text in, the passes on its
 * {@code // RUN:} line, and the printed result must contain every {@code // CHECK:} line in order and no
 * {@code // CHECK-NOT:} text anywhere. The first pass must report a change; a second run of the whole
 * pipeline must not.
 */
class GoldenPassTest {
    @TestFactory Stream<DynamicTest> goldenFiles() throws Exception {
        Path root = Path.of(GoldenPassTest.class.getResource("/golden").toURI());
        List<Path> files;
        try (Stream<Path> s = Files.list(root)) {
            files = s.filter(p -> p.toString().endsWith(".mir")).sorted().toList();
        }
        return files.stream().map(f -> DynamicTest.dynamicTest(f.getFileName().toString(), () -> check(Files.readString(f))));
    }

    private static void check(String text) {
        List<String> lines = text.lines().toList();
        String run = lines.stream().filter(l -> l.startsWith("// RUN: ")).findFirst().orElseThrow().substring("// RUN: ".length());
        Graph in = IrParser.parse(text);
        PassManager pm = new PassManager(run);
        Graph out = pm.run(in);
        assertTrue(pm.records().getFirst().changed(), "the first pass of '" + run + "' reported no change");
        String printed = Printer.print(out);
        int at = 0;
        for (String l : lines) {
            if (l.startsWith("// CHECK: ")) {
                String want = l.substring("// CHECK: ".length());
                int found = printed.indexOf(want, at);
                assertTrue(found >= 0, "CHECK not found after position " + at + ": " + want + "\n--- output ---\n" + printed);
                at = found + want.length();
            } else if (l.startsWith("// CHECK-NOT: ")) {
                String not = l.substring("// CHECK-NOT: ".length());
                assertFalse(printed.contains(not), "CHECK-NOT found: " + not + "\n--- output ---\n" + printed);
            }
        }
        assertEquals(out, new PassManager(run).run(out), "a second run of '" + run + "' changed the graph");
    }

    /** Every pass of the pass list has at least one golden file whose RUN line starts with it. */
    @Test void everyPassHasAGoldenFile() throws Exception {
        Path root = Path.of(GoldenPassTest.class.getResource("/golden").toURI());
        Set<String> covered = new HashSet<>();
        try (Stream<Path> s = Files.list(root)) {
            for (Path f : s.toList()) {
                Files.readString(f).lines().filter(l -> l.startsWith("// RUN: ")).forEach(l -> covered.add(l.substring(8).split(",")[0]));
            }
        }
        assertEquals(PassManager.PASSES.keySet(), covered);
    }
}
