package dev.moec.executor.cpu;

import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.IntRange;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The Vector API loops against their scalar definitions, at every length (vector bodies and scalar
 * tails) and offset: widening is exact, int8 dot products are exact in int32, float dot products agree
 * to rounding (the order of the sums differs).
 */
class SimdPropertyTest {
    private static final ValueLayout.OfShort SHORT_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    @Property(tries = 200)
    void bf16WeightsWidenExactlyAndDotLikeTheScalarLoop(@ForAll @IntRange(min = 0, max = 300) int n, @ForAll @IntRange(min = 0, max = 40) int offset,
                                                        @ForAll long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] x = new float[offset + n];
        for (int j = 0; j < x.length; j++) x[j] = (float) r.nextGaussian();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment w = arena.allocate(2L * (offset + n) + 1);
            short[] bits = new short[offset + n];
            for (int j = 0; j < bits.length; j++) {
                bits[j] = (short) (Float.floatToIntBits((float) r.nextGaussian()) >>> 16);
                w.setAtIndex(SHORT_LE, j, bits[j]);
            }
            float[] widened = new float[n], expected = new float[n];
            Simd.widenBf16(w, offset, n, widened);
            double dot = 0, magnitude = 0;
            for (int j = 0; j < n; j++) {
                expected[j] = Float.intBitsToFloat(bits[offset + j] << 16);
                dot += (double) x[offset + j] * expected[j];
                magnitude += Math.abs((double) x[offset + j] * expected[j]);
            }
            assertArrayEquals(expected, widened);
            double tolerance = 1e-5 * magnitude + 1e-6;
            assertEquals(dot, Simd.dotBf16(x, offset, w, offset, n), tolerance);
            assertEquals(dot, Simd.dot(x, offset, expected, 0, n), tolerance);
            float[] y = new float[n + 3], yExpected = new float[n + 3];
            for (int j = 0; j < n; j++) y[j + 3] = yExpected[j + 3] = x[offset + j];
            for (int j = 0; j < n; j++) yExpected[j + 3] += 0.5f * expected[j];
            Simd.axpy(0.5f, expected, 0, y, 3, n);
            for (int j = 0; j < y.length; j++) assertEquals(yExpected[j], y[j], 1e-6f * (1 + Math.abs(yExpected[j])));
        }
    }

    @Property(tries = 200)
    void int8DotProductsAreExactInInt32(@ForAll @IntRange(min = 0, max = 300) int n, @ForAll @IntRange(min = 0, max = 40) int offset, @ForAll long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int[] x = new int[offset + n];
        for (int j = 0; j < x.length; j++) x[j] = r.nextInt(-127, 128);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment w = arena.allocate(offset + n + 1);
            byte[] bytes = new byte[offset + n];
            for (int j = 0; j < bytes.length; j++) {
                bytes[j] = (byte) r.nextInt(-128, 128);
                w.set(ValueLayout.JAVA_BYTE, j, bytes[j]);
            }
            int[] widened = new int[n], expected = new int[n];
            Simd.widenI8(w, offset, n, widened);
            int dot = 0;
            for (int j = 0; j < n; j++) {
                expected[j] = bytes[offset + j];
                dot += x[offset + j] * expected[j];
            }
            assertArrayEquals(expected, widened);
            assertEquals(dot, Simd.dotI8(x, offset, w, offset, n));
            assertEquals(dot, Simd.dotI8(x, offset, expected, n));
        }
    }
}
