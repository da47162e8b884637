package dev.moec.capture;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.moec.backend.KernelGraph;
import dev.moec.ir.TensorType;
import dev.moec.ir.interp.TensorStore;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * A loaded artifact: manifest checked (format, version, SHA-256 of every file), graphs parsed, weights
 * memory-mapped. Weights are served as a {@link TensorStore} so the same artifact can also be run by the
 * reference interpreter.
 */
public final class Artifact implements TensorStore, AutoCloseable {
    private final Path dir;
    private final Manifest manifest;
    private final KernelGraph prefill;
    private final Map<Integer, KernelGraph> decode;
    private final Arena arena;
    private final MemorySegment weights;
    private final Map<String, Manifest.TensorEntry> tensors;

    private Artifact(Path dir, Manifest manifest, KernelGraph prefill, Map<Integer, KernelGraph> decode, Arena arena,
                     MemorySegment weights, Map<String, Manifest.TensorEntry> tensors) {
        this.dir = dir;
        this.manifest = manifest;
        this.prefill = prefill;
        this.decode = decode;
        this.arena = arena;
        this.weights = weights;
        this.tensors = tensors;
    }

    public static boolean isArtifact(Path dir) { return Files.isRegularFile(dir.resolve("manifest.json")); }

    public static Artifact open(Path dir) {
        Path mf = dir.resolve("manifest.json");
        if (!Files.isRegularFile(mf)) throw new ArtifactException(dir, "no manifest.json: not a moec artifact (compile one with `moec compile`)");
        ObjectMapper json = new ObjectMapper().configure(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES, false);
        Manifest m;
        try {
            JsonNode root = json.readTree(mf.toFile());
            if (!Manifest.FORMAT.equals(root.path("format").asText())) throw new ArtifactException(mf, "format is '" + root.path("format").asText() + "', expected " + Manifest.FORMAT);
            int version = root.path("formatVersion").asInt(-1);
            if (version != Manifest.FORMAT_VERSION) {
                throw new ArtifactException(mf, "format version " + version + " is not supported by this moec (it reads version " + Manifest.FORMAT_VERSION + "); recompile the model");
            }
            m = json.treeToValue(root, Manifest.class);
        } catch (IOException e) {
            throw new ArtifactException(mf, "unreadable: " + e.getMessage());
        }
        try {
            for (var e : m.sha256().entrySet()) {
                Path f = dir.resolve(e.getKey());
                if (!Files.isRegularFile(f)) throw new ArtifactException(f, "listed in the manifest but missing");
                if (!ArtifactWriter.hash(f).equals(e.getValue())) throw new ArtifactException(f, "SHA-256 mismatch: the file is corrupted or was changed after compilation");
            }
            KernelGraph prefill = null;
            Map<Integer, KernelGraph> decode = new TreeMap<>();
            for (Manifest.GraphEntry g : m.graphs()) {
                KernelGraph kg = KernelGraphJson.read(json.readTree(dir.resolve(g.file()).toFile()));
                if (g.kind().equals("prefill")) prefill = kg; else decode.put(g.batchSize(), kg);
            }
            if (prefill == null || decode.isEmpty()) throw new ArtifactException(mf, "needs a prefill graph and at least one decode graph");
            Map<String, Manifest.TensorEntry> tensors = new LinkedHashMap<>();
            for (Manifest.TensorEntry t : m.weights().tensors()) tensors.put(t.name(), t);
            Arena arena = Arena.ofShared();
            MemorySegment seg;
            try (FileChannel ch = FileChannel.open(dir.resolve(m.weights().file()), StandardOpenOption.READ)) {
                seg = ch.size() == 0 ? MemorySegment.NULL : ch.map(FileChannel.MapMode.READ_ONLY, 0, ch.size(), arena);
            }
            for (Manifest.TensorEntry t : tensors.values()) {
                TensorType tt = TensorType.parse(t.type());
                long[] d = tt.shape().sizes();
                long want = "nz".equals(t.layout()) ? dev.moec.backend.Nz.bytes(tt.dtype(), d.length == 3 ? d[0] : 1, d[d.length - 2], d[d.length - 1]) : tt.bytes();
                if (t.offset() < 0 || t.offset() + t.bytes() > seg.byteSize() || want != t.bytes()) {
                    arena.close();
                    throw new ArtifactException(dir.resolve(m.weights().file()), "weight " + t.name() + " " + t.type() + " at [" + t.offset() + ", +" + t.bytes() + ") does not fit the file");
                }
            }
            return new Artifact(dir, m, prefill, decode, arena, seg, tensors);
        } catch (IOException e) {
            throw new ArtifactException(dir, "unreadable: " + e.getMessage());
        }
    }

    public Path dir() { return dir; }
    public Manifest manifest() { return manifest; }
    public KernelGraph prefillGraph() { return prefill; }
    /** Decode graphs by batch size, ascending. */
    public Map<Integer, KernelGraph> decodeGraphs() { return decode; }

    /** Tokens one decode step of batch size {@code bs} carries (bs, or bs x draft tokens with speculation). */
    public int decodeTokens(int bs) {
        return manifest.graphs().stream().filter(g -> g.kind().equals("decode") && g.batchSize() == bs).mapToInt(Manifest.GraphEntry::tokens)
                .findFirst().orElseThrow(() -> new IllegalArgumentException("no decode graph for batch size " + bs));
    }

    public Path tokenizerDir() { return dir.resolve("tokenizer"); }

    @Override public Set<String> names() { return tensors.keySet(); }

    @Override public TensorType type(String name) { return TensorType.parse(entry(name).type()); }

    @Override public MemorySegment raw(String name) {
        Manifest.TensorEntry e = entry(name);
        return weights.asSlice(e.offset(), e.bytes());
    }

    @Override public float[] readF32(String name) {
        TensorType t = type(name);
        if (!dev.moec.ir.interp.StoredValues.widens(t.dtype())) throw new ArtifactException(dir, "weight " + name + " is " + t.dtype() + ", which cannot be widened to f32");
        return dev.moec.ir.interp.StoredValues.widen(raw(name), t.dtype(), Math.toIntExact(t.shape().elements()));
    }

    private Manifest.TensorEntry entry(String name) {
        Manifest.TensorEntry e = tensors.get(name);
        if (e == null) throw new IllegalArgumentException("artifact " + dir + " has no weight '" + name + "'");
        return e;
    }

    /** Unmaps the weights; closing again (say, by the model that runs it and by its opener) does nothing. */
    @Override public synchronized void close() {
        if (arena.scope().isAlive()) arena.close();
    }

    /** A broken or incompatible artifact; the message names the file and the problem. */
    public static final class ArtifactException extends RuntimeException {
        public ArtifactException(Path file, String problem) { super(file + ": " + problem); }
    }
}
