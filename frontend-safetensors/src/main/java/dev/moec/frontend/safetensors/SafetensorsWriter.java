package dev.moec.frontend.safetensors;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.moec.ir.TensorType;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.TreeMap;

/**
 * Writes a {@code .safetensors} file. Tensors are laid out in name order and the header is padded to
 * a multiple of 8 bytes, so the same tensors always give byte-identical files.
 */
public final class SafetensorsWriter {
    private final Map<String, TensorType> types = new TreeMap<>();
    private final Map<String, byte[]> data = new TreeMap<>();
    private final Map<String, String> metadata = new TreeMap<>();

    public SafetensorsWriter metadata(String key, String value) {
        metadata.put(key, value);
        return this;
    }

    /** Adds a tensor; {@code bytes} are its little-endian contents. */
    public SafetensorsWriter add(String name, TensorType type, byte[] bytes) {
        if (bytes.length != type.bytes()) throw new IllegalArgumentException(name + ": " + type + " needs " + type.bytes() + " bytes, got " + bytes.length);
        if (types.put(name, type) != null) throw new IllegalArgumentException("tensor '" + name + "' added twice");
        data.put(name, bytes);
        return this;
    }

    public void write(Path file) throws IOException {
        ObjectMapper json = new ObjectMapper();
        ObjectNode header = json.createObjectNode();
        if (!metadata.isEmpty()) {
            ObjectNode meta = header.putObject("__metadata__");
            metadata.forEach(meta::put);
        }
        long offset = 0;
        for (var e : types.entrySet()) {
            ObjectNode t = header.putObject(e.getKey());
            t.put("dtype", SafetensorsFile.dtypeName(e.getValue().dtype()));
            ArrayNode shape = t.putArray("shape");
            for (long d : e.getValue().shape().sizes()) shape.add(d);
            long len = data.get(e.getKey()).length;
            t.putArray("data_offsets").add(offset).add(offset + len);
            offset += len;
        }
        byte[] h = json.writeValueAsString(header).getBytes(StandardCharsets.UTF_8);
        int padded = (h.length + 7) / 8 * 8;
        byte[] headerBytes = new byte[padded];
        System.arraycopy(h, 0, headerBytes, 0, h.length);
        for (int i = h.length; i < padded; i++) headerBytes[i] = ' ';
        Files.createDirectories(file.toAbsolutePath().getParent());
        try (OutputStream out = new java.io.BufferedOutputStream(Files.newOutputStream(file), 1 << 20)) {
            out.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(padded).array());
            out.write(headerBytes);
            for (byte[] b : data.values()) out.write(b);
        }
    }
}
