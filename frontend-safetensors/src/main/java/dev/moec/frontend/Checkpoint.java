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

    private Checkpoint(Path dir, JsonNode config, List<SafetensorsFile> files, Map<String, SafetensorsFile> byTensor) {
        this.dir = dir;
        this.config = config;
        this.files = files;
        this.byTensor = byTensor;
    }

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

    @Override public Set<String> names() { return byTensor.keySet(); }

    @Override public TensorType type(String name) { return file(name).entry(name).type(); }

    @Override public float[] readF32(String name) { return file(name).readF32(name); }

    @Override public int[] readInts(String name) { return file(name).readInts(name); }

    @Override public java.lang.foreign.MemorySegment raw(String name) { return file(name).data(name); }

    public SafetensorsFile file(String name) {
        SafetensorsFile f = byTensor.get(name);
        if (f == null) throw new CheckpointException(dir, name, "missing from the checkpoint");
        return f;
    }

    @Override public void close() { files.forEach(SafetensorsFile::close); }
}
