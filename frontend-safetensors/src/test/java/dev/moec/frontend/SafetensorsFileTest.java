package dev.moec.frontend;

import dev.moec.frontend.safetensors.SafetensorsFile;
import dev.moec.frontend.safetensors.SafetensorsWriter;
import dev.moec.ir.DType;
import dev.moec.ir.TensorType;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.Size;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SafetensorsFileTest {
    @TempDir Path dir;

    @Test void readsBf16F16AndF32() throws IOException {
        byte[] bf16 = le16(0x3F80, 0xC000);                // 1.0, -2.0
        byte[] f16 = le16(0x3C00, 0x3800);                 // 1.0, 0.5
        byte[] f32 = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putFloat(3.25f).putFloat(-0.125f).array();
        Path file = dir.resolve("m.safetensors");
        new SafetensorsWriter().add("a", TensorType.of(DType.BF16, 2), bf16).add("b", TensorType.of(DType.F16, 1, 2), f16)
                .add("c", TensorType.of(DType.F32, 2), f32).write(file);
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            assertEquals(TensorType.of(DType.F16, 1, 2), f.entry("b").type());
            assertArrayEquals(new float[]{1, -2}, f.readF32("a"));
            assertArrayEquals(new float[]{1, 0.5f}, f.readF32("b"));
            assertArrayEquals(new float[]{3.25f, -0.125f}, f.readF32("c"));
        }
    }

    @Test void truncatedFileNamesFileAndTensor() throws IOException {
        Path file = dir.resolve("t.safetensors");
        new SafetensorsWriter().add("weight", TensorType.of(DType.F32, 4), new byte[16]).write(file);
        byte[] all = Files.readAllBytes(file);
        Files.write(file, Arrays.copyOf(all, all.length - 4));
        var e = assertThrows(CheckpointException.class, () -> SafetensorsFile.open(file));
        assertTrue(e.getMessage().contains("t.safetensors") && e.getMessage().contains("'weight'") && e.getMessage().contains("truncated"), e.getMessage());
    }

    @Test void headerLengthBeyondTheFile() throws IOException {
        Path file = dir.resolve("h.safetensors");
        Files.write(file, ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(1 << 20).array());
        var e = assertThrows(CheckpointException.class, () -> SafetensorsFile.open(file));
        assertTrue(e.getMessage().contains("h.safetensors") && e.getMessage().contains("beyond the file"), e.getMessage());
    }

    @Test void overlappingTensorsAreRefused() throws IOException {
        Path file = raw("o.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                + "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12);
        var e = assertThrows(CheckpointException.class, () -> SafetensorsFile.open(file));
        assertTrue(e.getMessage().contains("overlap"), e.getMessage());
    }

    @Test void unknownDtypeAndWrongSizeAreRefused() throws IOException {
        Path a = raw("d.safetensors", "{\"w\":{\"dtype\":\"Q7\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8);
        var e = assertThrows(CheckpointException.class, () -> SafetensorsFile.open(a));
        assertTrue(e.getMessage().contains("'w'") && e.getMessage().contains("unknown dtype 'Q7'"), e.getMessage());
        Path b = raw("s.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8);
        e = assertThrows(CheckpointException.class, () -> SafetensorsFile.open(b));
        assertTrue(e.getMessage().contains("needs 12"), e.getMessage());
    }

    /** Whatever the header bytes, opening either succeeds or fails with a CheckpointException. */
    @Property(tries = 300)
    void arbitraryHeadersFailCleanly(@ForAll @Size(max = 64) byte[] header, @ForAll @Size(max = 32) byte[] data) throws IOException {
        Path file = Files.createTempFile("moec-prop", ".safetensors");   // jqwik does not inject @TempDir
        file.toFile().deleteOnExit();
        ByteBuffer b = ByteBuffer.allocate(8 + header.length + data.length).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(header.length).put(header).put(data);
        Files.write(file, b.array());
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            for (String name : f.entries().keySet()) f.data(name);
        } catch (CheckpointException expected) {
            assertTrue(expected.getMessage().startsWith(file.toString()), expected.getMessage());
        } finally {
            Files.deleteIfExists(file);
        }
    }

    /** A valid file of 64 small tensors: the base the corruption property mutates. */
    private static final byte[] BASE = base();

    private static byte[] base() {
        try {
            SafetensorsWriter w = new SafetensorsWriter().metadata("format", "pt");
            for (int i = 0; i < 64; i++) w.add("model.layers." + i + ".weight", TensorType.of(DType.BF16, 4, 4), new byte[32]);
            Path f = Files.createTempFile("moec-base", ".safetensors");
            w.write(f);
            byte[] b = Files.readAllBytes(f);
            // Warm up: the first open loads and links the FFM, NIO and Jackson classes, which is not the reader's allocation.
            for (int i = 0; i < 3; i++) {
                try (SafetensorsFile sf = SafetensorsFile.open(f)) {
                    sf.entries().keySet().forEach(sf::data);
                }
            }
            Files.write(f, java.util.Arrays.copyOf(b, 7));
            try {
                SafetensorsFile.open(f).close();
            } catch (CheckpointException expected) {
                // the failure path is warmed up too
            }
            Files.delete(f);
            return b;
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    @net.jqwik.api.Provide
    net.jqwik.api.Arbitrary<byte[]> corruptedFiles() {
        return net.jqwik.api.Arbitraries.randomValue(r -> {
            byte[] b = BASE.clone();
            int headerEnd = (int) Math.min(b.length, 8 + ByteBuffer.wrap(b, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong());
            switch (r.nextInt(4)) {
                case 0 -> { for (int i = 0; i < 1 + r.nextInt(8); i++) b[8 + r.nextInt(headerEnd - 8)] = (byte) r.nextInt(256); }
                case 1 -> { for (int i = 0; i < 8; i++) b[i] = (byte) r.nextInt(256); }                       // any header length
                case 2 -> b = java.util.Arrays.copyOf(b, r.nextInt(b.length));                                // truncated anywhere
                default -> {                                                                                  // digits changed: shapes, offsets
                    for (int i = 8; i < headerEnd; i++) if (Character.isDigit(b[i]) && r.nextInt(10) == 0) b[i] = (byte) ('0' + r.nextInt(10));
                }
            }
            return b;
        });
    }

    /**
     * Whatever is corrupted in a file's header (bytes, the length field, digits of shapes and offsets, a cut),
     * opening it ends within seconds with a CheckpointException naming the file, and allocates no more than
     * a bound proportional to the file: 4 bytes per file byte for the JSON tree, plus 512 KiB for the
     * parser's fixed buffers. A length field is never trusted to size an allocation.
     */
    @Property(tries = 300)
    void corruptedHeadersNeverHangAndNeverAllocateBeyondTheFile(@ForAll("corruptedFiles") byte[] content) throws IOException {
        Path file = Files.createTempFile("moec-corrupt", ".safetensors");
        try {
            Files.write(file, content);
            long[] allocated = new long[1];
            org.junit.jupiter.api.Assertions.assertTimeoutPreemptively(java.time.Duration.ofSeconds(10), () -> {
                var mx = (com.sun.management.ThreadMXBean) java.lang.management.ManagementFactory.getThreadMXBean();
                long before = mx.getCurrentThreadAllocatedBytes();
                try (SafetensorsFile f = SafetensorsFile.open(file)) {
                    for (String name : f.entries().keySet()) f.data(name);
                } catch (CheckpointException expected) {
                    assertTrue(expected.getMessage().startsWith(file.toString()), expected.getMessage());
                }
                allocated[0] = mx.getCurrentThreadAllocatedBytes() - before;
            });
            long bound = 4L * content.length + 512 * 1024;
            assertTrue(allocated[0] <= bound, "opening a " + content.length + "-byte file allocated " + allocated[0] + " bytes (bound " + bound + ")");
        } finally {
            Files.deleteIfExists(file);
        }
    }

    private Path raw(String name, String header, int dataBytes) throws IOException {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        Path file = dir.resolve(name);
        Files.write(file, ByteBuffer.allocate(8 + h.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN).putLong(h.length).put(h).array());
        return file;
    }

    private static byte[] le16(int... halves) {
        ByteBuffer b = ByteBuffer.allocate(2 * halves.length).order(ByteOrder.LITTLE_ENDIAN);
        for (int h : halves) b.putShort((short) h);
        return b.array();
    }
}
