package dev.moec.frontend;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.moec.frontend.safetensors.SafetensorsFile;
import dev.moec.ir.TensorType;
import dev.moec.ir.interp.TensorStore;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Stream;

/**
 * A Hugging Face checkpoint directory: {@code config.json}, one {@code model.safetensors} or shards listed
 * by {@code model.safetensors.index.json}, and tokenizer files. Tensors are read lazily from the mappings.
 */
public final class Checkpoint implements TensorStore, AutoCloseable {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final Path dir;
    private final JsonNode config;
    private final List<SafetensorsFile> files;
    private final Map<String, SafetensorsFile> byTensor;
    /** Block-FP8 weights: weight name -> its weight_scale_inv tensor; they read as {@link #fp8Target}. */
    private final Map<String, String> fp8Scales = new java.util.HashMap<>();
    private final int[] fp8Block;
    private final dev.moec.ir.DType fp8Target;
    private final Set<String> visible;
    /** msModelSlim's quant_model_description.json: tensor name -> quantization type (absent: FLOAT). */
    private final Map<String, String> quantTypes;

    private Checkpoint(Path dir, JsonNode config, List<SafetensorsFile> files, Map<String, SafetensorsFile> byTensor) {
        this.dir = dir;
        this.config = config;
        this.files = files;
        this.byTensor = byTensor;
        JsonNode q = config.path("quantization_config");
        JsonNode block = q.path("weight_block_size");
        this.fp8Block = block.isArray() && block.size() == 2 ? new int[]{block.get(0).asInt(), block.get(1).asInt()} : new int[]{128, 128};
        this.fp8Target = switch (ModelImport.textConfig(config).path("torch_dtype").asText(config.path("torch_dtype").asText("bfloat16"))) {
            case "float16" -> dev.moec.ir.DType.F16;
            case "float32" -> dev.moec.ir.DType.F32;
            default -> dev.moec.ir.DType.BF16;
        };
        Set<String> shown = new TreeSet<>(byTensor.keySet());
        for (var e : byTensor.entrySet()) {
            SafetensorsFile.Entry entry = e.getValue().entry(e.getKey());
            if (entry.type().dtype() != dev.moec.ir.DType.F8E4M3) continue;
            String scale = e.getKey() + "_scale_inv";
            SafetensorsFile sf = byTensor.get(scale);
            if (sf == null) throw new CheckpointException(e.getValue().path(), e.getKey(), "an fp8 weight needs its block scales '" + scale + "'");
            long[] w = entry.type().shape().sizes(), sc = sf.entry(scale).type().shape().sizes();
            if (w.length != 2 || sc.length != 2 || sc[0] != (w[0] + fp8Block[0] - 1) / fp8Block[0] || sc[1] != (w[1] + fp8Block[1] - 1) / fp8Block[1]) {
                throw new CheckpointException(sf.path(), scale, "block scales " + java.util.Arrays.toString(sc) + " do not fit weight " + java.util.Arrays.toString(w)
                        + " in " + fp8Block[0] + "x" + fp8Block[1] + " blocks");
            }
            fp8Scales.put(e.getKey(), scale);
            shown.remove(scale);
        }
        this.visible = java.util.Collections.unmodifiableSet(shown);
        this.quantTypes = readQuantDescription(dir);
        for (var e : quantTypes.entrySet()) {
            if (e.getValue().equals("W4A8_DYNAMIC") && e.getKey().endsWith(".weight") && byTensor.containsKey(e.getKey())
                    && byTensor.get(e.getKey()).entry(e.getKey()).type().dtype() != dev.moec.ir.DType.I8) {
                throw new CheckpointException(byTensor.get(e.getKey()).path(), e.getKey(), "a W4A8_DYNAMIC weight must be int8 holding two int4 per byte");
            }
        }
    }

    /** Per-tensor types of an msModelSlim checkpoint (W8A8, W8A8_DYNAMIC, W4A8_DYNAMIC, FLOAT...). */
    private static Map<String, String> readQuantDescription(Path dir) {
        Path file = dir.resolve("quant_model_description.json");
        if (!Files.isRegularFile(file)) return Map.of();
        Map<String, String> m = new java.util.HashMap<>();
        readConfig(file).properties().forEach(e -> { if (e.getValue().isTextual()) m.put(e.getKey(), e.getValue().asText()); });
        return Map.copyOf(m);
    }

    /** The msModelSlim quantization of a tensor: "FLOAT" when the checkpoint is not quantized or leaves it in float. */
    public String quantType(String tensor) { return quantTypes.getOrDefault(tensor, "FLOAT"); }

    private boolean packedInt4(String name) { return quantTypes.getOrDefault(name, "").equals("W4A8_DYNAMIC") && name.endsWith(".weight"); }

    public static Checkpoint open(Path dir) {
        if (!Files.isDirectory(dir)) throw new CheckpointException(dir, null, "not a checkpoint directory");
        JsonNode config = readConfig(dir.resolve("config.json"));
        List<Path> shards = shards(dir);
        List<SafetensorsFile> files = new ArrayList<>();
        Map<String, SafetensorsFile> byTensor = new LinkedHashMap<>();
        try {
            for (Path p : shards) {
                SafetensorsFile f = SafetensorsFile.open(p);
                files.add(f);
                for (String name : f.entries().keySet()) {
                    SafetensorsFile prev = byTensor.put(name, f);
                    if (prev != null) throw new CheckpointException(p, name, "also present in " + prev.path().getFileName());
                }
            }
        } catch (RuntimeException e) {
            files.forEach(SafetensorsFile::close);
            throw e;
        }
        return new Checkpoint(dir, config, files, Collections.unmodifiableMap(byTensor));
    }

    public static JsonNode readConfig(Path file) {
        if (!Files.isRegularFile(file)) throw new CheckpointException(file, null, "missing (a checkpoint needs config.json)");
        try {
            JsonNode n = JSON.readTree(file.toFile());
            if (n == null || !n.isObject()) throw new CheckpointException(file, null, "not a JSON object");
            return n;
        } catch (IOException e) {
            throw new CheckpointException(file, null, "not valid JSON: " + e.getMessage(), e);
        }
    }

    private static List<Path> shards(Path dir) {
        Path index = dir.resolve("model.safetensors.index.json");
        if (!Files.isRegularFile(index)) {
            try (Stream<Path> s = Files.list(dir)) {
                index = s.filter(p -> p.getFileName().toString().endsWith(".safetensors.index.json")).sorted().findFirst().orElse(index);
            } catch (IOException e) {
                throw new CheckpointException(dir, null, "cannot list: " + e.getMessage(), e);
            }
        }
        if (Files.isRegularFile(index)) {
            JsonNode map;
            try {
                map = JSON.readTree(index.toFile()).path("weight_map");
            } catch (IOException e) {
                throw new CheckpointException(index, null, "not valid JSON: " + e.getMessage(), e);
            }
            if (!map.isObject()) throw new CheckpointException(index, null, "has no weight_map object");
            Set<String> names = new TreeSet<>();
            map.properties().forEach(e -> names.add(e.getValue().asText()));
            return names.stream().map(dir::resolve).toList();
        }
        Path single = dir.resolve("model.safetensors");
        if (Files.isRegularFile(single)) return List.of(single);
        try (Stream<Path> s = Files.list(dir)) {
            List<Path> found = s.filter(p -> p.getFileName().toString().endsWith(".safetensors")).sorted().toList();
            if (found.isEmpty()) throw new CheckpointException(dir, null, "no .safetensors files");
            return found;
        } catch (IOException e) {
            throw new CheckpointException(dir, null, "cannot list: " + e.getMessage(), e);
        }
    }

    public Path dir() { return dir; }
    public JsonNode config() { return config; }

    /** The tensors as import sees them: block-FP8 weights dequantized, their scale tensors folded in. */
    @Override public Set<String> names() { return visible; }

    @Override public TensorType type(String name) {
        TensorType t = file(name).entry(name).type();
        if (packedInt4(name)) {
            // msModelSlim W4A8: int8 [out/2, in], two int4 per byte along the output dim.
            long[] d = t.shape().sizes();
            return TensorType.of(dev.moec.ir.DType.I4, 2 * d[0], d[1]);
        }
        return fp8Scales.containsKey(name) ? t.withDType(fp8Target) : t;
    }

    /**
     * Integer tensors; a W4A8 weight is unpacked: byte [r, j] holds row 2r in its low nibble and row 2r+1 in
     * its high nibble, each a signed 4-bit value. (moec's reading of msModelSlim's "packed along the output
     * dim"; no reference file was at hand to confirm the nibble order.)
     */
    @Override public int[] readInts(String name) {
        int[] packed = file(name).readInts(name);
        if (!packedInt4(name)) return packed;
        long[] d = file(name).entry(name).type().shape().sizes();
        int rows = Math.toIntExact(d[0]), cols = Math.toIntExact(d[1]);
        int[] out = new int[2 * rows * cols];
        for (int r = 0; r < rows; r++) {
            for (int j = 0; j < cols; j++) {
                int b = packed[r * cols + j];
                out[(2 * r) * cols + j] = (b << 28) >> 28;
                out[(2 * r + 1) * cols + j] = (b << 24) >> 28;
            }
        }
        return out;
    }

    @Override public float[] readF32(String name) {
        String scale = fp8Scales.get(name);
        if (scale == null) return file(name).readF32(name);
        // W[i, j] = Wq[i, j] * weight_scale_inv[i / block_rows, j / block_cols], rounded to the model dtype.
        long[] shape = file(name).entry(name).type().shape().sizes();
        int rows = Math.toIntExact(shape[0]), cols = Math.toIntExact(shape[1]), scaleCols = (cols + fp8Block[1] - 1) / fp8Block[1];
        java.lang.foreign.MemorySegment q = file(name).data(name);
        float[] s = file(scale).readF32(scale), out = new float[rows * cols];
        for (int i = 0; i < rows; i++) {
            for (int j = 0; j < cols; j++) {
                float v = Fp8.decode(q.get(java.lang.foreign.ValueLayout.JAVA_BYTE, (long) i * cols + j)) * s[(i / fp8Block[0]) * scaleCols + j / fp8Block[1]];
                out[i * cols + j] = dev.moec.ir.interp.Reference.roundTo(fp8Target, v);
            }
        }
        return out;
    }

    @Override public java.lang.foreign.MemorySegment raw(String name) {
        if (packedInt4(name)) {
            // moec's i4 layout: row-major elements, two per byte, the lower-indexed one in the low nibble.
            int[] v = readInts(name);
            byte[] out = new byte[(v.length + 1) / 2];
            for (int i = 0; i < v.length; i++) out[i / 2] |= (byte) ((v[i] & 0xF) << (4 * (i % 2)));
            return java.lang.foreign.MemorySegment.ofArray(out);
        }
        if (!fp8Scales.containsKey(name)) return file(name).data(name);
        float[] v = readF32(name);
        java.lang.foreign.MemorySegment out = java.lang.foreign.MemorySegment.ofArray(new byte[Math.toIntExact(type(name).bytes())]);
        var le = java.nio.ByteOrder.LITTLE_ENDIAN;
        for (int i = 0; i < v.length; i++) {
            switch (fp8Target) {
                case F32 -> out.setAtIndex(java.lang.foreign.ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(le), i, v[i]);
                case F16 -> out.setAtIndex(java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(le), i, Float.floatToFloat16(v[i]));
                default -> out.setAtIndex(java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(le), i, (short) (Float.floatToRawIntBits(v[i]) >>> 16));
            }
        }
        return out;
    }

    public SafetensorsFile file(String name) {
        SafetensorsFile f = byTensor.get(name);
        if (f == null) throw new CheckpointException(dir, name, "missing from the checkpoint");
        return f;
    }

    @Override public void close() { files.forEach(SafetensorsFile::close); }
}
