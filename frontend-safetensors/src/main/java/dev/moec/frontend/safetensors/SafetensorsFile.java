package dev.moec.frontend.safetensors;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.moec.frontend.CheckpointException;
import dev.moec.ir.DType;
import dev.moec.ir.Shape;
import dev.moec.ir.TensorType;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One {@code .safetensors} file, memory-mapped with the FFM API. The layout: an 8-byte little-endian
 * header length N, N bytes of JSON ({@code name -> {dtype, shape, data_offsets: [begin, end)}} relative
 * to the data section), then the data. The header is validated whole on open; tensor data is read
 * lazily, straight from the mapping.
 */
public final class SafetensorsFile implements AutoCloseable {
    private static final ObjectMapper JSON = new ObjectMapper();

    /** A tensor's entry: type and its byte range inside the data section. */
    public record Entry(String name, TensorType type, long begin, long end) {}

    private final Path path;
    private final Arena arena;
    private final MemorySegment file;
    private final long dataStart;
    private final Map<String, Entry> entries;
    private final Map<String, String> metadata;

    private SafetensorsFile(Path path, Arena arena, MemorySegment file, long dataStart, Map<String, Entry> entries, Map<String, String> metadata) {
        this.path = path;
        this.arena = arena;
        this.file = file;
        this.dataStart = dataStart;
        this.entries = entries;
        this.metadata = metadata;
    }

    public static SafetensorsFile open(Path path) {
        Arena arena = Arena.ofShared();
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            long size = ch.size();
            MemorySegment file = size == 0 ? MemorySegment.NULL : ch.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
            SafetensorsFile f = parse(path, arena, file, size);
            return f;
        } catch (IOException e) {
            arena.close();
            throw new CheckpointException(path, null, "cannot read: " + e.getMessage(), e);
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    private static SafetensorsFile parse(Path path, Arena arena, MemorySegment file, long size) {
        if (size < 8) throw new CheckpointException(path, null, "file is " + size + " bytes, too short for the 8-byte header length");
        long headerLen = file.get(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0);
        if (headerLen < 2 || headerLen > size - 8) {
            throw new CheckpointException(path, null, "header length " + Long.toUnsignedString(headerLen) + " is beyond the file (" + size + " bytes)");
        }
        byte[] header = file.asSlice(8, headerLen).toArray(ValueLayout.JAVA_BYTE);
        JsonNode root;
        try {
            root = JSON.readTree(new String(header, StandardCharsets.UTF_8));
        } catch (JsonProcessingException e) {
            throw new CheckpointException(path, null, "header is not valid JSON: " + e.getOriginalMessage());
        }
        if (root == null || !root.isObject()) throw new CheckpointException(path, null, "header is not a JSON object");
        long dataStart = 8 + headerLen, dataSize = size - dataStart;
        Map<String, Entry> entries = new LinkedHashMap<>();
        Map<String, String> metadata = new LinkedHashMap<>();
        for (Map.Entry<String, JsonNode> field : root.properties()) {
            String name = field.getKey();
            JsonNode n = field.getValue();
            if (name.equals("__metadata__")) {
                n.properties().forEach(m -> metadata.put(m.getKey(), m.getValue().asText()));
                continue;
            }
            entries.put(name, entry(path, name, n, dataSize));
        }
        checkOverlaps(path, entries);
        return new SafetensorsFile(path, arena, file, dataStart, Collections.unmodifiableMap(entries), metadata);
    }

    private static Entry entry(Path path, String name, JsonNode n, long dataSize) {
        if (!n.isObject()) throw new CheckpointException(path, name, "entry is not an object");
        DType dtype = dtype(path, name, n.path("dtype").asText(""));
        JsonNode shapeNode = n.get("shape"), offsets = n.get("data_offsets");
        if (shapeNode == null || !shapeNode.isArray()) throw new CheckpointException(path, name, "missing shape");
        if (offsets == null || !offsets.isArray() || offsets.size() != 2 || !offsets.get(0).canConvertToLong() || !offsets.get(1).canConvertToLong()) {
            throw new CheckpointException(path, name, "data_offsets must be [begin, end]");
        }
        long[] dims = new long[shapeNode.size()];
        long elements = 1;
        for (int i = 0; i < dims.length; i++) {
            JsonNode d = shapeNode.get(i);
            if (!d.canConvertToLong() || d.asLong() < 0) throw new CheckpointException(path, name, "bad dimension " + d + " in shape " + shapeNode);
            dims[i] = d.asLong();
            elements = Math.multiplyExact(elements, dims[i]);
        }
        long begin = offsets.get(0).asLong(), end = offsets.get(1).asLong();
        if (begin < 0 || end < begin || end > dataSize) {
            throw new CheckpointException(path, name, "data_offsets [" + begin + ", " + end + ") out of range: the data section has " + dataSize + " bytes (file truncated?)");
        }
        long want = dtype.bytes(elements);
        if (end - begin != want) {
            throw new CheckpointException(path, name, "holds " + (end - begin) + " bytes but " + dtype + Shape.ofSizes(dims) + " needs " + want);
        }
        return new Entry(name, new TensorType(dtype, Shape.ofSizes(dims)), begin, end);
    }

    private static DType dtype(Path path, String name, String text) {
        return switch (text) {
            case "F32" -> DType.F32;
            case "F16" -> DType.F16;
            case "BF16" -> DType.BF16;
            case "F8_E4M3" -> DType.F8E4M3;
            case "I64" -> DType.I64;
            case "I32" -> DType.I32;
            case "I8" -> DType.I8;
            case "BOOL" -> DType.BOOL;
            default -> throw new CheckpointException(path, name, "unknown dtype '" + text + "'");
        };
    }

    /** The safetensors spelling of an IR dtype. */
    public static String dtypeName(DType d) {
        return switch (d) {
            case F32 -> "F32";
            case F16 -> "F16";
            case BF16 -> "BF16";
            case F8E4M3 -> "F8_E4M3";
            case I64 -> "I64";
            case I32 -> "I32";
            case I8 -> "I8";
            case BOOL -> "BOOL";
            case I4 -> throw new IllegalArgumentException("safetensors has no i4 dtype");
        };
    }

    private static void checkOverlaps(Path path, Map<String, Entry> entries) {
        List<Entry> sorted = new ArrayList<>(entries.values());
        sorted.sort(Comparator.comparingLong(Entry::begin).thenComparingLong(Entry::end));
        for (int i = 1; i < sorted.size(); i++) {
            Entry a = sorted.get(i - 1), b = sorted.get(i);
            if (b.begin() < a.end() && b.end() > b.begin()) {
                throw new CheckpointException(path, b.name(), "bytes [" + b.begin() + ", " + b.end() + ") overlap tensor '" + a.name() + "' [" + a.begin() + ", " + a.end() + ")");
            }
        }
    }

    public Path path() { return path; }
    public Map<String, Entry> entries() { return entries; }
    public Map<String, String> metadata() { return metadata; }

    public Entry entry(String name) {
        Entry e = entries.get(name);
        if (e == null) throw new CheckpointException(path, name, "no such tensor");
        return e;
    }

    /** The raw bytes of a tensor, as a slice of the mapping (no copy). */
    public MemorySegment data(String name) {
        Entry e = entry(name);
        return file.asSlice(dataStart + e.begin(), e.end() - e.begin());
    }

    /** A tensor widened to f32; bf16, f16 and f32 are supported. */
    public float[] readF32(String name) {
        Entry e = entry(name);
        if (!dev.moec.ir.interp.StoredValues.widens(e.type().dtype())) {
            throw new CheckpointException(path, name, "dtype " + e.type().dtype() + " cannot be read as floats (supported: f32, bf16, f16)");
        }
        return dev.moec.ir.interp.StoredValues.widen(data(name), e.type().dtype(), Math.toIntExact(e.type().shape().elements()));
    }

    /** An integer tensor widened to int: i8, i32, bool, and i64 whose values fit an int. */
    public int[] readInts(String name) {
        Entry e = entry(name);
        MemorySegment s = data(name);
        int n = Math.toIntExact(e.type().shape().elements());
        int[] out = new int[n];
        switch (e.type().dtype()) {
            case I8, BOOL -> { for (int i = 0; i < n; i++) out[i] = s.get(ValueLayout.JAVA_BYTE, i); }
            case I32 -> { for (int i = 0; i < n; i++) out[i] = s.getAtIndex(ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), i); }
            case I64 -> {
                for (int i = 0; i < n; i++) {
                    long v = s.getAtIndex(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), i);
                    if (v != (int) v) throw new CheckpointException(path, name, "element " + i + " = " + v + " does not fit an int");
                    out[i] = (int) v;
                }
            }
            default -> throw new CheckpointException(path, name, "dtype " + e.type().dtype() + " is not an integer type");
        }
        return out;
    }

    @Override public void close() { arena.close(); }
}
