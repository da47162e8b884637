package dev.moec.executor.cpu;

import dev.moec.backend.Kernel;
import dev.moec.executor.bench.Roofline;
import dev.moec.ir.DType;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The multiply-accumulates the compute roofline counts per launch, worked by hand on small shapes. */
class MacCountTest {
    private static Buf f32(int... shape) {
        int n = 1;
        for (int d : shape) n *= d;
        return new Buf("f", DType.F32, shape, new float[n], null, null);
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
}
