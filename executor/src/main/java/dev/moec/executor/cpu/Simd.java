package dev.moec.executor.cpu;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * The Vector API inner loops of the CPU kernels: dot products of f32 activations with f32 rows or with
 * bf16 weights read in place, int8 x int8 dot products accumulated in int32, and widening of bf16 / int8
 * weight rows. Lanes follow the machine's preferred float vector (16 with AVX-512, 8 with AVX2); bf16 is
 * widened by shifting its 16 bits into the top half of a float, exactly. Machines with vectors narrower
 * than 256 bits take the scalar loops.
 */
public final class Simd {
    private Simd() {}

    static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    static final int L = F.length();
    /** Whether the vector loops are used (a 256-bit or wider float vector). */
    public static final boolean ENABLED = L >= 8;
    private static final VectorSpecies<Integer> I = ENABLED ? VectorSpecies.of(int.class, F.vectorShape()) : null;
    private static final VectorSpecies<Short> S = ENABLED ? VectorSpecies.of(short.class, VectorShape.forBitSize(L * 16)) : null;
    private static final VectorSpecies<Byte> B = ENABLED ? VectorSpecies.of(byte.class, VectorShape.forBitSize(L * 8)) : null;
    private static final VectorSpecies<Byte> B4 = ENABLED ? VectorSpecies.of(byte.class, F.vectorShape()) : null;    // 4L bytes
    private static final ValueLayout.OfShort SHORT_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** sum_j a[ao + j] * b[bo + j], j < n. */
    public static float dot(float[] a, int ao, float[] b, int bo, int n) {
        int j = 0;
        float s = 0;
        if (ENABLED) {
            FloatVector acc0 = FloatVector.zero(F), acc1 = FloatVector.zero(F);
            for (; j + 2 * L <= n; j += 2 * L) {
                acc0 = FloatVector.fromArray(F, a, ao + j).fma(FloatVector.fromArray(F, b, bo + j), acc0);
                acc1 = FloatVector.fromArray(F, a, ao + j + L).fma(FloatVector.fromArray(F, b, bo + j + L), acc1);
            }
            for (; j + L <= n; j += L) acc0 = FloatVector.fromArray(F, a, ao + j).fma(FloatVector.fromArray(F, b, bo + j), acc0);
            s = acc0.add(acc1).reduceLanes(VectorOperators.ADD);
        }
        for (; j < n; j++) s += a[ao + j] * b[bo + j];
        return s;
    }

    /** y[yo + j] += alpha * x[xo + j], j < n. */
    public static void axpy(float alpha, float[] x, int xo, float[] y, int yo, int n) {
        int j = 0;
        if (ENABLED) {
            FloatVector a = FloatVector.broadcast(F, alpha);
            for (; j + L <= n; j += L) FloatVector.fromArray(F, x, xo + j).fma(a, FloatVector.fromArray(F, y, yo + j)).intoArray(y, yo + j);
        }
        for (; j < n; j++) y[yo + j] += alpha * x[xo + j];
    }

    /** sum_j x[xo + j] * bf16(w at element we + j), j < n: a bf16 weight row read in place. */
    public static float dotBf16(float[] x, int xo, MemorySegment w, long we, int n) {
        int j = 0;
        float s = 0;
        if (ENABLED) {
            FloatVector acc0 = FloatVector.zero(F), acc1 = FloatVector.zero(F);
            long base = we * 2;
            for (; j + 2 * L <= n; j += 2 * L) {
                acc0 = FloatVector.fromArray(F, x, xo + j).fma(bf16(w, base + 2L * j), acc0);
                acc1 = FloatVector.fromArray(F, x, xo + j + L).fma(bf16(w, base + 2L * (j + L)), acc1);
            }
            for (; j + L <= n; j += L) acc0 = FloatVector.fromArray(F, x, xo + j).fma(bf16(w, base + 2L * j), acc0);
            s = acc0.add(acc1).reduceLanes(VectorOperators.ADD);
        }
        for (; j < n; j++) s += x[xo + j] * Float.intBitsToFloat(w.getAtIndex(SHORT_LE, we + j) << 16);
        return s;
    }

    /** bf16 elements [we, we + n) of w, widened into dst[0, n). */
    public static void widenBf16(MemorySegment w, long we, int n, float[] dst) {
        int j = 0;
        if (ENABLED) for (; j + L <= n; j += L) bf16(w, we * 2 + 2L * j).intoArray(dst, j);
        for (; j < n; j++) dst[j] = Float.intBitsToFloat(w.getAtIndex(SHORT_LE, we + j) << 16);
    }

    /** int8 elements [we, we + n) of w, widened into dst[0, n). */
    public static void widenI8(MemorySegment w, long we, int n, int[] dst) {
        int j = 0;
        if (ENABLED) {
            for (; j + L <= n; j += L) {
                ((IntVector) ByteVector.fromMemorySegment(B, w, we + j, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2I, I, 0)).intoArray(dst, j);
            }
        }
        for (; j < n; j++) dst[j] = w.get(ValueLayout.JAVA_BYTE, we + j);
    }

    /** sum_j x[xo + j] * w[j], j < n, in int32: an int8 activation row (held in ints) against an int8 row. */
    public static int dotI8(int[] x, int xo, int[] w, int n) {
        int j = 0, s = 0;
        if (ENABLED) {
            IntVector acc = IntVector.zero(I);
            for (; j + L <= n; j += L) acc = acc.add(IntVector.fromArray(I, x, xo + j).mul(IntVector.fromArray(I, w, j)));
            s = acc.reduceLanes(VectorOperators.ADD);
        }
        for (; j < n; j++) s += x[xo + j] * w[j];
        return s;
    }

    /** sum_j x[xo + j] * int8(w at byte we + j), in int32: an int8 weight row read in place. */
    public static int dotI8(int[] x, int xo, MemorySegment w, long we, int n) {
        int j = 0, s = 0;
        if (ENABLED) {
            IntVector acc0 = IntVector.zero(I), acc1 = IntVector.zero(I);
            for (; j + 4 * L <= n; j += 4 * L) {                 // one full-width byte load, widened in four parts
                ByteVector wb = ByteVector.fromMemorySegment(B4, w, we + j, ByteOrder.LITTLE_ENDIAN);
                acc0 = acc0.add(IntVector.fromArray(I, x, xo + j).mul((IntVector) wb.convertShape(VectorOperators.B2I, I, 0)));
                acc1 = acc1.add(IntVector.fromArray(I, x, xo + j + L).mul((IntVector) wb.convertShape(VectorOperators.B2I, I, 1)));
                acc0 = acc0.add(IntVector.fromArray(I, x, xo + j + 2 * L).mul((IntVector) wb.convertShape(VectorOperators.B2I, I, 2)));
                acc1 = acc1.add(IntVector.fromArray(I, x, xo + j + 3 * L).mul((IntVector) wb.convertShape(VectorOperators.B2I, I, 3)));
            }
            for (; j + L <= n; j += L) {
                IntVector wv = (IntVector) ByteVector.fromMemorySegment(B, w, we + j, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2I, I, 0);
                acc0 = acc0.add(IntVector.fromArray(I, x, xo + j).mul(wv));
            }
            s = acc0.add(acc1).reduceLanes(VectorOperators.ADD);
        }
        for (; j < n; j++) s += x[xo + j] * w.get(ValueLayout.JAVA_BYTE, we + j);
        return s;
    }

    private static FloatVector bf16(MemorySegment w, long byteOffset) {
        ShortVector v = ShortVector.fromMemorySegment(S, w, byteOffset, ByteOrder.LITTLE_ENDIAN);
        return ((IntVector) v.convertShape(VectorOperators.S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
    }
}
