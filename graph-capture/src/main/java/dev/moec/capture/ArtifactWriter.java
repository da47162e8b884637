package dev.moec.capture;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.moec.backend.KernelGraph;
import dev.moec.backend.Target;
import dev.moec.ir.StepAbi;
import dev.moec.ir.TensorType;
import dev.moec.ir.interp.TensorStore;

import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.DigestOutputStream;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.function.Consumer;

/**
 * Captures a lowered model into an artifact directory:
 * <pre>
 * manifest.json            format version, model info, graph list, weight index, SHA-256 of every file
 * graphs/prefill.json      the step graph with a symbolic token count T
 * graphs/decode_bs{n}.json one static graph per --cuda-graph-bs size n (T = R = n)
 * weights.bin              every weight the graphs read, packed at 64-byte alignment, in name order
 * tokenizer/...            the tokenizer files of the checkpoint
 * </pre>
 * Everything is written in a fixed order, so the same inputs give byte-identical artifacts.
 */
public final class ArtifactWriter {
    private static final int ALIGN = 64;

    private ArtifactWriter() {}

    /** {@code tokensPerSequence}: 1, or 1 + the draft tokens a speculative decode step verifies. */
    public record Request(KernelGraph graph, TensorStore weights, ModelInfo model, List<Integer> batchSizes,
                          List<Path> tokenizerFiles, String pipeline, Target target, int tokensPerSequence, int kvBlockSize) {
        public Request(KernelGraph graph, TensorStore weights, ModelInfo model, List<Integer> batchSizes, List<Path> tokenizerFiles, String pipeline, Target target) {
            this(graph, weights, model, batchSizes, tokenizerFiles, pipeline, target, 1, StepAbi.DEFAULT_KV_BLOCK_SIZE);
        }
    }

    public static Manifest write(Request req, Path out, Consumer<String> progress) throws IOException {
        if (req.batchSizes().isEmpty()) throw new IllegalArgumentException("--cuda-graph-bs needs at least one batch size");
        for (int bs : req.batchSizes()) if (bs < 1) throw new IllegalArgumentException("batch size " + bs + " must be at least 1");
        if (req.kvBlockSize() < 1) throw new IllegalArgumentException("--kv-block-size must be at least 1, got " + req.kvBlockSize());
        Files.createDirectories(out.resolve("graphs"));
        ObjectMapper json = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).enable(SerializationFeature.ORDER_MAP_ENTRIES_BY_KEYS);
        Map<String, String> sha = new TreeMap<>();

        // 1. Graphs: the prefill graph keeps T and R symbolic; each decode graph binds them to its batch size,
        //    and its slices that are contiguous runs at that size become views.
        List<Manifest.GraphEntry> graphs = new ArrayList<>();
        if (req.tokensPerSequence() < 1) throw new IllegalArgumentException("tokens per sequence must be at least 1");
        graphs.add(writeGraph(json, out, "prefill", "prefill", 0, 0, req.graph().bind("prefill", Map.of()), null, sha));
        for (int bs : new TreeSet<>(req.batchSizes())) {
            long tokens = (long) bs * req.tokensPerSequence();
            KernelGraph decode = req.graph().bind("decode_bs" + bs, Map.of(StepAbi.T, tokens, StepAbi.R, tokens)).withSliceViews();
            MemoryPlan plan = MemoryPlan.of(decode.bind(decode.name(), StepAbi.stateBindings(1, 1, 1, 1)));
            graphs.add(writeGraph(json, out, decode.name(), "decode", bs, (int) tokens, decode, plan, sha));
        }
        progress.accept("captured " + graphs.size() + " graphs: " + String.join(", ", graphs.stream().map(Manifest.GraphEntry::name).toList()));

        // 2. Weights, each at an aligned offset, stacked expert tensors concatenated along the expert axis.
        Map<String, TensorType> weights = new TreeMap<>();
        Map<String, String> layouts = new TreeMap<>();
        for (KernelGraph.Buffer b : req.graph().buffers()) {
            if (b.role() != KernelGraph.Role.WEIGHT) continue;
            weights.put(b.source(), b.type());
            layouts.put(b.source(), b.layout());
        }
        DerivedWeights derived = new DerivedWeights(req.graph(), req.weights());
        List<Manifest.TensorEntry> entries = new ArrayList<>();
        MessageDigest digest = sha256();
        long offset = 0, done = 0, total = weights.values().stream().mapToLong(TensorType::bytes).sum();
        List<String> report = req.target() == Target.ASCEND
                ? dev.moec.backend.Contracts.check(req.graph(), (long) req.batchSizes().stream().mapToInt(Integer::intValue).max().orElse(1) * req.tokensPerSequence(),
                        req.kvBlockSize())
                : List.of();
        report.forEach(line -> progress.accept("ascend: " + line));
        try (OutputStream os = new DigestOutputStream(new BufferedOutputStream(Files.newOutputStream(out.resolve("weights.bin")), 1 << 20), digest)) {
            int lastPercent = -1;
            for (var e : weights.entrySet()) {
                long pad = (ALIGN - offset % ALIGN) % ALIGN;
                os.write(new byte[(int) pad]);
                offset += pad;
                long bytes;
                String layout = layouts.get(e.getKey());
                if (DerivedWeights.isDerived(e.getKey()) || layout.equals("nz")) {
                    byte[] b = DerivedWeights.isDerived(e.getKey()) ? derived.bytes(e.getKey()) : tensorBytes(e.getKey(), e.getValue(), req.weights());
                    if (layout.equals("nz")) {
                        long[] d = e.getValue().shape().sizes();
                        long matrices = d.length == 3 ? d[0] : 1;
                        b = dev.moec.backend.Nz.pack(b, e.getValue().dtype(), matrices, (int) d[d.length - 2], (int) d[d.length - 1]);
                    }
                    os.write(b);
                    bytes = b.length;
                } else {
                    bytes = writeTensor(os, e.getKey(), e.getValue(), req.weights());
                }
                entries.add(new Manifest.TensorEntry(e.getKey(), e.getValue().toString(), offset, bytes, layout));
                offset += bytes;
                done += bytes;
                int percent = (int) (100 * done / Math.max(1, total));
                if (percent / 10 != lastPercent / 10) {
                    progress.accept(String.format("weights %3d%% (%,d of %,d bytes)", percent, done, total));
                    lastPercent = percent;
                }
            }
        }
        sha.put("weights.bin", HexFormat.of().formatHex(digest.digest()));

        // 3. Tokenizer files, as they are.
        List<String> tokenizer = new ArrayList<>();
        if (!req.tokenizerFiles().isEmpty()) Files.createDirectories(out.resolve("tokenizer"));
        for (Path f : req.tokenizerFiles()) {
            String rel = "tokenizer/" + f.getFileName();
            Files.copy(f, out.resolve(rel), StandardCopyOption.REPLACE_EXISTING);
            sha.put(rel, hash(out.resolve(rel)));
            tokenizer.add(rel);
        }

        // 4. The manifest last: a directory without one is not an artifact.
        Manifest m = new Manifest(Manifest.FORMAT, Manifest.FORMAT_VERSION, "moec " + version(), req.model(), req.target().text(),
                req.pipeline(), req.kvBlockSize(), graphs, new Manifest.WeightsEntry("weights.bin", entries), tokenizer, report, sha);
        Files.writeString(out.resolve("manifest.json"), json.writeValueAsString(m) + "\n");
        progress.accept("wrote artifact " + out);
        return m;
    }

    private static Manifest.GraphEntry writeGraph(ObjectMapper json, Path out, String name, String kind, int bs, int tokens, KernelGraph g,
                                                  MemoryPlan plan, Map<String, String> sha) throws IOException {
        String rel = "graphs/" + name + ".json";
        Files.writeString(out.resolve(rel), json.writeValueAsString(KernelGraphJson.write(json, g)) + "\n");
        sha.put(rel, hash(out.resolve(rel)));
        return new Manifest.GraphEntry(name, kind, bs, tokens, rel, plan == null ? 0 : plan.peakBytes(), plan == null ? 0 : plan.naiveBytes());
    }

    /** A stored tensor's bytes (stacked members concatenated) in memory, for layouts that rearrange them. */
    private static byte[] tensorBytes(String name, TensorType type, TensorStore store) throws IOException {
        java.io.ByteArrayOutputStream b = new java.io.ByteArrayOutputStream((int) type.bytes());
        writeTensor(b, name, type, store);
        return b.toByteArray();
    }

    private static long writeTensor(OutputStream os, String name, TensorType type, TensorStore store) throws IOException {
        List<String> members = new ArrayList<>();
        if (name.contains("*")) {
            for (long e = 0; e < type.shape().dim(0).size(); e++) members.add(name.replace("*", Long.toString(e)));
        } else {
            members.add(name);
        }
        long bytes = 0;
        for (String m : members) {
            MemorySegment seg = store.raw(m);
            byte[] buf = new byte[1 << 16];
            for (long pos = 0; pos < seg.byteSize(); pos += buf.length) {
                int n = (int) Math.min(buf.length, seg.byteSize() - pos);
                MemorySegment.copy(seg, ValueLayout.JAVA_BYTE, pos, buf, 0, n);
                os.write(buf, 0, n);
            }
            bytes += seg.byteSize();
        }
        if (bytes != type.bytes()) throw new IllegalStateException("weight " + name + " has " + bytes + " bytes, its type " + type + " needs " + type.bytes());
        return bytes;
    }

    static String hash(Path file) throws IOException {
        MessageDigest d = sha256();
        try (var in = Files.newInputStream(file)) {
            byte[] buf = new byte[1 << 20];
            for (int n; (n = in.read(buf)) > 0; ) d.update(buf, 0, n);
        }
        return HexFormat.of().formatHex(d.digest());
    }

    static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    static String version() {
        String v = ArtifactWriter.class.getPackage().getImplementationVersion();
        return v == null ? "dev" : v;
    }
}
