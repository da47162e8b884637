package dev.moec.tests;

import dev.moec.capture.Artifact;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The artifact on disk: its layout, determinism, and refusal of damaged or foreign artifacts. */
class ArtifactTest {
    @TempDir Path dir;

    @Test void holdsAPrefillGraphAndOneDecodeGraphPerBatchSize() {
        try (Artifact a = Artifact.open(Fixtures.demoArtifact())) {
            assertEquals(List.of(1, 2, 4, 8), List.copyOf(a.decodeGraphs().keySet()));
            assertEquals("prefill", a.prefillGraph().name());
            assertEquals(4, a.manifest().formatVersion());
            assertEquals("qwen3_moe", a.manifest().model().modelType());
            assertEquals(List.of(8191, 8189), a.manifest().model().eosTokenIds());
            // Decode graphs are static in the token count; the prefill graph is not.
            assertTrue(a.decodeGraphs().get(4).buffer("tokens").type().shape().isStatic());
            assertEquals("i32[T]", a.prefillGraph().buffer("tokens").type().toString());
        }
    }

    @Test void compilingTwiceGivesByteIdenticalArtifacts() throws IOException {
        Path a = Fixtures.compile(Fixtures.demoModel(), List.of(1, 2, 4, 8));
        Path b = Fixtures.demoArtifact();
        List<Path> files = files(a);
        assertEquals(files, files(b));
        for (Path f : files) assertArrayEquals(Files.readAllBytes(a.resolve(f)), Files.readAllBytes(b.resolve(f)), f.toString());
    }

    @Test void aCorruptedWeightFileIsRefused() throws IOException {
        Path copy = copy(Fixtures.demoArtifact());
        Path weights = copy.resolve("weights.bin");
        byte[] bytes = Files.readAllBytes(weights);
        bytes[bytes.length / 2] ^= 1;
        Files.write(weights, bytes);
        var e = assertThrows(Artifact.ArtifactException.class, () -> Artifact.open(copy));
        assertTrue(e.getMessage().contains("weights.bin") && e.getMessage().contains("SHA-256"), e.getMessage());
    }

    @Test void anotherFormatVersionIsRefused() throws IOException {
        Path copy = copy(Fixtures.demoArtifact());
        Path manifest = copy.resolve("manifest.json");
        Files.writeString(manifest, Files.readString(manifest).replace("\"formatVersion\" : 4", "\"formatVersion\" : 99"));
        var e = assertThrows(Artifact.ArtifactException.class, () -> Artifact.open(copy));
        assertTrue(e.getMessage().contains("format version 99"), e.getMessage());
    }

    @Test void aDirectoryWithoutManifestIsNotAnArtifact() {
        var e = assertThrows(Artifact.ArtifactException.class, () -> Artifact.open(dir));
        assertTrue(e.getMessage().contains("manifest.json"), e.getMessage());
    }

    private Path copy(Path src) throws IOException {
        Path out = dir.resolve("copy");
        for (Path f : files(src)) {
            Files.createDirectories(out.resolve(f).getParent());
            Files.copy(src.resolve(f), out.resolve(f), StandardCopyOption.REPLACE_EXISTING);
        }
        return out;
    }

    private static List<Path> files(Path root) throws IOException {
        try (Stream<Path> s = Files.walk(root)) {
            return s.filter(Files::isRegularFile).map(root::relativize).sorted().toList();
        }
    }
}
