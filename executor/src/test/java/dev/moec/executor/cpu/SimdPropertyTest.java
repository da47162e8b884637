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

    /** The kernels' exp: within three float ulps of the true value over the normal range, and the same in vector and scalar form. */
    @Property(tries = 300)
    void expIsAccurateAndTheSameInVectorsAndTheTail(@ForAll @IntRange(min = 0, max = 100) int n, @ForAll long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] x = new float[n], shifted = new float[n];
        float max = 3f;
        for (int j = 0; j < n; j++) x[j] = shifted[j] = (float) (r.nextDouble() * 180 - 90);
        float sum = Simd.expShifted(shifted, 0, n, max), expected = 0;
        for (int j = 0; j < n; j++) {
            float e = Simd.exp(x[j] - max);
            assertEquals(e, shifted[j], "element " + j + " of " + n + ": vector and scalar forms differ");
            double truth = Math.exp(Math.min(Math.max(x[j] - max, -87.3f), 88.7f));     // the clamp, in float
            assertEquals(truth, e, 3 * Math.ulp((float) truth), "exp(" + (x[j] - max) + ")");
        }
        double total = 0;
        for (float e : shifted) total += e;
        assertEquals(total, sum, 1e-5 * total + 1e-30);
        float[] g = new float[n], u = new float[n], out = new float[n];
        for (int j = 0; j < n; j++) {
            g[j] = (float) r.nextGaussian() * 4;
            u[j] = (float) r.nextGaussian();
        }
        Simd.swiglu(g, 0, u, 0, out, 0, n);
        for (int j = 0; j < n; j++) {
            assertEquals(g[j] / (Simd.exp(-g[j]) + 1f) * u[j], out[j], "swiglu element " + j);
            assertEquals(g[j] / (1 + Math.exp(-g[j])) * u[j], out[j], 1e-6 * (1 + Math.abs(g[j] * u[j])));
        }
    }

    /** Four f32 rows against one shared row, as attention scores the query heads of a KV head. */
    /**
     * The vector argmax is the scalar loop's: the first index of the largest value, over rows drawn from a
     * few values (so ties are common) mixed with -0, 0, infinities and NaNs, at an offset, short rows and
     * long ones, and a NaN first value (nothing is greater, so index 0).
     */
    @Property(tries = 500)
    void argmaxIsTheFirstIndexOfTheLargestAsTheScalarLoopFindsIt(@ForAll @IntRange(min = 1, max = 300) int n, @ForAll @IntRange(min = 0, max = 20) int offset,
                                                                  @ForAll @IntRange(min = 0, max = 5) int kind, @ForAll long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] pool = {-0f, 0f, 1.5f, -2f, Float.NEGATIVE_INFINITY, Float.POSITIVE_INFINITY, Float.NaN, 3f};
        float[] x = new float[offset + n + 5];
        for (int j = 0; j < x.length; j++) {
            x[j] = switch (kind) {
                case 0 -> (float) r.nextGaussian();                                   // distinct values
                case 1 -> pool[r.nextInt(4)];                                         // ties, signed zeros
                case 2 -> pool[r.nextInt(pool.length)];                               // with infinities and NaNs
                case 3 -> Float.NEGATIVE_INFINITY;                                    // nothing above -inf
                case 4 -> r.nextInt(3) == 0 ? Float.NaN : -r.nextInt(4);              // NaNs among ties
                default -> r.nextInt(50) == 0 ? 7f : (float) -r.nextDouble();          // one value, maybe repeated, far above
            };
        }
        if (kind == 2 && r.nextBoolean()) x[offset] = Float.NaN;
        int best = 0;
        for (int i = 1; i < n; i++) if (x[offset + i] > x[offset + best]) best = i;
        assertEquals(best, Simd.argmax(x, offset, n), "kind " + kind);
    }

    /** An attention row's scaling, max and normalisation in vectors give the scalar loops' bits. */
    @Property(tries = 300)
    void scoresScaleAndNormaliseAsTheScalarLoops(@ForAll @IntRange(min = 0, max = 100) int n, @ForAll @IntRange(min = 0, max = 20) int offset, @ForAll long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float scale = (float) (1 / Math.sqrt(1 + r.nextInt(256)));
        float[] x = new float[offset + n], expected = new float[offset + n];
        for (int j = 0; j < n; j++) x[offset + j] = expected[offset + j] = (float) r.nextGaussian() * 30;
        float max = Float.NEGATIVE_INFINITY;
        for (int j = 0; j < n; j++) max = Math.max(max, expected[offset + j] *= scale);
        assertEquals(max, Simd.scaleMax(x, offset, n, scale));
        assertArrayEquals(expected, x);
        float d = 0.5f + r.nextFloat() * 100;
        float[] out = new float[offset + n + 3];
        Simd.divide(x, offset, d, out, 3, n);
        for (int j = 0; j < n; j++) assertEquals(x[offset + j] / d, out[3 + j], "element " + j + " of " + n);
    }

    @Property(tries = 200)
    void fourRowDotsMatchSingleDots(@ForAll @IntRange(min = 0, max = 300) int n, @ForAll @IntRange(min = 0, max = 40) int offset, @ForAll long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] x = new float[offset + 4 * n], w = new float[offset + n], out = new float[6];
        for (int j = 0; j < x.length; j++) x[j] = (float) r.nextGaussian();
        for (int j = 0; j < w.length; j++) w[j] = (float) r.nextGaussian();
        Simd.dotx4(x, offset, n, w, offset, n, out, 1);
        for (int c = 0; c < 4; c++) {
            assertEquals(Simd.dot(x, offset + c * n, w, offset, n), out[1 + c], "row " + c);   // the same lanes, the same tree
        }
    }

    /**
     * The cache loops: a bf16 row accumulated in place, and int8 rows dequantized (each value times its
     * row's scale, one float product, as the op's definition dequantizes a cached row).
     */
    @Property(tries = 200)
    void cacheRowsAccumulateAndDequantizeLikeTheScalarLoops(@ForAll @IntRange(min = 0, max = 300) int n, @ForAll @IntRange(min = 0, max = 40) int offset,
                                                            @ForAll long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] x = new float[offset + n], bf = new float[offset + n];
        MemorySegment bfCache = MemorySegment.ofArray(new byte[2 * (offset + n)]);
        for (int j = 0; j < x.length; j++) {
            x[j] = (float) r.nextGaussian();
            short b = Simd.toBf16((float) r.nextGaussian());
            bfCache.setAtIndex(SHORT_LE, j, b);
            bf[j] = Float.intBitsToFloat(b << 16);
        }
        float[] y = new float[n + 3], expected = new float[n + 3];
        for (int j = 0; j < n; j++) y[j + 3] = expected[j + 3] = x[offset + j];
        for (int j = 0; j < n; j++) expected[j + 3] += 0.75f * bf[offset + j];
        Simd.axpyBf16(0.75f, bfCache, offset, y, 3, n);
        for (int j = 0; j < y.length; j++) assertEquals(expected[j], y[j], 1e-6f * (1 + Math.abs(expected[j])));

        int rows = 3, r0 = 1 + offset % 3;                                // rows r0 .. r0 + 2 of an int8 cache n wide
        MemorySegment i8Rows = MemorySegment.ofArray(new byte[(r0 + rows) * n]);
        for (int j = 0; j < (r0 + rows) * n; j++) i8Rows.set(ValueLayout.JAVA_BYTE, j, (byte) (r.nextInt(255) - 127));
        float[] scales = new float[2 + r0 + rows], got = new float[rows * n];
        for (int j = 0; j < scales.length; j++) scales[j] = (float) Math.abs(r.nextGaussian()) / 127f;
        Simd.dequantI8Rows(i8Rows, r0, rows, n, scales, 2, got);
        for (int q = 0; q < rows; q++) {
            for (int j = 0; j < n; j++) {
                assertEquals(i8Rows.get(ValueLayout.JAVA_BYTE, (long) (r0 + q) * n + j) * scales[2 + r0 + q], got[q * n + j], "row " + q + ", " + j);
            }
        }
    }

    /** int4 rows (two a byte, even element low) against int8 activations split by parity: exact in int32. */
    @Property(tries = 200)
    void int4DotProductsAreExactInInt32(@ForAll @IntRange(min = 0, max = 150) int halfN, @ForAll @IntRange(min = 0, max = 20) int halfOffset,
                                        @ForAll long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int n = 2 * halfN, offset = 2 * halfOffset;
        int[] x = new int[n], w = new int[offset + n];
        for (int j = 0; j < n; j++) x[j] = r.nextInt(255) - 127;
        MemorySegment packed = MemorySegment.ofArray(new byte[(offset + n) / 2]);
        for (int b = 0; b < (offset + n) / 2; b++) {
            int lo = r.nextInt(16) - 8, hi = r.nextInt(16) - 8;
            w[2 * b] = lo;
            w[2 * b + 1] = hi;
            packed.set(ValueLayout.JAVA_BYTE, b, (byte) ((lo & 0xF) | (hi << 4)));
        }
        int expected = 0;
        for (int j = 0; j < n; j++) expected += x[j] * w[offset + j];
        int[][] split = Simd.splitEvenOdd(x, 0, 1, n);
        assertEquals(expected, Simd.dotI4(split[0], split[1], 0, packed, offset, n));
    }

    /** Two int8 rows sharing a weight row read in place: each exactly its single-row dot product. */
    @Property(tries = 200)
    void twoRowInt8DotsAreExact(@ForAll @IntRange(min = 0, max = 300) int n, @ForAll @IntRange(min = 0, max = 40) int offset, @ForAll long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int[] x = new int[offset + 2 * n];
        for (int j = 0; j < x.length; j++) x[j] = r.nextInt(255) - 127;
        MemorySegment w = MemorySegment.ofArray(new byte[offset + n]);
        for (int j = 0; j < offset + n; j++) w.set(ValueLayout.JAVA_BYTE, j, (byte) (r.nextInt(255) - 127));
        int[] out = new int[3];
        Simd.dotI8x2(x, offset, n, w, offset, n, out, 1);
        assertEquals(Simd.dotI8(x, offset, w, offset, n), out[1]);
        assertEquals(Simd.dotI8(x, offset + n, w, offset, n), out[2]);
    }

    @Property(tries = 200)
    void int8DotProductsAreExactInInt32(@ForAll @IntRange(min = 0, max = 300) int n, @ForAll @IntRange(min = 0, max = 40) int offset, @ForAll long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int[] x = new int[offset + n];
        for (int j = 0; j < x.length; j++) x[j] = r.nextInt(-128, 128);
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

    /** The 4 x 4 float loop (attention's four heads by four positions) gives each pair's dot product to rounding. */
    @Property(tries = 100)
    void fourByFourDotsMatchOneAtATime(@ForAll @IntRange(min = 0, max = 300) int n, @ForAll @IntRange(min = 0, max = 40) int offset, @ForAll long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] x = new float[offset + 4 * n], g = new float[offset + 4 * n], fout = new float[16];
        for (int j = 0; j < g.length; j++) {
            x[j] = r.nextInt(-128, 128);
            g[j] = (float) r.nextGaussian();
        }
        Simd.dot4x4(g, offset, n, x, offset, n, n, fout, 0, 4, new float[Simd.SPILL]);
        for (int c = 0; c < 4; c++) {
            for (int d = 0; d < 4; d++) {
                float one = Simd.dot(g, offset + c * n, x, offset + d * n, n);
                assertEquals(one, fout[c * 4 + d], 1e-4f * (1 + Math.abs(one)) * (1 + n / 16f), "float rows " + c + ", " + d);
            }
        }
    }

    /**
     * A turned panel holds each weight exactly at [column, channel] and zeros past the m rows given, bf16,
     * int8 and int4, for full panels of columns in multiples of 16 (the blocks turned in registers) and for
     * every other shape (the scalar loop); and the same from float rows a stride apart.
     */
    @Property(tries = 200)
    void turnedPanelsHoldEachWeightExactly(@ForAll @IntRange(min = 1, max = 40) int blocks, @ForAll boolean ragged, @ForAll boolean full,
                                           @ForAll @IntRange(min = 0, max = 2) int kind, @ForAll @IntRange(min = 0, max = 40) int offset, @ForAll long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        dev.moec.ir.DType type = new dev.moec.ir.DType[] {dev.moec.ir.DType.BF16, dev.moec.ir.DType.I8, dev.moec.ir.DType.I4}[kind];
        boolean int4 = type == dev.moec.ir.DType.I4;
        int w = Simd.PANEL_WIDTH, k = 16 * blocks + (ragged ? r.nextInt(1, 16) : 0), m = full ? w : r.nextInt(1, w + 1);
        if (int4) {                                                               // int4 rows start on a byte
            k += k % 2;
            offset += offset % 2;
        }
        MemorySegment seg = MemorySegment.ofArray(new byte[(type == dev.moec.ir.DType.BF16 ? 2 : 1) * (offset + m * k)]);
        float[] expected = new float[k * w];
        for (int j = 0; j < m; j++) {
            for (int c = 0; c < k; c++) {
                long e = offset + (long) j * k + c;
                switch (type) {
                    case BF16 -> {
                        short bits = (short) (Float.floatToIntBits((float) r.nextGaussian()) >>> 16);
                        seg.setAtIndex(SHORT_LE, e, bits);
                        expected[c * w + j] = Float.intBitsToFloat(bits << 16);
                    }
                    case I8 -> {
                        byte b = (byte) r.nextInt(-128, 128);
                        seg.set(ValueLayout.JAVA_BYTE, e, b);
                        expected[c * w + j] = b;
                    }
                    default -> {                                                  // two to a byte, low nibble first
                        int v = r.nextInt(-8, 8);
                        byte old = seg.get(ValueLayout.JAVA_BYTE, e / 2);
                        seg.set(ValueLayout.JAVA_BYTE, e / 2, (byte) (e % 2 == 0 ? (old & 0xF0) | (v & 0xF) : (old & 0x0F) | (v << 4)));
                        expected[c * w + j] = v;
                    }
                }
            }
        }
        float[] turned = new float[k * w];
        java.util.Arrays.fill(turned, Float.NaN);                                 // every element is written
        Simd.turn(seg, offset, type, k, m, turned, new float[16 * w]);
        assertArrayEquals(expected, turned);
        int stride = k + 5;                                                       // float rows, stride apart
        float[] rows = new float[offset + m * stride];
        for (int j = 0; j < m; j++) for (int c = 0; c < k; c++) rows[offset + j * stride + c] = expected[c * w + j];
        java.util.Arrays.fill(turned, Float.NaN);
        Simd.turn(rows, offset, stride, k, m, turned);
        assertArrayEquals(expected, turned);
    }

    /**
     * Six-row panel tiles: int8 values held as floats give each row's dot product with each channel
     * exactly in int32 (added to what is there), floats to rounding (stored); rows past {@code rows} and
     * channels past m are left alone.
     */
    @Property(tries = 200)
    void panelTilesGiveEachRowAndChannelItsDot(@ForAll @IntRange(min = 1, max = 6) int rows, @ForAll @IntRange(min = 1, max = 32) int mWanted,
                                               @ForAll @IntRange(min = 0, max = 300) int n, @ForAll @IntRange(min = 0, max = 20) int c0,
                                               @ForAll long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int w = Simd.PANEL_WIDTH, m = Math.min(mWanted, w), xs = n + 3, os = w + 5, oo = 2;
        float[] x = new float[1 + 6 * xs], turned = new float[(c0 + n) * w], g = new float[x.length];
        for (int j = 0; j < x.length; j++) {
            x[j] = r.nextInt(-128, 128);
            g[j] = (float) r.nextGaussian();
        }
        for (int j = 0; j < turned.length; j++) turned[j] = r.nextInt(-128, 128);
        int[] iout = new int[oo + 6 * os];
        float[] fout = new float[oo + 6 * os];
        java.util.Arrays.fill(iout, 3);
        java.util.Arrays.fill(fout, -7f);
        Simd.panel6(x, 1, xs, rows, turned, c0, n, iout, null, oo, os, m, new float[Simd.SPILL]);
        Simd.panel6(g, 1, xs, rows, turned, c0, n, null, fout, oo, os, m, new float[Simd.SPILL]);
        assertTile(6, rows, m, n, turned, c0, x, g, 1, xs, iout, fout, oo, os);
    }

    /**
     * Streamed tiles over a stored bf16 panel ({@link WeightPanels}' layout, read from memory): one row
     * (even and odd columns apart, odd n for the tail), two, and up to four (the last repeated), to
     * rounding; other rows and channels left alone.
     */
    @Property(tries = 200)
    void streamedBf16TilesGiveEachRowAndChannelItsDot(@ForAll @IntRange(min = 1, max = 4) int rows, @ForAll @IntRange(min = 1, max = 32) int mWanted,
                                                      @ForAll @IntRange(min = 0, max = 300) int n, @ForAll long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int w = Simd.PANEL_WIDTH, m = Math.min(mWanted, w), xs = n + 3, os = w + 5, oo = 2;
        float[] x = new float[1 + 8 * xs], weights = new float[n * w];
        for (int j = 0; j < x.length; j++) x[j] = (float) r.nextGaussian();
        try (Arena arena = Arena.ofConfined()) {
            long wb = 12;                                                    // the panel starts past some other bytes
            MemorySegment seg = arena.allocate(wb + (long) n * w * 2 + 8);
            for (int j = 0; j < weights.length; j++) {
                weights[j] = Float.intBitsToFloat(Float.floatToIntBits((float) r.nextGaussian()) & 0xFFFF0000);
                seg.set(ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), wb + 2L * j, (short) (Float.floatToIntBits(weights[j]) >>> 16));
            }
            int[] iout = new int[oo + 8 * os];
            float[] fout = new float[oo + 8 * os];
            java.util.Arrays.fill(iout, 3);
            java.util.Arrays.fill(fout, -7f);
            Simd.panelStream(x, 1, xs, rows, seg, wb, dev.moec.ir.DType.BF16, n, null, fout, oo, os, m, new float[Simd.SPILL]);
            assertTile(8, rows, m, n, weights, 0, null, x, 1, xs, iout, fout, oo, os);
        }
    }

    /**
     * Streamed tiles over a stored int8 panel ({@link Simd#I8_PANEL_WIDTH} channels, biased, each in its
     * {@link Simd#i8Slot}): one row (even and odd columns apart, odd n for the tail), two, and up to
     * {@link Simd#streamRows} (the last repeated), with activations carrying {@link Simd#STREAM_X_SCALE};
     * each row's sums of (w + 128) * x added exactly in int32, other rows and channels left alone.
     */
    @Property(tries = 200)
    void streamedInt8TilesGiveEachRowAndChannelItsBiasedDot(@ForAll @IntRange(min = 1, max = 4) int rowsWanted, @ForAll @IntRange(min = 1, max = 64) int mWanted,
                                                            @ForAll @IntRange(min = 0, max = 512) int n, @ForAll long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int rows = Math.min(rowsWanted, Simd.streamRows(dev.moec.ir.DType.I8));
        int w = Simd.I8_PANEL_WIDTH, m = Math.min(mWanted, w), xs = n + 3, os = w + 5, oo = 2;
        int[] xi = new int[1 + 4 * xs];
        float[] x = new float[xi.length];
        byte[][] weights = new byte[n][w];
        for (int j = 0; j < x.length; j++) {
            xi[j] = r.nextInt(-128, 128);
            x[j] = xi[j] * Simd.STREAM_X_SCALE;
        }
        try (Arena arena = Arena.ofConfined()) {
            long wb = 6;                                                     // the panel starts past some other bytes
            MemorySegment seg = arena.allocate(wb + (long) n * w + 8);
            for (int c = 0; c < n; c++) {
                for (int j = 0; j < w; j++) {
                    weights[c][j] = (byte) r.nextInt(-128, 128);
                    seg.set(ValueLayout.JAVA_BYTE, wb + (long) c * w + Simd.i8Slot(j), Simd.biased(weights[c][j]));
                }
            }
            int[] iout = new int[oo + 4 * os];
            java.util.Arrays.fill(iout, 3);
            Simd.panelStream(x, 1, xs, rows, seg, wb, dev.moec.ir.DType.I8, n, iout, null, oo, os, m, new float[Simd.SPILL]);
            for (int i = 0; i < 4; i++) {
                for (int j = 0; j < os; j++) {
                    int want = 3;
                    if (i < rows && j < m) for (int c = 0; c < n; c++) want += (weights[c][j] + 128) * xi[1 + i * xs + c];
                    assertEquals(want, iout[oo + i * os + j], "row " + i + ", channel " + j);
                }
            }
        }
    }

    /** An int8 tile of the largest biased products stays exact over its whole span; one column more is refused. */
    @net.jqwik.api.Example
    void streamedInt8TilesAreExactUpToTheirLimit() {
        int n = Simd.BIASED_TERMS, w = Simd.I8_PANEL_WIDTH, rows = Simd.streamRows(dev.moec.ir.DType.I8);
        float[] x = new float[rows * n];
        java.util.Arrays.fill(x, -128 * Simd.STREAM_X_SCALE);
        x[3] = 127 * Simd.STREAM_X_SCALE;                                 // an odd term, so rounding would show
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment seg = arena.allocate((long) (n + 1) * w);
            seg.fill(Simd.biased((byte) 127));                              // 255 once biased
            int[] out = new int[rows * w];
            Simd.panelStream(x, 0, n, rows, seg, 0, dev.moec.ir.DType.I8, n, out, null, 0, w, w, new float[Simd.SPILL]);
            for (int j = 0; j < w; j++) assertEquals(255 * -128 * (n - 1) + 255 * 127, out[j]);
            for (int j = w; j < rows * w; j++) assertEquals(255 * -128 * n, out[j]);
            org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                    () -> Simd.panelStream(x, 0, n, 1, seg, 0, dev.moec.ir.DType.I8, n + 1, out, null, 0, w, w, new float[Simd.SPILL]));
        }
    }

    /** A streamed row's sum is its int8 values' sum exactly, at any length (tails included). */
    @Property(tries = 100)
    void streamedRowSumsAreExact(@ForAll @IntRange(min = 0, max = 3000) int n, @ForAll @IntRange(min = 0, max = 9) int offset, @ForAll long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] x = new float[offset + n];
        int want = 0;
        for (int j = 0; j < n; j++) {
            int v = r.nextInt(-128, 128);
            x[offset + j] = v * Simd.STREAM_X_SCALE;
            want += v;
        }
        assertEquals(want, Simd.streamRowSum(x, offset, n));
    }

    /**
     * A tile's results for rows [0, rows) and channels [0, m), weight (column c, channel j) at
     * {@code turned[(c0 + c) * PANEL_WIDTH + j]}: {@code iout} (if int rows xi are given) 3 plus each exact
     * int8 dot product, {@code fout} (if float rows xf are given) each float one to rounding; every other
     * place of the first {@code tileRows} rows still 3 and -7.
     */
    private static void assertTile(int tileRows, int rows, int m, int n, float[] turned, int c0, float[] xi, float[] xf, int xo, int xs,
                                   int[] iout, float[] fout, int oo, int os) {
        int w = Simd.PANEL_WIDTH;
        for (int i = 0; i < tileRows; i++) {
            for (int j = 0; j < os; j++) {
                int at = oo + i * os + j;
                if (i >= rows || j >= m) {
                    assertEquals(3, iout[at], "untouched int at row " + i + ", channel " + j);
                    assertEquals(-7f, fout[at], "untouched float at row " + i + ", channel " + j);
                    continue;
                }
                int exact = 0;
                double dot = 0, magnitude = 0;
                for (int c = 0; c < n; c++) {
                    float t = turned[(c0 + c) * w + j];
                    if (xi != null) exact += (int) xi[xo + i * xs + c] * (int) t;
                    if (xf != null) {
                        dot += (double) xf[xo + i * xs + c] * t;
                        magnitude += Math.abs((double) xf[xo + i * xs + c] * t);
                    }
                }
                if (xi != null) assertEquals(3 + exact, iout[at], "row " + i + ", channel " + j);
                if (xf != null) assertEquals(dot, fout[at], 1e-5 * magnitude + 1e-5, "float row " + i + ", channel " + j);
            }
        }
    }

    /** A whole tile of the largest products: every lane reaches 2^24 and stays exact; one column more is refused. */
    @net.jqwik.api.Example
    void panelTilesAreExactUpToTheirLimit() {
        int n = Simd.EXACT_TERMS, w = Simd.PANEL_WIDTH;
        float[] x = new float[6 * n], turned = new float[n * w];
        java.util.Arrays.fill(x, -128);
        java.util.Arrays.fill(turned, -128);
        x[3] = 127;                                                   // an odd term, so rounding would show
        int[] out = new int[6 * w];
        Simd.panel6(x, 0, n, 6, turned, 0, n, out, null, 0, w, w, new float[Simd.SPILL]);
        for (int j = 0; j < w; j++) assertEquals(16384 * (n - 1) + 127 * -128, out[j]);
        for (int j = w; j < 6 * w; j++) assertEquals(16384 * n, out[j]);
        org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> Simd.panel6(x, 0, n, 6, new float[(n + 1) * w], 0, n + 1, out, null, 0, w, w, new float[Simd.SPILL]));
    }

    /** The vector row quantization is the definition's to the bit: the scale and every q, ties and zero rows included. */
    @Property(tries = 300)
    void rowQuantizationIsTheDefinition(@ForAll @IntRange(min = 0, max = 200) int n, @ForAll @IntRange(min = 0, max = 20) int offset,
                                         @ForAll @IntRange(min = 0, max = 3) int kind, @ForAll long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] x = new float[offset + n];
        for (int j = offset; j < x.length; j++) {
            x[j] = switch (kind) {
                case 0 -> (float) r.nextGaussian();
                case 1 -> j == offset ? 127f : r.nextInt(-127, 127) + 0.5f;   // scale 1 and every x / scale a tie: to even
                case 2 -> 0f;                                                // a zero row
                default -> (float) (r.nextGaussian() * 1e-30);               // tiny values
            };
        }
        int[] fast = new int[offset + n], oracle = new int[offset + n];
        float s1 = Simd.quantizeRow(x, offset, n, fast, offset), s2 = dev.moec.ir.interp.Reference.quantizeRow(x, offset, n, oracle, offset);
        assertEquals(Float.floatToIntBits(s2), Float.floatToIntBits(s1));
        assertArrayEquals(oracle, fast);
    }

    /** int8 activations held as ints become bytes, each the same value, and their sum is exact; bytes around them are left alone. */
    @Property(tries = 300)
    void int8RowsBecomeBytesWithTheirSum(@ForAll @IntRange(min = 0, max = 300) int n, @ForAll @IntRange(min = 0, max = 20) int xo,
                                         @ForAll @IntRange(min = 0, max = 20) int dOff, @ForAll boolean extremes, @ForAll long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int[] x = new int[xo + n];
        for (int j = xo; j < x.length; j++) x[j] = extremes ? (r.nextBoolean() ? -128 : 127) : r.nextInt(-128, 128);
        byte[] dst = new byte[dOff + n + 3];
        java.util.Arrays.fill(dst, (byte) 55);
        int sum = Simd.toBytes(x, xo, n, dst, dOff), expected = 0;
        for (int j = 0; j < n; j++) {
            assertEquals(x[xo + j], dst[dOff + j], "element " + j);
            expected += x[xo + j];
        }
        assertEquals(expected, sum);
        for (int j = 0; j < dOff; j++) assertEquals(55, dst[j]);
        for (int j = dOff + n; j < dst.length; j++) assertEquals(55, dst[j]);
    }

    /** Long rows of extreme values: sums far past 2^24 stay exact, chunk by chunk. */
    @net.jqwik.api.Example
    void floatAccumulatedInt8DotsAreExactPastTwoToThe24() {
        int n = Simd.EXACT_CHUNK + 5000;                             // a whole chunk, its lanes at 2^24, then part of another
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment w = arena.allocate(n);
            int[] x = new int[4 * n];
            for (int j = 0; j < n; j++) w.set(ValueLayout.JAVA_BYTE, j, (byte) -128);
            java.util.Arrays.fill(x, -128);
            x[3] = 127;                                              // an odd term, so rounding would show
            int expected = 16384 * (n - 1) + 127 * -128;
            float[] xf = Simd.exact(x, x.length);
            assertEquals(expected, Simd.dotI8(x, 0, w, 0, n));
            int[] four = new int[4];
            Simd.dotI8x4(xf, 0, n, w, 0, n, four, 0);
            assertArrayEquals(new int[] {expected, 16384 * n, 16384 * n, 16384 * n}, four);
        }
    }

    /** The four-row int8 loop gives each row's own dot product, exact in int32. */
    @Property(tries = 100)
    void fourRowLoopsMatchOneRowAtATime(@ForAll @IntRange(min = 0, max = 200) int n, @ForAll long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int[] xi = new int[4 * n];
        for (int j = 0; j < xi.length; j++) xi[j] = r.nextInt(-128, 128);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment wi = arena.allocate(n + 1);
            for (int j = 0; j < n; j++) wi.set(ValueLayout.JAVA_BYTE, j, (byte) r.nextInt(-128, 128));
            int[] acc = new int[4];
            Simd.dotI8x4(Simd.exact(xi, xi.length), 0, n, wi, 0, n, acc, 0);
            for (int c = 0; c < 4; c++) {
                int exact = Simd.dotI8(xi, c * n, wi, 0, n);
                assertEquals(exact, acc[c]);
            }
        }
    }
}
