package dev.moec.backend;

import dev.moec.ir.DType;

/**
 * The FRACTAL_NZ weight layout Ascend's WeightNz matmul kernels read (ACL_FORMAT_FRACTAL_NZ = 29, what
 * torch_npu's {@code npu_format_cast(w, 29)} produces): a matrix of R rows and C columns is cut into tiles
 * of 16 rows by c0 columns, c0 being 32 bytes of elements (16 for bf16/f16, 32 for int8, 64 for int4);
 * tiles are stored column block by column block, [C / c0][R / 16][16][c0], zero-padded to whole tiles.
 * A leading expert axis keeps one NZ matrix per expert.
 */
public final class Nz {
    private Nz() {}

    public static int c0(DType d) {
        return switch (d) {
            case BF16, F16 -> 16;
            case I8 -> 32;
            case I4 -> 64;
            case F32 -> 8;
            default -> throw new IllegalArgumentException("no NZ layout for " + d);
        };
    }

    /** Bytes of an NZ matrix set: matrices x padded rows x padded columns. */
    public static long bytes(DType d, long matrices, long rows, long cols) {
        long r = ceil(rows, 16) * 16, c = ceil(cols, c0(d)) * c0(d);
        return d.bytes(matrices * r * c);
    }

    /** ND (row-major, for int4 two per byte, low nibble first) to NZ. */
    public static byte[] pack(byte[] nd, DType d, long matrices, int rows, int cols) {
        int c0 = c0(d), rp = (int) ceil(rows, 16) * 16, cp = (int) ceil(cols, c0) * c0;
        byte[] out = new byte[(int) bytes(d, matrices, rows, cols)];
        for (int m = 0; m < matrices; m++) {
            for (int r = 0; r < rows; r++) {
                for (int c = 0; c < cols; c++) {
                    long src = ((long) m * rows + r) * cols + c;
                    long dst = (long) m * rp * cp + ((long) (c / c0) * rp + r) * c0 + (c % c0);
                    copyElement(nd, src, out, dst, d);
                }
            }
        }
        return out;
    }

    /** NZ back to ND. */
    public static byte[] unpack(byte[] nz, DType d, long matrices, int rows, int cols) {
        int c0 = c0(d), rp = (int) ceil(rows, 16) * 16, cp = (int) ceil(cols, c0) * c0;
        byte[] out = new byte[(int) d.bytes(matrices * rows * cols)];
        for (int m = 0; m < matrices; m++) {
            for (int r = 0; r < rows; r++) {
                for (int c = 0; c < cols; c++) {
                    long dst = ((long) m * rows + r) * cols + c;
                    long src = (long) m * rp * cp + ((long) (c / c0) * rp + r) * c0 + (c % c0);
                    copyElement(nz, src, out, dst, d);
                }
            }
        }
        return out;
    }

    private static void copyElement(byte[] from, long i, byte[] to, long j, DType d) {
        if (d == DType.I4) {
            int v = (from[(int) (i / 2)] >> (4 * (int) (i % 2))) & 0xF;
            to[(int) (j / 2)] = (byte) ((to[(int) (j / 2)] & ~(0xF << (4 * (int) (j % 2)))) | (v << (4 * (int) (j % 2))));
            return;
        }
        int size = d.bitsPerElement() / 8;
        System.arraycopy(from, (int) (i * size), to, (int) (j * size), size);
    }

    private static long ceil(long a, long b) { return (a + b - 1) / b; }
}
