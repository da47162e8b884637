package dev.moec.tests;

import dev.moec.cli.ModelCompiler;
import dev.moec.frontend.testmodel.TestModels;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.Arrays;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Checkpoints and artifacts shared by the end-to-end tests, made once per test JVM. */
final class Fixtures {
    private Fixtures() {}

    private static Path tiny, tinyArtifact, demoArtifact;
    private static final java.util.Map<String, Path> FAMILY_CHECKPOINTS = new java.util.HashMap<>();

    private static final List<Path> TEMP = new java.util.ArrayList<>();

    /** A temporary directory that is deleted, with what is in it, when the test JVM exits. */
    static Path tempDir(String prefix) throws IOException {
        Path dir = Files.createTempDirectory(prefix);
        synchronized (TEMP) {
            if (TEMP.isEmpty()) Runtime.getRuntime().addShutdownHook(new Thread(Fixtures::deleteTempDirs));
            TEMP.add(dir);
        }
        return dir;
    }

    private static void deleteTempDirs() {
        synchronized (TEMP) {
            for (Path dir : TEMP) {
                try (var files = Files.walk(dir)) {
                    files.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
                } catch (IOException | UncheckedIOException e) {
                    System.err.println("could not delete " + dir + ": " + e.getMessage());
                }
            }
        }
    }

    /** The seeded tiny checkpoint of a family (see {@code moec testmodel --arch A --preset tiny}), made once. */
    static synchronized Path tinyCheckpoint(String arch) {
        if (arch.equals("qwen3_moe")) return tinyCheckpoint();
        return FAMILY_CHECKPOINTS.computeIfAbsent(arch, a -> {
            try {
                Path dir = tempDir("moec-" + a + "-");
                TestModels.write(a, "tiny", 0, dir, line -> {});
                return dir;
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        });
    }

    /** The seeded tiny qwen3_moe checkpoint (hidden 256, 4 layers, 8 experts top-2, vocab 151,936). */
    static synchronized Path tinyCheckpoint() {
        if (tiny == null) {
            try {
                tiny = tempDir("moec-tiny-");
                TestModels.write("qwen3_moe", "tiny", 0, tiny, line -> {});
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
        return tiny;
    }

    /**
     * The tiny checkpoint compiled with decode graphs for batch sizes 1, 2 and 4, and KV blocks of
     * {@link #TINY_KV_BLOCK} positions: every test prompt spans several blocks, so every test on this
     * artifact goes through the block table.
     */
    static synchronized Path tinyArtifact() {
        if (tinyArtifact == null) tinyArtifact = compile(tinyCheckpoint(), List.of(1, 2, 4), TINY_KV_BLOCK);
        return tinyArtifact;
    }

    static synchronized Path demoArtifact() {
        if (demoArtifact == null) demoArtifact = compile(demoModel(), List.of(1, 2, 4, 8));
        return demoArtifact;
    }

    static final int TINY_KV_BLOCK = 4;

    static Path compile(Path checkpoint, List<Integer> batchSizes) {
        return compile(checkpoint, batchSizes, dev.moec.ir.StepAbi.DEFAULT_KV_BLOCK_SIZE);
    }

    static Path compile(Path checkpoint, List<Integer> batchSizes, int kvBlockSize) {
        return compile(checkpoint, batchSizes, kvBlockSize, dev.moec.passes.PassManager.defaultPipeline("none"));
    }

    static Path compile(Path checkpoint, List<Integer> batchSizes, int kvBlockSize, String pipeline) {
        try {
            Path out = tempDir("moec-artifact-");
            ModelCompiler.compile(checkpoint, out, new ModelCompiler.Options(batchSizes, pipeline, dev.moec.backend.Target.CPU, null, 1, kvBlockSize), line -> {});
            return out;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The embedded demo model of this checkout. */
    static Path demoModel() {
        return Paths.get(System.getProperty("moec.home", "..")).resolve("models/pydocs-moe-tiny").toAbsolutePath().normalize();
    }

    /** The prompt ids and the 16 greedy ids (computed by PyTorch) stated in the demo model's README. */
    record DemoCase(int[] prompt, int[] greedy) {}

    static DemoCase demoCase() {
        try {
            String readme = Files.readString(demoModel().resolve("README.md")).replaceAll("\\s+", " ");
            Matcher m = Pattern.compile("after the ids `([0-9,]+)`.*? gives `([0-9,]+)`").matcher(readme);
            if (!m.find()) throw new IllegalStateException("the demo README no longer states its greedy case");
            return new DemoCase(ids(m.group(1)), ids(m.group(2)));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static int[] ids(String csv) {
        return Arrays.stream(csv.split(",")).mapToInt(Integer::parseInt).toArray();
    }

    /** Prefills {@code prompt} into {@code slot} at positions 0..n-1 in one step; the last position's logits. */
    static float[] prefill(dev.moec.executor.StepModel m, int slot, int[] prompt) {
        int n = prompt.length;
        int[] pos = new int[n], slots = new int[n];
        for (int i = 0; i < n; i++) {
            pos[i] = i;
            slots[i] = slot;
        }
        return m.step(prompt, pos, slots, new int[]{n - 1})[0];
    }

    static float maxAbsDiff(float[] a, float[] b) {
        if (a.length != b.length) throw new IllegalArgumentException("lengths " + a.length + " and " + b.length);
        float m = 0;
        for (int i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
        return m;
    }
}
