package dev.moec.cli;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/** Writes a 2-D float32 array in NumPy's {@code .npy} format (version 1.0), readable by {@code numpy.load}. */
final class Npy {
    private Npy() {}

    static void writeF32(Path file, List<float[]> rows) throws IOException {
        int cols = rows.isEmpty() ? 0 : rows.getFirst().length;
        for (float[] r : rows) if (r.length != cols) throw new IllegalArgumentException("rows of unequal length");
        String dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + rows.size() + ", " + cols + "), }";
        int unpadded = 10 + dict.length() + 1;
        String header = dict + " ".repeat((64 - unpadded % 64) % 64) + "\n";
        try (OutputStream out = new java.io.BufferedOutputStream(Files.newOutputStream(file), 1 << 20)) {
            out.write(new byte[]{(byte) 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0});
            out.write(ByteBuffer.allocate(2).order(ByteOrder.LITTLE_ENDIAN).putShort((short) header.length()).array());
            out.write(header.getBytes(StandardCharsets.US_ASCII));
            ByteBuffer buf = ByteBuffer.allocate(cols * 4).order(ByteOrder.LITTLE_ENDIAN);
            for (float[] r : rows) {
                buf.clear();
                buf.asFloatBuffer().put(r);
                out.write(buf.array());
            }
        }
    }

}
