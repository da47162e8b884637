package dev.moec.ir;

import dev.moec.ir.text.IrParseException;
import dev.moec.ir.text.IrParser;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Golden IR files under {@code src/test/resources/golden}: {@code parse/} must fail to parse and
 * {@code verify/} must parse and fail verification, each with the message on its {@code // EXPECT:}
 * line; {@code roundtrip/} must print back exactly and verify clean.
 */
class GoldenTest {
    @TestFactory Stream<DynamicTest> parseErrors() throws Exception {
        return cases("parse").map(f -> DynamicTest.dynamicTest(f.getFileName().toString(), () -> {
            String text = Files.readString(f);
            var e = assertThrows(IrParseException.class, () -> IrParser.parse(text, f.getFileName().toString()));
            assertTrue(e.getMessage().contains(expected(text)), e.getMessage());
        }));
    }

    @TestFactory Stream<DynamicTest> verifierErrors() throws Exception {
        return cases("verify").map(f -> DynamicTest.dynamicTest(f.getFileName().toString(), () -> {
            String text = Files.readString(f);
            List<String> violations = Verifier.check(IrParser.parse(text)).stream().map(Verifier.Violation::toString).toList();
            assertTrue(violations.stream().anyMatch(v -> v.contains(expected(text))), violations.toString());
        }));
    }

    @TestFactory Stream<DynamicTest> roundTrips() throws Exception {
        return cases("roundtrip").map(f -> DynamicTest.dynamicTest(f.getFileName().toString(), () -> {
            String text = Files.readString(f);
            Graph g = IrParser.parse(text);
            assertEquals(text, Printer.print(g));
            assertEquals(List.of(), Verifier.check(g));
        }));
    }

    private static String expected(String text) {
        String first = text.lines().findFirst().orElse("");
        if (!first.startsWith("// EXPECT: ")) throw new IllegalStateException("golden file lacks its // EXPECT: line");
        return first.substring("// EXPECT: ".length());
    }

    private static Stream<Path> cases(String dir) throws IOException, URISyntaxException {
        Path root = Path.of(GoldenTest.class.getResource("/golden/" + dir).toURI());
        List<Path> files;
        try (Stream<Path> s = Files.list(root)) {
            files = s.filter(p -> p.toString().endsWith(".mir")).sorted().toList();
        }
        if (files.isEmpty()) throw new IllegalStateException("no golden files in " + root);
        return files.stream();
    }
}
