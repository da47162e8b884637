package dev.moec.executor.cpu;

import dev.moec.backend.Kernel;
import dev.moec.executor.bench.Roofline;
import dev.moec.ir.DType;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The multiply-accumulates the compute roofline counts per launch, and the launch-by-launch bound, worked by hand on small shapes. */
class MacCountTest {
    private static Buf f32(int... shape) {
        int n = 1;
        for (int d : shape) n *= d;
        return new Buf("f", DType.F32, shape, new float[n], null, null);
    }

    /** A bf16 weight of the given shape (its bytes zero). */
    private static Buf weight(int... shape) {
        int n = 1;
        for (int d : shape) n *= d;
        return new Buf("w", DType.BF16, shape, null, null, java.lang.foreign.MemorySegment.ofArray(new byte[2 * n]));
    }

    private static Buf ints(int... values) {
        return new Buf("i", DType.I32, new int[] {values.length}, null, values, null);
    }

    @Test void matmulsCountRowsTimesOutputsTimesInner() {
        assertEquals(3 * 5 * 4, Roofline.macs(Kernel.MATMUL, new Buf[] {f32(3, 4), f32(5, 4)}));
        assertEquals(3 * 5 * 4, Roofline.macs(Kernel.QUANT_MATMUL, new Buf[] {f32(3, 4), f32(3), f32(5, 4), f32(5)}));
        assertEquals(2 * 3 * 5 * 4, Roofline.macs(Kernel.HEAD_MATMUL, new Buf[] {f32(2, 3, 4), f32(3, 5, 4)}));
    }

    @Test void groupedMatmulsCountOnlyTheRoutedRows() {
        Buf counts = ints(2, 0, 1);                                       // three of the four rows are routed
        assertEquals(3 * 5 * 4, Roofline.macs(Kernel.GROUPED_MATMUL, new Buf[] {f32(4, 4), f32(3, 5, 4), counts}));
        assertEquals(3 * 5 * 4, Roofline.macs(Kernel.GROUPED_QUANT_MATMUL, new Buf[] {f32(4, 4), f32(4), f32(3, 5, 4), f32(3, 5), counts}));
    }

    @Test void attentionCountsEachLiveTokensPositionsForScoresAndValues() {
        Buf q = f32(3, 4, 6), cache = f32(2, 8, 2, 6), v = f32(2, 8, 2, 5), table = ints(0, 1);
        Buf slots = ints(0, -1, 1), positions = ints(4, 9, 0);         // tokens 0 and 2 live: 5 + 1 positions
        long expected = 6L * 4 * (6 + 5);
        assertEquals(expected, Roofline.macs(Kernel.FUSED_INFER_ATTENTION, new Buf[] {q, cache, v, table, slots, positions}));
        assertEquals(0, Roofline.macs(Kernel.RMS_NORM, new Buf[] {q, f32(6)}));
    }

    /**
     * The launch-by-launch bound by hand: a memory-bound launch (1 GB at 10 GB/s: 100 ms), a compute-bound
     * f32 one (4 GMAC at 20 GMAC/s: 200 ms against 10 ms of bytes), one whose int8 MACs run at the VNNI
     * peak (2 GMAC at 80: 25 ms) beside f32 ones (1 GMAC at 20: 50 ms), against 30 ms of bytes, and a
     * greedy lm_head on the bf16 dot tiles (3 GMAC at 40: 75 ms against 20 ms of bytes): 450 ms, where the
     * whole step's bytes (1.6 GB: 160 ms) and MACs (10 GMAC: 350 ms) bound it at 350.
     */
    @Test void theLaunchBoundAddsUpEachLaunchsSlowerSide() {
        Roofline.Launches l = new Roofline.Launches(new double[] {1e9, 0.1e9, 0.3e9, 0.2e9}, new double[] {0, 4e9, 3e9, 3e9},
                new double[] {0, 0, 2e9, 0}, new double[] {0, 0, 0, 3e9});
        assertEquals(100 + 200 + 75 + 75, l.ms(10e9, new Roofline.Peaks(20e9, 80e9, 40e9)), 1e-9);
        assertEquals(Math.max(100, 0) + Math.max(10, 400) + Math.max(30, 100 + 50) + Math.max(20, 150), l.ms(10e9, new Roofline.Peaks(10e9, 40e9, 20e9)), 1e-9, "half the peaks");
        assertEquals(350, new Roofline.Peaks(20e9, 80e9, 40e9).seconds(10e9, 2e9, 3e9) * 1e3, 1e-9, "the whole step's MACs");
    }

    /** A greedy head's launch keeps its MACs as the dot tiles' too; a plain launch's not. */
    @Test void aHeadLaunchCountsItsMacsOnTheDotTiles() {
        Roofline r = new Roofline();
        Buf x = f32(2, 4), w = weight(5, 4);
        r.launched(0, Kernel.MATMUL, new Buf[] {x, w}, new Buf[] {f32(2, 5)}, 10);
        r.headLaunched(1, Kernel.MATMUL, new Buf[] {x, w}, new Buf[] {f32(2, 5)}, 10);
        Roofline.Launches l = r.launches(1);
        org.junit.jupiter.api.Assertions.assertArrayEquals(new double[] {0, 2 * 5 * 4}, l.dotMacs());
        assertEquals(2 * 5 * 4, r.dotMacs());
        assertEquals(2 * 2 * 5 * 4, r.macs());
    }

    /** Observed steps keep each launch's bytes and MACs by its index, per step: two steps of the same launches give the launches of one. */
    @Test void launchesAreKeptByIndexPerStep() {
        Roofline r = new Roofline();
        Buf x = f32(2, 4), w = weight(5, 4);
        for (int step = 0; step < 2; step++) {
            r.launched(0, Kernel.RMS_NORM, new Buf[] {x, f32(4)}, new Buf[] {x}, 10);
            r.launched(1, Kernel.MATMUL, new Buf[] {x, w}, new Buf[] {f32(2, 5)}, 10);
        }
        Roofline.Launches l = r.launches(2);
        org.junit.jupiter.api.Assertions.assertArrayEquals(new double[] {0, 5 * 4 * 2}, l.bytes());
        org.junit.jupiter.api.Assertions.assertArrayEquals(new double[] {0, 2 * 5 * 4}, l.macs());
        org.junit.jupiter.api.Assertions.assertArrayEquals(new double[] {0, 0}, l.vnniMacs());
        org.junit.jupiter.api.Assertions.assertArrayEquals(new double[] {0, 0}, l.dotMacs());
        assertEquals(r.weightBytes() / 2.0, l.bytes()[1]);
    }
}
