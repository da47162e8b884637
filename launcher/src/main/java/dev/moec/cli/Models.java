package dev.moec.cli;

import dev.moec.backend.Target;
import dev.moec.capture.Artifact;
import dev.moec.executor.CompiledModel;
import dev.moec.executor.ReferenceModel;
import dev.moec.executor.StepModel;
import dev.moec.executor.cpu.PageMemory;
import dev.moec.frontend.Checkpoint;
import dev.moec.frontend.ModelImport;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.function.Consumer;
import java.util.stream.Stream;

/** Opens what the user names: an artifact directory, or a checkpoint directory compiled on the fly. */
final class Models {
    private Models() {}

    /** A runnable model with what a front end needs around it. */
    record Loaded(String name, StepModel model, Path tokenizerDir, Set<Integer> eosIds, AutoCloseable resources) implements AutoCloseable {
        @Override public void close() {
            model.close();
            if (resources != null) {
                try {
                    resources.close();
                } catch (Exception e) {
                    System.err.println("moec: closing " + name + ": " + e.getMessage());
                }
            }
        }
    }

    /** The embedded demo model: {@code models/pydocs-moe-tiny} of the moec checkout. */
    static Path demoModel() {
        String home = System.getProperty("moec.home");
        List<Path> bases = home != null ? List.of(Paths.get(home)) : List.of(Paths.get("").toAbsolutePath(), Paths.get("..").toAbsolutePath());
        for (Path b : bases) {
            Path p = b.resolve("models/pydocs-moe-tiny");
            if (Files.isRegularFile(p.resolve("config.json"))) return p.normalize();
        }
        throw new IllegalArgumentException("the embedded demo model models/pydocs-moe-tiny was not found (looked under " + bases
                + "); run moec through the ./moec script of a checkout, or name a model");
    }

    static Loaded compiled(Path path, List<Integer> batchSizes, int maxSeqLen, int kvBlockSize, Moec.ExecutorOptions executor,
                           Consumer<String> progress) throws IOException {
        return compiled(path, batchSizes, maxSeqLen, ModelCompiler.Options.defaults().pipeline(), kvBlockSize, executor, progress);
    }

    /**
     * As above; a checkpoint directory is compiled with {@code pipeline} and KV blocks of {@code kvBlockSize}
     * positions (an artifact keeps its own). {@code executor}: threads, captured replay and the KV cache's size.
     */
    static Loaded compiled(Path path, List<Integer> batchSizes, int maxSeqLen, String pipeline, int kvBlockSize, Moec.ExecutorOptions executor,
                           Consumer<String> progress) throws IOException {
        Path artifactDir = path;
        Path temp = null;
        if (!Artifact.isArtifact(path)) {
            temp = Files.createTempDirectory("moec-artifact-");
            Path cleanup = temp;
            Runtime.getRuntime().addShutdownHook(new Thread(() -> deleteTree(cleanup)));
            ModelCompiler.compile(path, temp, new ModelCompiler.Options(batchSizes, pipeline, Target.CPU, null, 1, kvBlockSize), progress);
            artifactDir = temp;
        }
        Artifact artifact = Artifact.open(artifactDir);
        int slots = artifact.decodeGraphs().keySet().stream().mapToInt(Integer::intValue).max().orElse(1);
        progress.accept("loading " + artifactDir + ": matmul weights into the CPU's panel layout, decode graphs "
                + (executor.capture() ? "captured" : "bound for --no-capture"));
        CompiledModel model = new CompiledModel(artifact, slots, maxSeqLen, executor.threads(), executor.capture(), executor.kvCacheBlocks);
        var panels = model.weightPanels();
        long huge = PageMemory.hugeBytes();
        String pages = !PageMemory.advised() ? " (huge pages not asked for)"
                : huge < 0 ? "" : String.format(Locale.ROOT, " (%.1f MB of the process on 2 MB pages)", huge / 1e6);
        progress.accept(String.format(Locale.ROOT, "loaded: %.1f MB of weight panels in %.1f s%s", panels.bytes() / 1e6, panels.millis() / 1e3, pages));
        String name = temp == null ? artifact.manifest().model().name() : path.toAbsolutePath().normalize().getFileName().toString();
        return new Loaded(name, model, artifact.tokenizerDir(), new HashSet<>(artifact.manifest().model().eosTokenIds()), null);
    }

    static Loaded reference(Path checkpointDir, int maxSlots, int maxSeqLen, int kvBlockSize, int kvBlocks) {
        if (Artifact.isArtifact(checkpointDir)) {
            throw new IllegalArgumentException(checkpointDir + " is a compiled artifact; --reference runs the IR of a checkpoint directory");
        }
        Checkpoint ckpt = Checkpoint.open(checkpointDir);
        var info = ModelCompiler.modelInfo(ckpt);
        StepModel model = new ReferenceModel(ModelImport.stepGraph(ckpt), ckpt, maxSlots, Math.min(maxSeqLen, info.maxPositions()), kvBlockSize, kvBlocks);
        return new Loaded(info.name(), model, checkpointDir, new HashSet<>(info.eosTokenIds()), ckpt);
    }

    static void deleteTree(Path dir) {
        try (Stream<Path> s = Files.walk(dir)) {
            s.sorted(Comparator.reverseOrder()).forEach(p -> {
                try {
                    Files.deleteIfExists(p);
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            });
        } catch (IOException | UncheckedIOException e) {
            System.err.println("moec: could not remove " + dir + ": " + e.getMessage());
        }
    }
}
