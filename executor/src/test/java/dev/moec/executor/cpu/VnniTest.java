package dev.moec.executor.cpu;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** The VNNI int8 tiles: their sums exact against scalar int arithmetic (their instructions: {@link X86AsmTest}). */
class VnniTest {
    @Test
    void tilesAreRefusedOutsideTheirRegisters() {
        assertThrows(IllegalArgumentException.class, () -> Vnni.code(0, 64));
        assertThrows(IllegalArgumentException.class, () -> Vnni.code(Vnni.MAX_ROWS + 1, 64));
    }

    /**
     * Rows of int8 activations (the extremes -128 and 127 among them) times int8 weights in VNNI panels,
     * against the scalar int32 sums: one row to more than a tile's (several passes over a panel), k a
     * whole number of groups and not (padded columns), a partial last panel.
     */
    @ParameterizedTest(name = "{0} rows, k {1}")
    @CsvSource({"1, 4", "1, 1030", "3, 36", "7, 256", "8, 256", "9, 256", "15, 6", "16, 64", "22, 2064"})
    void tilesSumExactly(int rows, int k) {
        assumeTrue(Vnni.AVAILABLE, "no VNNI tiles on this machine");
        int n = 2 * Vnni.WIDTH + 5, stride = Vnni.paddedColumns(k) + 8;
        SplittableRandom r = new SplittableRandom(rows * 31L + k);
        byte[][] w = new byte[n][k];
        for (byte[] row : w) for (int c = 0; c < k; c++) row[c] = (byte) (r.nextInt(5) == 0 ? -128 : r.nextInt(-128, 128));
        byte[] x = new byte[rows * stride];
        int[] sums = new int[rows];
        for (int i = 0; i < rows; i++) {
            for (int c = 0; c < k; c++) {
                x[i * stride + c] = (byte) (r.nextInt(4) == 0 ? -128 : r.nextInt(4) == 0 ? 127 : r.nextInt(-128, 128));
                sums[i] += x[i * stride + c];
            }
        }
        try (Arena arena = Arena.ofConfined()) {
            int panels = Math.ceilDiv(n, Vnni.WIDTH);
            MemorySegment seg = arena.allocate(panels * Vnni.panelBytes(k), 64);
            seg.fill(Simd.biased((byte) 0));
            for (int j = 0; j < n; j++) {
                for (int c = 0; c < k; c++) seg.set(ValueLayout.JAVA_BYTE, (j / Vnni.WIDTH) * Vnni.panelBytes(k) + Vnni.slot(j % Vnni.WIDTH, c), Simd.biased(w[j][c]));
            }
            int m = n - 3, first = rows > 1 ? 1 : 0;                               // channels from a panel's start; rows from the second
            int[] acc = new int[(rows - first) * m], want = new int[acc.length];
            Vnni.rows(x, stride, sums, first, rows, seg, 0, k, m, acc);
            for (int i = first; i < rows; i++) {
                for (int j = 0; j < m; j++) {
                    int s = 0;
                    for (int c = 0; c < k; c++) s += w[j][c] * x[i * stride + c];
                    want[(i - first) * m + j] = s;
                }
            }
            assertArrayEquals(want, acc);
        }
    }
}
