package dev.moec.executor.cpu;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** The bf16 decode tiles in machine code: each sum the fused multiply-add chain in column order, to the bit (their instructions: {@link X86AsmTest}). */
class Bf16TilesTest {
    private static final ValueLayout.OfShort SHORT_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /**
     * Rows of f32 activations times bf16 weights in panels, against Math.fma over the columns in order:
     * one row to more than a tile takes (two passes), one column and many, a partial last panel, rows
     * from the second on at an offset, and the outputs around the written ones left alone.
     */
    @ParameterizedTest(name = "{0} rows, k {1}")
    @CsvSource({"1, 1", "1, 1031", "3, 7", "8, 1024", "12, 33", "13, 100", "15, 257"})
    void sumsAreTheFusedChainInColumnOrder(int rows, int k) {
        assumeTrue(Bf16Tiles.AVAILABLE, "no bf16 tiles on this machine");
        int w = Bf16Tiles.WIDTH, n = 2 * w + 5, xs = k + 3, x0 = 2, os = n + 4, oo = 1;
        SplittableRandom r = new SplittableRandom(rows * 131L + k);
        float[][] weights = new float[n][k];
        float[] x = new float[x0 + rows * xs];
        for (int j = 0; j < x.length; j++) x[j] = (float) r.nextGaussian();
        try (Arena arena = Arena.ofConfined()) {
            int panels = Math.ceilDiv(n, w);
            long panelBytes = (long) k * w * 2, at = 128;                   // the panels start past other bytes
            MemorySegment seg = arena.allocate(at + panels * panelBytes, 64);
            for (int j = 0; j < n; j++) {
                for (int c = 0; c < k; c++) {
                    short bits = (short) (Float.floatToIntBits((float) r.nextGaussian()) >>> 16);
                    weights[j][c] = Float.intBitsToFloat(bits << 16);
                    seg.set(SHORT_LE, at + (j / w) * panelBytes + (long) c * w * 2 + (j % w) * 2L, bits);   // lane j / 2: channels 2l (low half) and 2l + 1
                }
            }
            int m = n - 3, first = rows > 1 ? 1 : 0;
            float[] out = new float[oo + rows * os];
            java.util.Arrays.fill(out, -7f);
            Bf16Tiles.rows(x, x0, xs, first, rows, seg, at, k, m, out, oo, os);
            for (int i = 0; i < rows; i++) {
                for (int d = 0; d < os; d++) {
                    int o = oo + (i - first) * os + d;
                    if (i < first) continue;
                    if (d >= m) {
                        if (o < out.length) assertEquals(-7f, out[o], "untouched: row " + i + ", channel " + d);
                        continue;
                    }
                    float want = 0f;
                    for (int c = 0; c < k; c++) want = Math.fma(weights[d][c], x[x0 + i * xs + c], want);
                    assertEquals(Float.floatToIntBits(want), Float.floatToIntBits(out[o]), "row " + i + ", channel " + d + ": " + want + " vs " + out[o]);
                }
            }
        }
    }

    @Test
    void tilesAreRefusedOutsideTheirRegisters() {
        assertThrows(IllegalArgumentException.class, () -> Bf16Tiles.code(0, 64, 0));
        assertThrows(IllegalArgumentException.class, () -> Bf16Tiles.code(Bf16Tiles.MAX_ROWS + 1, 64, 0));
        assertThrows(IllegalArgumentException.class, () -> Bf16Tiles.rows(new float[4], 0, 4, 0, 1, MemorySegment.NULL, 0, 0, 32, new float[32], 0, 32));
    }
}
