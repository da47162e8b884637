package dev.moec.executor.cpu;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.DoubleVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

import dev.moec.ir.DType;

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
    private static final VectorSpecies<Byte> B2 = ENABLED ? VectorSpecies.of(byte.class, VectorShape.forBitSize(L * 16)) : null;   // the bytes of L shorts
    private static final ValueLayout.OfShort SHORT_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    /** Rotations by L/2, L/4, ..., 1 lanes: the fixed tree {@link #sum} adds along. */
    @SuppressWarnings("unchecked")
    private static final VectorShuffle<Float>[] HALVES = ENABLED
            ? java.util.stream.IntStream.iterate(L / 2, w -> w >= 1, w -> w / 2).mapToObj(w -> VectorShuffle.iota(F, w, 1, true)).toArray(VectorShuffle[]::new)
            : null;

    private static final VectorShuffle<Float> ROTATE_8 = L >= 16 ? VectorShuffle.iota(F, 8, 1, true) : null;
    private static final VectorShuffle<Float> ROTATE_4 = ENABLED ? VectorShuffle.iota(F, 4, 1, true) : null;
    private static final VectorShuffle<Float> ROTATE_2 = ENABLED ? VectorShuffle.iota(F, 2, 1, true) : null;
    private static final VectorShuffle<Float> ROTATE_1 = ENABLED ? VectorShuffle.iota(F, 1, 1, true) : null;

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
            s = sum(acc0.add(acc1));
        }
        for (; j < n; j++) s += a[ao + j] * b[bo + j];
        return s;
    }

    /**
     * Four dot products sharing one f32 row: out[oo + c] = x row (xo + c * xs) . w[wo ..], c < 4, each
     * vector of w loaded once for the four rows (the query heads that share a KV head); each equals
     * {@link #dot} of that row bit for bit.
     */
    public static void dotx4(float[] x, int xo, int xs, float[] w, int wo, int n, float[] out, int oo) {
        int j = 0;
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        if (ENABLED) {                  // the accumulators and order of dot(), per row: the same result bit for bit
            FloatVector a0 = FloatVector.zero(F), a1 = FloatVector.zero(F), a2 = FloatVector.zero(F), a3 = FloatVector.zero(F);
            FloatVector b0 = FloatVector.zero(F), b1 = FloatVector.zero(F), b2 = FloatVector.zero(F), b3 = FloatVector.zero(F);
            for (; j + 2 * L <= n; j += 2 * L) {
                FloatVector wv = FloatVector.fromArray(F, w, wo + j), wu = FloatVector.fromArray(F, w, wo + j + L);
                a0 = FloatVector.fromArray(F, x, xo + j).fma(wv, a0);
                a1 = FloatVector.fromArray(F, x, xo + xs + j).fma(wv, a1);
                a2 = FloatVector.fromArray(F, x, xo + 2 * xs + j).fma(wv, a2);
                a3 = FloatVector.fromArray(F, x, xo + 3 * xs + j).fma(wv, a3);
                b0 = FloatVector.fromArray(F, x, xo + j + L).fma(wu, b0);
                b1 = FloatVector.fromArray(F, x, xo + xs + j + L).fma(wu, b1);
                b2 = FloatVector.fromArray(F, x, xo + 2 * xs + j + L).fma(wu, b2);
                b3 = FloatVector.fromArray(F, x, xo + 3 * xs + j + L).fma(wu, b3);
            }
            for (; j + L <= n; j += L) {
                FloatVector wv = FloatVector.fromArray(F, w, wo + j);
                a0 = FloatVector.fromArray(F, x, xo + j).fma(wv, a0);
                a1 = FloatVector.fromArray(F, x, xo + xs + j).fma(wv, a1);
                a2 = FloatVector.fromArray(F, x, xo + 2 * xs + j).fma(wv, a2);
                a3 = FloatVector.fromArray(F, x, xo + 3 * xs + j).fma(wv, a3);
            }
            s0 = sum(a0.add(b0));
            s1 = sum(a1.add(b1));
            s2 = sum(a2.add(b2));
            s3 = sum(a3.add(b3));
        }
        for (; j < n; j++) {
            s0 += x[xo + j] * w[wo + j];
            s1 += x[xo + xs + j] * w[wo + j];
            s2 += x[xo + 2 * xs + j] * w[wo + j];
            s3 += x[xo + 3 * xs + j] * w[wo + j];
        }
        out[oo] = s0;
        out[oo + 1] = s1;
        out[oo + 2] = s2;
        out[oo + 3] = s3;
    }

    /** x[xo + j] *= alpha, j < n. */
    public static void scale(float alpha, float[] x, int xo, int n) {
        int j = 0;
        if (ENABLED) for (; j + L <= n; j += L) FloatVector.fromArray(F, x, xo + j).mul(alpha).intoArray(x, xo + j);
        for (; j < n; j++) x[xo + j] *= alpha;
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
            s = sum(acc0.add(acc1));
        }
        for (; j < n; j++) s += x[xo + j] * bf16At(w, we + j);
        return s;
    }

    /**
     * Four int8 activation rows (held in floats, which represent them exactly) against one int8 weight row
     * read in place, in int32: rows xo + c * xs, each weight vector loaded once. The products are summed in
     * float lanes over chunks of {@link #EXACT_CHUNK} elements, where every partial sum is an integer below
     * 2^24 (at most 2^14 per product) and so exact, and each chunk's lanes are added in int32.
     */
    public static void dotI8x4(float[] x, int xo, int xs, MemorySegment w, long we, int n, int[] out, int oo) {
        int j = 0;
        int s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        if (ENABLED) {
            IntVector t0 = IntVector.zero(I), t1 = IntVector.zero(I), t2 = IntVector.zero(I), t3 = IntVector.zero(I);
            while (j + L <= n) {
                int end = Math.min(n, j + EXACT_CHUNK);
                FloatVector a0 = FloatVector.zero(F), a1 = FloatVector.zero(F), a2 = FloatVector.zero(F), a3 = FloatVector.zero(F);
                for (; j + L <= end; j += L) {
                    FloatVector wv = i8(w, we + j);
                    a0 = FloatVector.fromArray(F, x, xo + j).fma(wv, a0);
                    a1 = FloatVector.fromArray(F, x, xo + xs + j).fma(wv, a1);
                    a2 = FloatVector.fromArray(F, x, xo + 2 * xs + j).fma(wv, a2);
                    a3 = FloatVector.fromArray(F, x, xo + 3 * xs + j).fma(wv, a3);
                }
                t0 = t0.add((IntVector) a0.convertShape(VectorOperators.F2I, I, 0));
                t1 = t1.add((IntVector) a1.convertShape(VectorOperators.F2I, I, 0));
                t2 = t2.add((IntVector) a2.convertShape(VectorOperators.F2I, I, 0));
                t3 = t3.add((IntVector) a3.convertShape(VectorOperators.F2I, I, 0));
            }
            s0 = t0.reduceLanes(VectorOperators.ADD);
            s1 = t1.reduceLanes(VectorOperators.ADD);
            s2 = t2.reduceLanes(VectorOperators.ADD);
            s3 = t3.reduceLanes(VectorOperators.ADD);
        }
        for (; j < n; j++) {
            int wj = w.get(ValueLayout.JAVA_BYTE, we + j);
            s0 += (int) x[xo + j] * wj;
            s1 += (int) x[xo + xs + j] * wj;
            s2 += (int) x[xo + 2 * xs + j] * wj;
            s3 += (int) x[xo + 3 * xs + j] * wj;
        }
        out[oo] = s0;
        out[oo + 1] = s1;
        out[oo + 2] = s2;
        out[oo + 3] = s3;
    }


    /** Floats of scratch the register loops spill their accumulators into ({@link #dot4x4}, {@link #panel6}, {@link #panelStream}): sixteen vectors. */
    public static final int SPILL = 16 * L;

    /**
     * Sixteen float dot products: four rows of x (rows xo + c * xs) by four rows of w (rows wo + d * ws),
     * each vector loaded used four times (eight loads feed sixteen FMAs), into out[oo + c * os + d], the
     * lanes added along {@link #sum}'s tree. Attention scores four query heads against four cached
     * positions with it. {@code spill}: scratch of at least {@link #SPILL} floats.
     */
    public static void dot4x4(float[] x, int xo, int xs, float[] w, int wo, int ws, int n, float[] out, int oo, int os, float[] spill) {
        int j = 0;
        if (ENABLED) {
            FloatVector a00 = FloatVector.zero(F), a01 = a00, a02 = a00, a03 = a00, a10 = a00, a11 = a00, a12 = a00, a13 = a00;
            FloatVector a20 = a00, a21 = a00, a22 = a00, a23 = a00, a30 = a00, a31 = a00, a32 = a00, a33 = a00;
            for (; j + L <= n; j += L) {
                FloatVector w0 = FloatVector.fromArray(F, w, wo + j), w1 = FloatVector.fromArray(F, w, wo + ws + j);
                FloatVector w2 = FloatVector.fromArray(F, w, wo + 2 * ws + j), w3 = FloatVector.fromArray(F, w, wo + 3 * ws + j);
                FloatVector x0 = FloatVector.fromArray(F, x, xo + j);
                a00 = x0.fma(w0, a00); a01 = x0.fma(w1, a01); a02 = x0.fma(w2, a02); a03 = x0.fma(w3, a03);
                FloatVector x1 = FloatVector.fromArray(F, x, xo + xs + j);
                a10 = x1.fma(w0, a10); a11 = x1.fma(w1, a11); a12 = x1.fma(w2, a12); a13 = x1.fma(w3, a13);
                FloatVector x2 = FloatVector.fromArray(F, x, xo + 2 * xs + j);
                a20 = x2.fma(w0, a20); a21 = x2.fma(w1, a21); a22 = x2.fma(w2, a22); a23 = x2.fma(w3, a23);
                FloatVector x3 = FloatVector.fromArray(F, x, xo + 3 * xs + j);
                a30 = x3.fma(w0, a30); a31 = x3.fma(w1, a31); a32 = x3.fma(w2, a32); a33 = x3.fma(w3, a33);
            }
            // The sixteen sums go through memory and one small loop: sixteen inlined reductions made the
            // method too large for the JIT to keep its vectors in registers (the bf16 batch matmul ran 1.7x slower).
            a00.intoArray(spill, 0); a01.intoArray(spill, L); a02.intoArray(spill, 2 * L); a03.intoArray(spill, 3 * L);
            a10.intoArray(spill, 4 * L); a11.intoArray(spill, 5 * L); a12.intoArray(spill, 6 * L); a13.intoArray(spill, 7 * L);
            a20.intoArray(spill, 8 * L); a21.intoArray(spill, 9 * L); a22.intoArray(spill, 10 * L); a23.intoArray(spill, 11 * L);
            a30.intoArray(spill, 12 * L); a31.intoArray(spill, 13 * L); a32.intoArray(spill, 14 * L); a33.intoArray(spill, 15 * L);
            spilled(spill, out, oo, os);
        } else {
            for (int c = 0; c < 4; c++) for (int d = 0; d < 4; d++) out[oo + c * os + d] = 0;
        }
        for (; j < n; j++) {
            for (int c = 0; c < 4; c++) for (int d = 0; d < 4; d++) out[oo + c * os + d] += x[xo + c * xs + j] * w[wo + d * ws + j];
        }
    }

    /** The sixteen spilled accumulators of the 4 x 4 loop into their outputs (see {@link #dot4x4}). */
    private static void spilled(float[] spill, float[] out, int oo, int os) {
        for (int q = 0; q < 16; q++) out[oo + (q >> 2) * os + (q & 3)] = sum(FloatVector.fromArray(F, spill, q * L));
    }

    /** Output channels of a turned weight panel (see {@link #turn}): two vectors' lanes. */
    public static final int PANEL_WIDTH = ENABLED ? 2 * L : 16;

    /** Products one float lane may sum exactly: at most 1024 of magnitude at most 2^14 keep every partial sum an integer below 2^24. */
    static final int EXACT_TERMS = 1024;

    /**
     * Output channels of a stored int8 weight panel: 4L, twice a bf16 panel's. A column is one vector of
     * L ints; int lane l holds channels l, L + l, 2L + l and 3L + l in its bytes 0 to 3 ({@link #i8Slot}),
     * each as its weight plus 128 read unsigned ({@link #biased}). A decode step's tile takes byte j of
     * every lane with one mask or shift, and the L channels it gets are contiguous (see {@link #panelStream}).
     */
    public static final int I8_PANEL_WIDTH = 2 * PANEL_WIDTH;
    /** Channels of an int8 panel column held in the same byte of every lane: L with vectors. */
    private static final int I8_QUARTER = I8_PANEL_WIDTH / 4;

    /** Output channels of a stored panel of {@code type}: {@link #PANEL_WIDTH}, or {@link #I8_PANEL_WIDTH} for int8. */
    public static int panelWidth(DType type) { return type == DType.I8 ? I8_PANEL_WIDTH : PANEL_WIDTH; }

    /** The byte of an int8 panel column that holds channel j of the panel: byte j / L of int lane j % L. */
    public static int i8Slot(int j) { return 4 * (j % I8_QUARTER) + j / I8_QUARTER; }

    /** How an int8 panel stores weight w: w + 128 as an unsigned byte (w with its top bit flipped). */
    public static byte biased(byte w) { return (byte) (w ^ 0x80); }

    /**
     * Columns a streamed int8 tile sums in one float lane: 512 products of a biased weight (at most 255)
     * and an activation (at most 128 in magnitude) keep every partial sum an integer below 2^24.
     */
    static final int BIASED_TERMS = 512;

    /**
     * Whether the streamed int8 tiles read a biased byte, masked in place in its int lane, as the bit
     * pattern of a float (byte j of lane l, masked: (w + 128) * 2^(8j - 149), a subnormal for j < 3; byte 3
     * is shifted down first) and multiply it by the activation scaled by {@link #STREAM_X_SCALE}: exact
     * products with no int-to-float conversion. On this project's AMD EPYC (Zen 4) that made the one-row
     * tile about twice as fast in cache (24 -> 47-49 GMAC/s a core; converting the masked lanes instead:
     * 35). Some Intel cores take a
     * microcode assist for subnormal operands, so elsewhere the lanes are converted to floats
     * (u * 2^8j, exact). {@code -Dmoec.subnormalLanes=true|false} overrides the choice.
     */
    static final boolean SUBNORMAL_LANES = ENABLED && subnormalLanes();

    /** The factor a streamed int8 tile's activation rows carry: 2^64 with subnormal lanes (products of magnitude at least 2^-85, normal), else 1. */
    public static final float STREAM_X_SCALE = SUBNORMAL_LANES ? 0x1p64f : 1f;

    /** What a streamed int8 tile's lane sums for byte j are multiplied by to be the integer sums (powers of two, exact). */
    private static final float LANE0 = SUBNORMAL_LANES ? 0x1p85f : 1f, LANE1 = SUBNORMAL_LANES ? 0x1p77f : 0x1p-8f,
            LANE2 = SUBNORMAL_LANES ? 0x1p69f : 0x1p-16f, LANE3 = SUBNORMAL_LANES ? 0x1p85f : 1f;

    private static boolean subnormalLanes() {
        String forced = System.getProperty("moec.subnormalLanes");
        if (forced != null) return Boolean.parseBoolean(forced);
        try {
            for (String line : java.nio.file.Files.readAllLines(java.nio.file.Path.of("/proc/cpuinfo"))) {
                if (line.startsWith("vendor_id")) return line.contains("AuthenticAMD");
            }
        } catch (java.io.IOException | RuntimeException e) {
            // not Linux: convert
        }
        return false;
    }

    /**
     * The two-source permutations of a 16 x 16 transposition's four stages, as lane indices (stage s at
     * 16 * s): lanes kept and lanes taken across (see {@link #turn16}). They are read with the species,
     * so the JIT knows the vectors' exact class. Held as FloatVector objects in an array, their class was
     * not known, and in some JVM runs the permutations were left as calls on boxed vectors: the 512-row
     * int8 q_proj took 27-28 ms in most JMH forks, 20.6 in others; now 20.6-23.5 in every fork.
     */
    private static final float[] KEEP = new float[64], CROSS = new float[64];

    static {
        for (int s = 0; s < 4; s++) {
            int d = 8 >> s;
            for (int l = 0; l < 16; l++) {
                KEEP[16 * s + l] = (l & d) == 0 ? l : 16 + l - d;
                CROSS[16 * s + l] = (l & d) == 0 ? l + d : 16 + l;
            }
        }
    }

    /**
     * Turns m weight rows of k columns (bf16, int8, or int4 two to a byte, low nibble first; row j from
     * element we + j * k of w; m at most {@link #PANEL_WIDTH}) into a float panel whose columns' channels
     * are contiguous: {@code turned[c * PANEL_WIDTH + j] = w[j, c]} widened exactly, and 0 for
     * m <= j < PANEL_WIDTH. With 16 lanes a full panel goes 16 columns at a time: each row's 16 widened
     * into {@code block} (at least 16 * PANEL_WIDTH floats, so it stays in L1), then turned in 16 x 16
     * blocks in registers (four stages of two-source permutations; 32 x 1024 int8 in 4.5 us where the
     * scalar loop takes 20). Other shapes take the scalar loop.
     */
    public static void turn(MemorySegment w, long we, DType type, int k, int m, float[] turned, float[] block) {
        if (type != DType.BF16 && type != DType.I8 && type != DType.I4) throw new IllegalArgumentException("no turned panels of " + type);
        if (L == 16 && m == PANEL_WIDTH && k % 16 == 0 && we % 2 == 0) {
            for (int c = 0; c < k; c += 16) {
                for (int j = 0; j < PANEL_WIDTH; j++) {
                    long e = we + (long) j * k + c;
                    switch (type) {
                        case BF16 -> bf16(w, 2 * e).intoArray(block, j * 16);
                        case I8 -> i8(w, e).intoArray(block, j * 16);
                        default -> {
                            for (int t = 0; t < 8; t++) {                // int4: eight bytes, two elements each
                                int b = w.get(ValueLayout.JAVA_BYTE, e / 2 + t);
                                block[j * 16 + 2 * t] = lowNibble(b);
                                block[j * 16 + 2 * t + 1] = highNibble(b);
                            }
                        }
                    }
                }
                for (int jb = 0; jb < PANEL_WIDTH; jb += 16) turn16(block, jb * 16, 16, turned, c * PANEL_WIDTH + jb);
            }
            return;
        }
        for (int c = 0; c < k; c++) {
            for (int j = 0; j < PANEL_WIDTH; j++) turned[c * PANEL_WIDTH + j] = j >= m ? 0f : element(w, we + (long) j * k + c, type);
        }
    }

    /** Element e of a bf16, int8 or int4 (two to a byte, low nibble first) weight, exactly as a float. */
    private static float element(MemorySegment w, long e, DType type) {
        return switch (type) {
            case BF16 -> bf16At(w, e);
            case I8 -> w.get(ValueLayout.JAVA_BYTE, e);
            default -> int4At(w, e);
        };
    }

    /** bf16 element e of w, exactly as a float (its 16 bits the top half of the float's). */
    static float bf16At(MemorySegment w, long e) {
        return Float.intBitsToFloat(w.getAtIndex(SHORT_LE, e) << 16);
    }

    /** int4 element e of w, two to a byte with the even element in the low nibble, sign-extended. */
    static int int4At(MemorySegment w, long e) {
        int b = w.get(ValueLayout.JAVA_BYTE, e / 2);
        return e % 2 == 0 ? lowNibble(b) : highNibble(b);
    }

    /** The even int4 element a byte holds (its low nibble), sign-extended. */
    static int lowNibble(int b) { return (b << 28) >> 28; }

    /** The odd int4 element a byte holds (its high nibble), sign-extended. */
    static int highNibble(int b) { return (b << 24) >> 28; }

    /**
     * {@link #turn} for m float rows of k columns, row j from so + j * ss of src (cached K rows, for
     * attention's scores): {@code turned[c * PANEL_WIDTH + j] = src[so + j * ss + c]}, 0 past m.
     */
    public static void turn(float[] src, int so, int ss, int k, int m, float[] turned) {
        if (L == 16 && m == PANEL_WIDTH && k % 16 == 0) {
            for (int c = 0; c < k; c += 16) {
                for (int jb = 0; jb < PANEL_WIDTH; jb += 16) turn16(src, so + jb * ss + c, ss, turned, c * PANEL_WIDTH + jb);
            }
            return;
        }
        for (int c = 0; c < k; c++) {
            for (int j = 0; j < PANEL_WIDTH; j++) turned[c * PANEL_WIDTH + j] = j >= m ? 0f : src[so + j * ss + c];
        }
    }

    /** The 16 x 16 block of src from so (rows ss apart) transposed into dst from d0 (rows PANEL_WIDTH apart). */
    private static void turn16(float[] src, int so, int ss, float[] dst, int d0) {
        FloatVector k0 = FloatVector.fromArray(F, KEEP, 0), k1 = FloatVector.fromArray(F, KEEP, 16), k2 = FloatVector.fromArray(F, KEEP, 32), k3 = FloatVector.fromArray(F, KEEP, 48);
        FloatVector x0 = FloatVector.fromArray(F, CROSS, 0), x1 = FloatVector.fromArray(F, CROSS, 16), x2 = FloatVector.fromArray(F, CROSS, 32), x3 = FloatVector.fromArray(F, CROSS, 48);
        FloatVector v0 = FloatVector.fromArray(F, src, so), v1 = FloatVector.fromArray(F, src, so + ss);
        FloatVector v2 = FloatVector.fromArray(F, src, so + 2 * ss), v3 = FloatVector.fromArray(F, src, so + 3 * ss);
        FloatVector v4 = FloatVector.fromArray(F, src, so + 4 * ss), v5 = FloatVector.fromArray(F, src, so + 5 * ss);
        FloatVector v6 = FloatVector.fromArray(F, src, so + 6 * ss), v7 = FloatVector.fromArray(F, src, so + 7 * ss);
        FloatVector v8 = FloatVector.fromArray(F, src, so + 8 * ss), v9 = FloatVector.fromArray(F, src, so + 9 * ss);
        FloatVector v10 = FloatVector.fromArray(F, src, so + 10 * ss), v11 = FloatVector.fromArray(F, src, so + 11 * ss);
        FloatVector v12 = FloatVector.fromArray(F, src, so + 12 * ss), v13 = FloatVector.fromArray(F, src, so + 13 * ss);
        FloatVector v14 = FloatVector.fromArray(F, src, so + 14 * ss), v15 = FloatVector.fromArray(F, src, so + 15 * ss);
        FloatVector a, b;
        // stage 1: rows i and i + 8 swap their off-diagonal halves; then 4, 2, 1
        a = v0; b = v8; v0 = k0.selectFrom(a, b); v8 = x0.selectFrom(a, b);
        a = v1; b = v9; v1 = k0.selectFrom(a, b); v9 = x0.selectFrom(a, b);
        a = v2; b = v10; v2 = k0.selectFrom(a, b); v10 = x0.selectFrom(a, b);
        a = v3; b = v11; v3 = k0.selectFrom(a, b); v11 = x0.selectFrom(a, b);
        a = v4; b = v12; v4 = k0.selectFrom(a, b); v12 = x0.selectFrom(a, b);
        a = v5; b = v13; v5 = k0.selectFrom(a, b); v13 = x0.selectFrom(a, b);
        a = v6; b = v14; v6 = k0.selectFrom(a, b); v14 = x0.selectFrom(a, b);
        a = v7; b = v15; v7 = k0.selectFrom(a, b); v15 = x0.selectFrom(a, b);
        a = v0; b = v4; v0 = k1.selectFrom(a, b); v4 = x1.selectFrom(a, b);
        a = v1; b = v5; v1 = k1.selectFrom(a, b); v5 = x1.selectFrom(a, b);
        a = v2; b = v6; v2 = k1.selectFrom(a, b); v6 = x1.selectFrom(a, b);
        a = v3; b = v7; v3 = k1.selectFrom(a, b); v7 = x1.selectFrom(a, b);
        a = v8; b = v12; v8 = k1.selectFrom(a, b); v12 = x1.selectFrom(a, b);
        a = v9; b = v13; v9 = k1.selectFrom(a, b); v13 = x1.selectFrom(a, b);
        a = v10; b = v14; v10 = k1.selectFrom(a, b); v14 = x1.selectFrom(a, b);
        a = v11; b = v15; v11 = k1.selectFrom(a, b); v15 = x1.selectFrom(a, b);
        a = v0; b = v2; v0 = k2.selectFrom(a, b); v2 = x2.selectFrom(a, b);
        a = v1; b = v3; v1 = k2.selectFrom(a, b); v3 = x2.selectFrom(a, b);
        a = v4; b = v6; v4 = k2.selectFrom(a, b); v6 = x2.selectFrom(a, b);
        a = v5; b = v7; v5 = k2.selectFrom(a, b); v7 = x2.selectFrom(a, b);
        a = v8; b = v10; v8 = k2.selectFrom(a, b); v10 = x2.selectFrom(a, b);
        a = v9; b = v11; v9 = k2.selectFrom(a, b); v11 = x2.selectFrom(a, b);
        a = v12; b = v14; v12 = k2.selectFrom(a, b); v14 = x2.selectFrom(a, b);
        a = v13; b = v15; v13 = k2.selectFrom(a, b); v15 = x2.selectFrom(a, b);
        a = v0; b = v1; v0 = k3.selectFrom(a, b); v1 = x3.selectFrom(a, b);
        a = v2; b = v3; v2 = k3.selectFrom(a, b); v3 = x3.selectFrom(a, b);
        a = v4; b = v5; v4 = k3.selectFrom(a, b); v5 = x3.selectFrom(a, b);
        a = v6; b = v7; v6 = k3.selectFrom(a, b); v7 = x3.selectFrom(a, b);
        a = v8; b = v9; v8 = k3.selectFrom(a, b); v9 = x3.selectFrom(a, b);
        a = v10; b = v11; v10 = k3.selectFrom(a, b); v11 = x3.selectFrom(a, b);
        a = v12; b = v13; v12 = k3.selectFrom(a, b); v13 = x3.selectFrom(a, b);
        a = v14; b = v15; v14 = k3.selectFrom(a, b); v15 = x3.selectFrom(a, b);
        int w = PANEL_WIDTH;
        v0.intoArray(dst, d0); v1.intoArray(dst, d0 + w); v2.intoArray(dst, d0 + 2 * w); v3.intoArray(dst, d0 + 3 * w);
        v4.intoArray(dst, d0 + 4 * w); v5.intoArray(dst, d0 + 5 * w); v6.intoArray(dst, d0 + 6 * w); v7.intoArray(dst, d0 + 7 * w);
        v8.intoArray(dst, d0 + 8 * w); v9.intoArray(dst, d0 + 9 * w); v10.intoArray(dst, d0 + 10 * w); v11.intoArray(dst, d0 + 11 * w);
        v12.intoArray(dst, d0 + 12 * w); v13.intoArray(dst, d0 + 13 * w); v14.intoArray(dst, d0 + 14 * w); v15.intoArray(dst, d0 + 15 * w);
    }

    /**
     * Up to six activation rows (x rows xo + i * xs, i < rows) times a turned panel's
     * {@link #PANEL_WIDTH} channels over columns [c0, c0 + n): for each column, two vector loads of the
     * panel and one broadcast per row feed twelve FMAs, the accumulators in registers, so the loop runs
     * near the FMA peak (55-58 GMAC/s a core here, where the dot-product form of {@link #dot4x4}, with its
     * lane sums and eight loads per sixteen FMAs, reached 20-25). Rows past {@code rows} repeat the last
     * one and are not stored. Results, for channels j < m, go to out index oo + i * os + j: stored as
     * floats into {@code fout}, or, for int8 values held as floats, added exactly in int32 into
     * {@code iout} (n at most {@link #EXACT_TERMS}). Exactly one of the two is given. {@code spill}:
     * scratch of at least {@link #SPILL} floats (the twelve accumulators leave through it: stored from
     * registers and read back by a separate small loop, the kernel ran at a steady 58 GMAC/s; with the
     * stores inline it varied between 42 and 57 from one JIT compilation to the next).
     */
    public static void panel6(float[] x, int xo, int xs, int rows, float[] turned, int c0, int n, int[] iout, float[] fout, int oo, int os, int m, float[] spill) {
        if (rows < 1 || rows > 6) throw new IllegalArgumentException("a panel tile has 1 to 6 rows, not " + rows);
        if (iout != null && n > EXACT_TERMS) throw new IllegalArgumentException("an exact panel tile spans at most " + EXACT_TERMS + " columns, not " + n);
        if (!ENABLED) {
            panel6Scalar(x, xo, xs, rows, turned, c0, n, iout, fout, oo, os, m);
            return;
        }
        int r0 = xo, r1 = xo + Math.min(1, rows - 1) * xs, r2 = xo + Math.min(2, rows - 1) * xs;
        int r3 = xo + Math.min(3, rows - 1) * xs, r4 = xo + Math.min(4, rows - 1) * xs, r5 = xo + Math.min(5, rows - 1) * xs;
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0;
        FloatVector b0 = a0, b1 = a0, b2 = a0, b3 = a0, b4 = a0, b5 = a0;
        for (int c = 0; c < n; c++) {
            int p = (c0 + c) * PANEL_WIDTH;
            FloatVector w0 = FloatVector.fromArray(F, turned, p), w1 = FloatVector.fromArray(F, turned, p + L);
            FloatVector v = FloatVector.broadcast(F, x[r0 + c]);
            a0 = w0.fma(v, a0); b0 = w1.fma(v, b0);
            v = FloatVector.broadcast(F, x[r1 + c]);
            a1 = w0.fma(v, a1); b1 = w1.fma(v, b1);
            v = FloatVector.broadcast(F, x[r2 + c]);
            a2 = w0.fma(v, a2); b2 = w1.fma(v, b2);
            v = FloatVector.broadcast(F, x[r3 + c]);
            a3 = w0.fma(v, a3); b3 = w1.fma(v, b3);
            v = FloatVector.broadcast(F, x[r4 + c]);
            a4 = w0.fma(v, a4); b4 = w1.fma(v, b4);
            v = FloatVector.broadcast(F, x[r5 + c]);
            a5 = w0.fma(v, a5); b5 = w1.fma(v, b5);
        }
        a0.intoArray(spill, 0); b0.intoArray(spill, L); a1.intoArray(spill, 2 * L); b1.intoArray(spill, 3 * L);
        a2.intoArray(spill, 4 * L); b2.intoArray(spill, 5 * L); a3.intoArray(spill, 6 * L); b3.intoArray(spill, 7 * L);
        a4.intoArray(spill, 8 * L); b4.intoArray(spill, 9 * L); a5.intoArray(spill, 10 * L); b5.intoArray(spill, 11 * L);
        for (int i = 0; i < rows; i++) {
            put(spill, 2 * i * L, 1f, iout, fout, oo + i * os, Math.min(m, L));
            put(spill, (2 * i + 1) * L, 1f, iout, fout, oo + i * os + L, m - L);
        }
    }

    /** {@link #panel6} without vectors: each product in order, int8 ones in int32. */
    private static void panel6Scalar(float[] x, int xo, int xs, int rows, float[] turned, int c0, int n, int[] iout, float[] fout, int oo, int os, int m) {
        for (int i = 0; i < rows; i++) {
            for (int j = 0; j < m; j++) {
                float s = 0;
                int is = 0;
                for (int c = 0; c < n; c++) {
                    float a = x[xo + i * xs + c], w = turned[(c0 + c) * PANEL_WIDTH + j];
                    if (iout != null) is += (int) a * (int) w;
                    else s += a * w;
                }
                if (iout != null) iout[oo + i * os + j] += is;
                else fout[oo + i * os + j] = s;
            }
        }
    }

    /**
     * The first {@code lanes} lanes of a spilled accumulator (spill from so) times {@code scale} to out
     * from o: added as ints (exact integer floats) or stored as floats. It takes arrays, not a vector, so
     * nothing is boxed where the JIT does not inline it (a helper taking a tile's sixteen accumulators as
     * vectors was not inlined into it, and the int8 four-row tile ran seven times slower).
     */
    private static void put(float[] spill, int so, float scale, int[] iout, float[] fout, int o, int lanes) {
        if (lanes <= 0) return;
        FloatVector v = FloatVector.fromArray(F, spill, so).mul(scale);
        if (lanes >= L) {
            if (iout != null) IntVector.fromArray(I, iout, o).add(v.convertShape(VectorOperators.F2I, I, 0)).intoArray(iout, o);
            else v.intoArray(fout, o);
            return;
        }
        VectorMask<Float> fm = F.indexInRange(0, lanes);
        if (iout != null) {
            VectorMask<Integer> im = fm.cast(I);
            IntVector.fromArray(I, iout, o, im).add(v.convertShape(VectorOperators.F2I, I, 0)).intoArray(iout, o, im);
        } else {
            v.intoArray(fout, o, fm);
        }
    }

    /**
     * {@code turned[i]} = element i of a bf16 weight panel stored in {@link WeightPanels}' layout (from
     * byte {@code wb} of w), widened exactly, for i < k * {@link #PANEL_WIDTH}: a prompt's float panel for
     * {@link #panel6}, made by straight conversions where {@link #turn} transposes.
     */
    public static void widenBf16Panel(MemorySegment w, long wb, int k, float[] turned) {
        widenBf16(w, wb / 2, k * PANEL_WIDTH, turned);                   // a panel's elements are consecutive, as a row's are
    }

    /**
     * Half {@code half} (0 or 1) of an int8 weight panel stored in {@link WeightPanels}' layout (its
     * first column at byte {@code wb} of w, k columns) as a float panel for {@link #panel6}:
     * turned[c * PANEL_WIDTH + t] = the weight of channel half * PANEL_WIDTH + t, column c, exactly.
     * The half is bytes 2 * half and 2 * half + 1 of each lane: each masked, unbiased and converted.
     */
    public static void widenI8Half(MemorySegment w, long wb, int k, int half, float[] turned) {
        if (half != 0 && half != 1) throw new IllegalArgumentException("an int8 panel has halves 0 and 1, not " + half);
        int c = 0;
        if (ENABLED) {
            int low = 16 * half, high = low + 8;
            for (; c < k; c++) {
                IntVector q = IntVector.fromMemorySegment(I, w, wb + (long) c * I8_PANEL_WIDTH, ByteOrder.LITTLE_ENDIAN);
                q.lanewise(VectorOperators.LSHR, low).lanewise(VectorOperators.AND, 0xFF).sub(128)
                        .convert(VectorOperators.I2F, 0).reinterpretAsFloats().intoArray(turned, c * PANEL_WIDTH);
                q.lanewise(VectorOperators.LSHR, high).lanewise(VectorOperators.AND, 0xFF).sub(128)
                        .convert(VectorOperators.I2F, 0).reinterpretAsFloats().intoArray(turned, c * PANEL_WIDTH + L);
            }
        }
        for (; c < k; c++) {
            for (int t = 0; t < PANEL_WIDTH; t++) {
                turned[c * PANEL_WIDTH + t] = biased(w.get(ValueLayout.JAVA_BYTE, wb + (long) c * I8_PANEL_WIDTH + i8Slot(half * PANEL_WIDTH + t)));
            }
        }
    }

    /**
     * Rows a streamed panel tile of {@code type} takes at most: four (int8 with AVX-512: sixteen
     * accumulators, four bytes of each lane for four rows; bf16: eight-row tiles took its lm_head over
     * eight rows from 19 to 24 ms, and 15.8 to 17.5 with the channel pairs), one for int8 with AVX2's
     * sixteen registers (its two-row tiles, the four bytes' eight accumulators beside the weights and
     * broadcasts, ran at 13-19 GMAC/s where one row runs at 21-34).
     */
    public static int streamRows(DType type) { return type == DType.I8 && L < 16 ? 1 : 4; }

    /**
     * One to {@link #streamRows} activation rows (x rows xo + i * xs, i < rows) times n columns of a weight
     * panel stored in {@link WeightPanels}' layout (bf16 or int8; its first column at byte {@code wb} of w),
     * read straight from memory: a decode step's matmuls, whose weights are read once, in one run, at
     * memory speed, no panel turned or widened into scratch. (Widening a panel into floats for a few rows
     * instead, whole or 128 columns at a time, sent every float through the caches and back: a batch-8
     * decode step took 100 to 113 ms instead of 72.)
     *
     * <p>bf16: a column is one load of L ints, each two neighbouring channels, split into the even and the
     * odd channels by a shift and a mask ({@link #pairs}): widening shorts to ints crosses lanes, which cost
     * the 8-row lm_head 17 % in JMH; the sums go back into channel order once a tile ({@link #interleave})
     * and are stored as floats into {@code fout}.
     *
     * <p>int8: a column is one load of L ints; byte j of every lane, masked in place (byte 3 shifted
     * down), is L contiguous channels ({@link #i8Slot}), read as floats without a conversion where
     * {@link #SUBNORMAL_LANES} (x then carries {@link #STREAM_X_SCALE}), so a column costs a load, four
     * integer ops and one FMA per row and byte: in JMH about twice the in-cache speed of sign-extending and
     * converting each 16 bytes. Each row's sums of (w + 128) * x over the n columns (at most
     * {@link #BIASED_TERMS}) are added exactly into {@code iout}; the caller takes 128 times the row's sum
     * back.
     *
     * <p>One row sums even and odd columns apart (so the FMAs' latency does not bound the stream), and so
     * do two int8 rows (single-thread JMH-style loop in cache: 39 -> 56 GMAC/s); two bf16 rows take a
     * tile of two; three and four a tile of four (bf16: the last row repeated), int8 three a tile of three
     * (43 -> 54 GMAC/s). Each int8 column's four bytes are taken once, before the rows' FMAs: taken
     * byte by byte between them, the JIT's four-row loop ran at a fifth of the speed. Channels j < m go to
     * index oo + i * os + j. The loops are written out once per weight dtype and row count, as
     * {@link #panel6} is for float panels: a vector chosen between two loads is met as a boxed object in
     * the JIT's code, and a loop that tests the row count inside is not split per count.
     */
    public static void panelStream(float[] x, int xo, int xs, int rows, MemorySegment w, long wb, DType type, int n,
                                   int[] iout, float[] fout, int oo, int os, int m, float[] spill) {
        if (rows < 1 || rows > streamRows(type)) throw new IllegalArgumentException("a streamed " + type + " panel tile has 1 to " + streamRows(type) + " rows, not " + rows);
        boolean bf16 = type == DType.BF16;
        if (!bf16 && type != DType.I8) throw new IllegalArgumentException("no weight panels of " + type);
        if (bf16 ? fout == null : iout == null) throw new IllegalArgumentException("a streamed " + type + " tile gives " + (bf16 ? "floats" : "ints"));
        if (!bf16 && n > BIASED_TERMS) throw new IllegalArgumentException("an int8 panel tile spans at most " + BIASED_TERMS + " columns, not " + n);
        if (!ENABLED) {                                                  // no vectors: the scalar tiles
            if (bf16) {
                float[] panel = new float[n * PANEL_WIDTH];
                widenBf16Panel(w, wb, n, panel);
                panel6Scalar(x, xo, xs, rows, panel, 0, n, null, fout, oo, os, m);
            } else {
                streamI8Scalar(x, xo, xs, rows, w, wb, n, iout, oo, os, m);
            }
            return;
        }
        if (rows == 1 && bf16) stream1Bf16(x, xo, w, wb, n, spill);
        else if (rows == 1) stream1I8(x, xo, w, wb, n, spill);
        else if (rows == 2 && bf16) stream2Bf16(x, xo, xs, w, wb, n, spill);
        else if (rows == 2) {
            int even = n & ~1;
            if (even < n) {                                              // an odd last column: a tile of four, its rows repeated
                stream4I8(x, xo + even, xs, 2, w, wb + (long) even * I8_PANEL_WIDTH, 1, spill);
                putBytes(spill, 2, iout, oo, os, m);
            }
            stream2I8(x, xo, xs, w, wb, even, spill);
        }
        else if (bf16) stream4Bf16(x, xo, xs, rows, w, wb, n, spill);
        else if (rows == 3) stream3I8(x, xo, xs, w, wb, n, spill);
        else stream4I8(x, xo, xs, rows, w, wb, n, spill);
        if (bf16) {
            interleave(spill, rows);
            for (int i = 0; i < rows; i++) {
                put(spill, 2 * i * L, 1f, null, fout, oo + i * os, Math.min(m, L));
                put(spill, (2 * i + 1) * L, 1f, null, fout, oo + i * os + L, m - L);
            }
            return;
        }
        putBytes(spill, rows, iout, oo, os, m);
    }

    /** An int8 tile's spilled byte sums of {@code rows} rows, scaled back to integers, added to iout: row i, channel j at oo + i * os + j, j < m. */
    private static void putBytes(float[] spill, int rows, int[] iout, int oo, int os, int m) {
        for (int i = 0; i < rows; i++) {
            for (int j = 0; j < 4; j++) put(spill, (4 * i + j) * L, laneScale(j), iout, null, oo + i * os + j * L, Math.min(L, m - j * L));
        }
    }

    /** The int8 stream tile without vectors: each row's sums of (w + 128) * x added to iout, in int32. */
    private static void streamI8Scalar(float[] x, int xo, int xs, int rows, MemorySegment w, long wb, int n, int[] iout, int oo, int os, int m) {
        for (int i = 0; i < rows; i++) {
            for (int j = 0; j < m; j++) {
                int sum = 0;
                for (int c = 0; c < n; c++) sum += (w.get(ValueLayout.JAVA_BYTE, wb + (long) c * I8_PANEL_WIDTH + i8Slot(j)) & 0xFF) * (int) (x[xo + i * xs + c] / STREAM_X_SCALE);
                iout[oo + i * os + j] += sum;
            }
        }
    }

    /** An int8 panel column: L ints, four biased channels each. */
    private static IntVector column(MemorySegment w, long byteOffset) {
        return IntVector.fromMemorySegment(I, w, byteOffset, ByteOrder.LITTLE_ENDIAN);
    }

    /** Byte j of every lane of an int8 column as floats: channels jL to jL + L - 1 (see {@link #SUBNORMAL_LANES}). */
    private static FloatVector byte0(IntVector q) { return lanes(q.lanewise(VectorOperators.AND, 0xFF)); }

    private static FloatVector byte1(IntVector q) { return lanes(q.lanewise(VectorOperators.AND, 0xFF00)); }

    private static FloatVector byte2(IntVector q) { return lanes(q.lanewise(VectorOperators.AND, 0xFF0000)); }

    private static FloatVector byte3(IntVector q) { return lanes(q.lanewise(VectorOperators.LSHR, 24)); }

    private static FloatVector lanes(IntVector v) {
        return SUBNORMAL_LANES ? v.reinterpretAsFloats() : (FloatVector) v.convertShape(VectorOperators.I2F, F, 0);
    }

    /**
     * What the sums of byte j of a streamed int8 tile are multiplied by to be the integers (powers of
     * two, so exact): 2^(85 - 8j) with subnormal lanes, 2^-8j with converted ones; byte 3 was shifted down.
     */
    private static float laneScale(int j) { return j == 0 ? LANE0 : j == 1 ? LANE1 : j == 2 ? LANE2 : LANE3; }
    private static void stream1Bf16(float[] x, int xo, MemorySegment w, long wb, int n, float[] spill) {
        FloatVector e0 = FloatVector.zero(F), o0 = e0, e1 = e0, o1 = e0;
        int c = 0;
        for (; c + 2 <= n; c += 2) {
            long p = wb + 2L * c * PANEL_WIDTH;
            IntVector q = pairs(w, p), r = pairs(w, p + 2L * PANEL_WIDTH);
            FloatVector v = FloatVector.broadcast(F, x[xo + c]), u = FloatVector.broadcast(F, x[xo + c + 1]);
            e0 = even(q).fma(v, e0);
            o0 = odd(q).fma(v, o0);
            e1 = even(r).fma(u, e1);
            o1 = odd(r).fma(u, o1);
        }
        if (c < n) {
            IntVector q = pairs(w, wb + 2L * c * PANEL_WIDTH);
            FloatVector v = FloatVector.broadcast(F, x[xo + c]);
            e0 = even(q).fma(v, e0);
            o0 = odd(q).fma(v, o0);
        }
        e0.add(e1).intoArray(spill, PAIRS);
        o0.add(o1).intoArray(spill, PAIRS + L);
    }

    private static void stream1I8(float[] x, int xo, MemorySegment w, long wb, int n, float[] spill) {
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        int c = 0;
        for (; c + 2 <= n; c += 2) {
            long p = wb + (long) c * I8_PANEL_WIDTH;
            IntVector q = column(w, p), r = column(w, p + I8_PANEL_WIDTH);
            FloatVector v = FloatVector.broadcast(F, x[xo + c]), u = FloatVector.broadcast(F, x[xo + c + 1]);
            a0 = byte0(q).fma(v, a0); a1 = byte1(q).fma(v, a1); a2 = byte2(q).fma(v, a2); a3 = byte3(q).fma(v, a3);
            b0 = byte0(r).fma(u, b0); b1 = byte1(r).fma(u, b1); b2 = byte2(r).fma(u, b2); b3 = byte3(r).fma(u, b3);
        }
        if (c < n) {
            IntVector q = column(w, wb + (long) c * I8_PANEL_WIDTH);
            FloatVector v = FloatVector.broadcast(F, x[xo + c]);
            a0 = byte0(q).fma(v, a0); a1 = byte1(q).fma(v, a1); a2 = byte2(q).fma(v, a2); a3 = byte3(q).fma(v, a3);
        }
        a0.add(b0).intoArray(spill, 0);                                  // each half at most 256 columns: the sums stay exact
        a1.add(b1).intoArray(spill, L);
        a2.add(b2).intoArray(spill, 2 * L);
        a3.add(b3).intoArray(spill, 3 * L);
    }

    private static void stream4Bf16(float[] x, int xo, int xs, int rows, MemorySegment w, long wb, int n, float[] spill) {
        int r0 = xo, r1 = xo + Math.min(1, rows - 1) * xs, r2 = xo + Math.min(2, rows - 1) * xs, r3 = xo + Math.min(3, rows - 1) * xs;
        FloatVector e0 = FloatVector.zero(F), e1 = e0, e2 = e0, e3 = e0, o0 = e0, o1 = e0, o2 = e0, o3 = e0;
        for (int c = 0; c < n; c++) {
            IntVector q = pairs(w, wb + 2L * c * PANEL_WIDTH);
            FloatVector we = even(q), wo = odd(q);
            FloatVector v = FloatVector.broadcast(F, x[r0 + c]);
            e0 = we.fma(v, e0); o0 = wo.fma(v, o0);
            v = FloatVector.broadcast(F, x[r1 + c]);
            e1 = we.fma(v, e1); o1 = wo.fma(v, o1);
            v = FloatVector.broadcast(F, x[r2 + c]);
            e2 = we.fma(v, e2); o2 = wo.fma(v, o2);
            v = FloatVector.broadcast(F, x[r3 + c]);
            e3 = we.fma(v, e3); o3 = wo.fma(v, o3);
        }
        e0.intoArray(spill, PAIRS); o0.intoArray(spill, PAIRS + L); e1.intoArray(spill, PAIRS + 2 * L); o1.intoArray(spill, PAIRS + 3 * L);
        e2.intoArray(spill, PAIRS + 4 * L); o2.intoArray(spill, PAIRS + 5 * L); e3.intoArray(spill, PAIRS + 6 * L); o3.intoArray(spill, PAIRS + 7 * L);
    }

    /**
     * Where the bf16 stream tiles leave their sums: row i's even channels at PAIRS + 2iL, its odd ones at
     * PAIRS + (2i+1)L, for {@link #interleave} to put in channel order below PAIRS.
     */
    private static final int PAIRS = 8 * L;

    /**
     * A column of a bf16 panel (2L channels, 4L bytes) as L ints, each holding two neighbouring channels:
     * channel 2j in its low half, 2j+1 in its high half. One load, and no lane crossing to widen it
     * ({@link #even}, {@link #odd}), where widening shorts to ints crosses lanes.
     */
    private static IntVector pairs(MemorySegment w, long byteOffset) {
        return IntVector.fromMemorySegment(I, w, byteOffset, ByteOrder.LITTLE_ENDIAN);
    }

    /** Channels 2j of a column of pairs, as floats (a bf16 is the high half of its float). */
    private static FloatVector even(IntVector pairs) { return pairs.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats(); }

    /** Channels 2j + 1 of a column of pairs, as floats. */
    private static FloatVector odd(IntVector pairs) { return pairs.lanewise(VectorOperators.AND, 0xFFFF0000).reinterpretAsFloats(); }

    /** The bf16 tiles' sums of {@code rows} rows from even and odd channels (at {@link #PAIRS}) into channel order: row i at 2iL. */
    private static void interleave(float[] spill, int rows) {
        for (int i = 0; i < rows; i++) {
            int e = PAIRS + 2 * i * L, o = e + L, d = 2 * i * L;
            for (int j = 0; j < L; j++) {
                spill[d + 2 * j] = spill[e + j];
                spill[d + 2 * j + 1] = spill[o + j];
            }
        }
    }

    private static void stream4I8(float[] x, int xo, int xs, int rows, MemorySegment w, long wb, int n, float[] spill) {
        int r0 = xo, r1 = xo + Math.min(1, rows - 1) * xs, r2 = xo + Math.min(2, rows - 1) * xs, r3 = xo + Math.min(3, rows - 1) * xs;
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        FloatVector c0 = a0, c1 = a0, c2 = a0, c3 = a0, d0 = a0, d1 = a0, d2 = a0, d3 = a0;
        for (int c = 0; c < n; c++) {
            IntVector q = column(w, wb + (long) c * I8_PANEL_WIDTH);
            FloatVector t0 = byte0(q), t1 = byte1(q), t2 = byte2(q), t3 = byte3(q);
            FloatVector v = FloatVector.broadcast(F, x[r0 + c]);
            a0 = t0.fma(v, a0); a1 = t1.fma(v, a1); a2 = t2.fma(v, a2); a3 = t3.fma(v, a3);
            v = FloatVector.broadcast(F, x[r1 + c]);
            b0 = t0.fma(v, b0); b1 = t1.fma(v, b1); b2 = t2.fma(v, b2); b3 = t3.fma(v, b3);
            v = FloatVector.broadcast(F, x[r2 + c]);
            c0 = t0.fma(v, c0); c1 = t1.fma(v, c1); c2 = t2.fma(v, c2); c3 = t3.fma(v, c3);
            v = FloatVector.broadcast(F, x[r3 + c]);
            d0 = t0.fma(v, d0); d1 = t1.fma(v, d1); d2 = t2.fma(v, d2); d3 = t3.fma(v, d3);
        }
        a0.intoArray(spill, 0); a1.intoArray(spill, L); a2.intoArray(spill, 2 * L); a3.intoArray(spill, 3 * L);
        b0.intoArray(spill, 4 * L); b1.intoArray(spill, 5 * L); b2.intoArray(spill, 6 * L); b3.intoArray(spill, 7 * L);
        c0.intoArray(spill, 8 * L); c1.intoArray(spill, 9 * L); c2.intoArray(spill, 10 * L); c3.intoArray(spill, 11 * L);
        d0.intoArray(spill, 12 * L); d1.intoArray(spill, 13 * L); d2.intoArray(spill, 14 * L); d3.intoArray(spill, 15 * L);
    }

    private static void stream2Bf16(float[] x, int xo, int xs, MemorySegment w, long wb, int n, float[] spill) {
        int r0 = xo, r1 = xo + xs;
        FloatVector e0 = FloatVector.zero(F), e1 = e0, o0 = e0, o1 = e0;
        for (int c = 0; c < n; c++) {
            IntVector q = pairs(w, wb + 2L * c * PANEL_WIDTH);
            FloatVector we = even(q), wo = odd(q);
            FloatVector v = FloatVector.broadcast(F, x[r0 + c]);
            e0 = we.fma(v, e0); o0 = wo.fma(v, o0);
            v = FloatVector.broadcast(F, x[r1 + c]);
            e1 = we.fma(v, e1); o1 = wo.fma(v, o1);
        }
        e0.intoArray(spill, PAIRS); o0.intoArray(spill, PAIRS + L);
        e1.intoArray(spill, PAIRS + 2 * L); o1.intoArray(spill, PAIRS + 3 * L);
    }

    /** Two int8 rows over an even number of columns, even and odd columns summed apart. */
    private static void stream2I8(float[] x, int xo, int xs, MemorySegment w, long wb, int n, float[] spill) {
        int r0 = xo, r1 = xo + xs;
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;   // even columns
        FloatVector c0 = a0, c1 = a0, c2 = a0, c3 = a0, d0 = a0, d1 = a0, d2 = a0, d3 = a0;                    // odd columns
        for (int c = 0; c + 2 <= n; c += 2) {
            long p = wb + (long) c * I8_PANEL_WIDTH;
            IntVector q = column(w, p);
            FloatVector t0 = byte0(q), t1 = byte1(q), t2 = byte2(q), t3 = byte3(q);
            FloatVector v = FloatVector.broadcast(F, x[r0 + c]);
            a0 = t0.fma(v, a0); a1 = t1.fma(v, a1); a2 = t2.fma(v, a2); a3 = t3.fma(v, a3);
            v = FloatVector.broadcast(F, x[r1 + c]);
            b0 = t0.fma(v, b0); b1 = t1.fma(v, b1); b2 = t2.fma(v, b2); b3 = t3.fma(v, b3);
            q = column(w, p + I8_PANEL_WIDTH);
            t0 = byte0(q); t1 = byte1(q); t2 = byte2(q); t3 = byte3(q);
            v = FloatVector.broadcast(F, x[r0 + c + 1]);
            c0 = t0.fma(v, c0); c1 = t1.fma(v, c1); c2 = t2.fma(v, c2); c3 = t3.fma(v, c3);
            v = FloatVector.broadcast(F, x[r1 + c + 1]);
            d0 = t0.fma(v, d0); d1 = t1.fma(v, d1); d2 = t2.fma(v, d2); d3 = t3.fma(v, d3);
        }
        a0.add(c0).intoArray(spill, 0); a1.add(c1).intoArray(spill, L); a2.add(c2).intoArray(spill, 2 * L); a3.add(c3).intoArray(spill, 3 * L);
        b0.add(d0).intoArray(spill, 4 * L); b1.add(d1).intoArray(spill, 5 * L); b2.add(d2).intoArray(spill, 6 * L); b3.add(d3).intoArray(spill, 7 * L);
    }

    private static void stream3I8(float[] x, int xo, int xs, MemorySegment w, long wb, int n, float[] spill) {
        int r0 = xo, r1 = xo + xs, r2 = xo + 2 * xs;
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0, c0 = a0, c1 = a0, c2 = a0, c3 = a0;
        for (int c = 0; c < n; c++) {
            IntVector q = column(w, wb + (long) c * I8_PANEL_WIDTH);
            FloatVector t0 = byte0(q), t1 = byte1(q), t2 = byte2(q), t3 = byte3(q);
            FloatVector v = FloatVector.broadcast(F, x[r0 + c]);
            a0 = t0.fma(v, a0); a1 = t1.fma(v, a1); a2 = t2.fma(v, a2); a3 = t3.fma(v, a3);
            v = FloatVector.broadcast(F, x[r1 + c]);
            b0 = t0.fma(v, b0); b1 = t1.fma(v, b1); b2 = t2.fma(v, b2); b3 = t3.fma(v, b3);
            v = FloatVector.broadcast(F, x[r2 + c]);
            c0 = t0.fma(v, c0); c1 = t1.fma(v, c1); c2 = t2.fma(v, c2); c3 = t3.fma(v, c3);
        }
        a0.intoArray(spill, 0); a1.intoArray(spill, L); a2.intoArray(spill, 2 * L); a3.intoArray(spill, 3 * L);
        b0.intoArray(spill, 4 * L); b1.intoArray(spill, 5 * L); b2.intoArray(spill, 6 * L); b3.intoArray(spill, 7 * L);
        c0.intoArray(spill, 8 * L); c1.intoArray(spill, 9 * L); c2.intoArray(spill, 10 * L); c3.intoArray(spill, 11 * L);
    }

    /**
     * The sum of n int8 activations held as floats that carry {@link #STREAM_X_SCALE} (a streamed int8
     * row, x[xo + j], j < n), exactly: what {@link #panelStream}'s int8 sums carry 128 times over.
     */
    public static int streamRowSum(float[] x, int xo, int n) {
        int j = 0;
        long s = 0;
        if (ENABLED) {
            while (n - j >= L) {                                         // at most 2^17 values below 2^7 at a time: every partial sum exact
                int end = j + Math.min((n - j) / L, (1 << 17) / L) * L;
                FloatVector acc = FloatVector.zero(F);
                for (; j < end; j += L) acc = acc.add(FloatVector.fromArray(F, x, xo + j));
                s += (long) (acc.reduceLanes(VectorOperators.ADD) / STREAM_X_SCALE);
            }
        }
        for (; j < n; j++) s += (long) (x[xo + j] / STREAM_X_SCALE);
        return Math.toIntExact(s);
    }

    /**
     * Elements a float-accumulated int8 dot product may span before its lanes go to int32: each of its L
     * lanes then sums at most {@link #EXACT_TERMS} products.
     */
    static final int EXACT_CHUNK = ENABLED ? EXACT_TERMS * L : EXACT_TERMS;

    /**
     * Two int8 activation rows (held in ints) against one int8 weight row read in place, in int32:
     * out[oo] = x row xo . w, out[oo + 1] = x row xo + xs . w; each weight vector loaded and widened once.
     */
    public static void dotI8x2(int[] x, int xo, int xs, MemorySegment w, long we, int n, int[] out, int oo) {
        int j = 0, s0 = 0, s1 = 0;
        if (ENABLED) {
            IntVector a0 = IntVector.zero(I), a1 = IntVector.zero(I), b0 = IntVector.zero(I), b1 = IntVector.zero(I);
            for (; j + 2 * L <= n; j += 2 * L) {
                IntVector w0 = i8i(w, we + j), w1 = i8i(w, we + j + L);
                a0 = a0.add(IntVector.fromArray(I, x, xo + j).mul(w0));
                a1 = a1.add(IntVector.fromArray(I, x, xo + j + L).mul(w1));
                b0 = b0.add(IntVector.fromArray(I, x, xo + xs + j).mul(w0));
                b1 = b1.add(IntVector.fromArray(I, x, xo + xs + j + L).mul(w1));
            }
            for (; j + L <= n; j += L) {
                IntVector w0 = i8i(w, we + j);
                a0 = a0.add(IntVector.fromArray(I, x, xo + j).mul(w0));
                b0 = b0.add(IntVector.fromArray(I, x, xo + xs + j).mul(w0));
            }
            s0 = a0.add(a1).reduceLanes(VectorOperators.ADD);
            s1 = b0.add(b1).reduceLanes(VectorOperators.ADD);
        }
        for (; j < n; j++) {
            int wj = w.get(ValueLayout.JAVA_BYTE, we + j);
            s0 += x[xo + j] * wj;
            s1 += x[xo + xs + j] * wj;
        }
        out[oo] = s0;
        out[oo + 1] = s1;
    }

    private static IntVector i8i(MemorySegment w, long byteOffset) {
        return (IntVector) ByteVector.fromMemorySegment(B, w, byteOffset, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2I, I, 0);
    }

    /**
     * Rows [r0, r0 + rows) of an int8 cache d wide (row r from byte r * d of w) into dst[0, rows * d) as
     * floats, each value times its row's scale (scale[so + r]) in float, as the op's definition
     * dequantizes a cached row before it attends to it.
     */
    public static void dequantI8Rows(MemorySegment w, long r0, int rows, int d, float[] scale, int so, float[] dst) {
        for (int r = 0; r < rows; r++) {
            float sc = scale[so + Math.toIntExact(r0 + r)];
            long base = (r0 + r) * d;
            int o = r * d, j = 0;
            if (ENABLED) {
                FloatVector s = FloatVector.broadcast(F, sc);
                for (; j + L <= d; j += L) i8(w, base + j).mul(s).intoArray(dst, o + j);
            }
            for (; j < d; j++) dst[o + j] = w.get(ValueLayout.JAVA_BYTE, base + j) * sc;
        }
    }

    private static FloatVector i8(MemorySegment w, long byteOffset) {
        return (FloatVector) ByteVector.fromMemorySegment(B, w, byteOffset, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2F, F, 0);
    }

    /**
     * Attention's weighted sum of value rows for four query heads at once: out[oo + c * os + d] +=
     * sum_{j < m} p[po + c * ps + j] * v[vo + j * vs + d], c < 4, d < n. The four heads share each V row
     * load: four rows' vectors and four broadcast weights feed sixteen FMAs held in registers across the
     * positions, where one head at a time ({@link #axpy}) loads and stores its sums for every FMA. Each
     * output is accumulated in the same order with the same fused multiply-adds as {@code axpy} position
     * by position, so the results are the same bits.
     */
    public static void pv4(float[] p, int po, int ps, float[] v, int vo, int vs, int m, int n, float[] out, int oo, int os) {
        int d = 0;
        if (ENABLED) {
            for (; d + 4 * L <= n; d += 4 * L) {
                int o0 = oo + d, o1 = oo + os + d, o2 = oo + 2 * os + d, o3 = oo + 3 * os + d;
                FloatVector a00 = FloatVector.fromArray(F, out, o0), a01 = FloatVector.fromArray(F, out, o0 + L), a02 = FloatVector.fromArray(F, out, o0 + 2 * L), a03 = FloatVector.fromArray(F, out, o0 + 3 * L);
                FloatVector a10 = FloatVector.fromArray(F, out, o1), a11 = FloatVector.fromArray(F, out, o1 + L), a12 = FloatVector.fromArray(F, out, o1 + 2 * L), a13 = FloatVector.fromArray(F, out, o1 + 3 * L);
                FloatVector a20 = FloatVector.fromArray(F, out, o2), a21 = FloatVector.fromArray(F, out, o2 + L), a22 = FloatVector.fromArray(F, out, o2 + 2 * L), a23 = FloatVector.fromArray(F, out, o2 + 3 * L);
                FloatVector a30 = FloatVector.fromArray(F, out, o3), a31 = FloatVector.fromArray(F, out, o3 + L), a32 = FloatVector.fromArray(F, out, o3 + 2 * L), a33 = FloatVector.fromArray(F, out, o3 + 3 * L);
                for (int j = 0; j < m; j++) {
                    int vr = vo + j * vs + d;
                    FloatVector v0 = FloatVector.fromArray(F, v, vr), v1 = FloatVector.fromArray(F, v, vr + L);
                    FloatVector v2 = FloatVector.fromArray(F, v, vr + 2 * L), v3 = FloatVector.fromArray(F, v, vr + 3 * L);
                    FloatVector p0 = FloatVector.broadcast(F, p[po + j]);
                    a00 = v0.fma(p0, a00); a01 = v1.fma(p0, a01); a02 = v2.fma(p0, a02); a03 = v3.fma(p0, a03);
                    FloatVector p1 = FloatVector.broadcast(F, p[po + ps + j]);
                    a10 = v0.fma(p1, a10); a11 = v1.fma(p1, a11); a12 = v2.fma(p1, a12); a13 = v3.fma(p1, a13);
                    FloatVector p2 = FloatVector.broadcast(F, p[po + 2 * ps + j]);
                    a20 = v0.fma(p2, a20); a21 = v1.fma(p2, a21); a22 = v2.fma(p2, a22); a23 = v3.fma(p2, a23);
                    FloatVector p3 = FloatVector.broadcast(F, p[po + 3 * ps + j]);
                    a30 = v0.fma(p3, a30); a31 = v1.fma(p3, a31); a32 = v2.fma(p3, a32); a33 = v3.fma(p3, a33);
                }
                a00.intoArray(out, o0); a01.intoArray(out, o0 + L); a02.intoArray(out, o0 + 2 * L); a03.intoArray(out, o0 + 3 * L);
                a10.intoArray(out, o1); a11.intoArray(out, o1 + L); a12.intoArray(out, o1 + 2 * L); a13.intoArray(out, o1 + 3 * L);
                a20.intoArray(out, o2); a21.intoArray(out, o2 + L); a22.intoArray(out, o2 + 2 * L); a23.intoArray(out, o2 + 3 * L);
                a30.intoArray(out, o3); a31.intoArray(out, o3 + L); a32.intoArray(out, o3 + 2 * L); a33.intoArray(out, o3 + 3 * L);
            }
        }
        for (int c = 0; c < 4; c++) {                                   // the columns past a multiple of 4L, head by head
            for (int j = 0; j < m && d < n; j++) axpy(p[po + c * ps + j], v, vo + j * vs + d, out, oo + c * os + d, n - d);
        }
    }

    /** y[yo + j] += alpha * bf16(x at element xe + j), j < n: a bf16 cache row read in place. */
    public static void axpyBf16(float alpha, MemorySegment x, long xe, float[] y, int yo, int n) {
        int j = 0;
        if (ENABLED) {
            FloatVector a = FloatVector.broadcast(F, alpha);
            for (; j + L <= n; j += L) bf16(x, xe * 2 + 2L * j).fma(a, FloatVector.fromArray(F, y, yo + j)).intoArray(y, yo + j);
        }
        for (; j < n; j++) y[yo + j] += alpha * bf16At(x, xe + j);
    }

    /**
     * Dynamic int8 quantization of one row, exactly as {@link dev.moec.ir.interp.Reference#quantizeRow}
     * defines it: scale = max|x| / 127 and q = clamp(rint(x / scale), -127, 127), all zeros for a zero
     * row; returns the scale. The maximum is order-free, the division the same IEEE float division in a
     * lane, and rint of a value within +-128 is adding and subtracting {@code ROUND}, 1.5 * 2^23 (the
     * float addition rounds to nearest even, as in {@link #exp}), so every q is the definition's.
     */
    public static float quantizeRow(float[] x, int xo, int n, int[] q, int qo) {
        int j = 0;
        float max = 0;
        if (ENABLED) {
            FloatVector m = FloatVector.zero(F);
            for (; j + L <= n; j += L) m = m.max(FloatVector.fromArray(F, x, xo + j).abs());
            max = m.reduceLanes(VectorOperators.MAX);
        }
        for (; j < n; j++) max = Math.max(max, Math.abs(x[xo + j]));
        float scale = max / 127f;
        if (max == 0) {
            java.util.Arrays.fill(q, qo, qo + n, 0);
            return scale;
        }
        j = 0;
        if (ENABLED) {
            for (; j + L <= n; j += L) {
                FloatVector v = FloatVector.fromArray(F, x, xo + j).div(scale).add(ROUND).sub(ROUND).max(-127f).min(127f);
                ((IntVector) v.convertShape(VectorOperators.F2I, I, 0)).intoArray(q, qo + j);
            }
        }
        for (; j < n; j++) q[qo + j] = (int) Math.max(-127, Math.min(127, Math.rint(x[xo + j] / scale)));
        return scale;
    }

    /**
     * Ints [xo, xo + n) of x, each within -128..127 (int8 activations as the kernels hold them), written
     * as bytes at dst[dOff..]; returns their sum (exact: n * 128 stays far below 2^31 for any row).
     */
    public static int toBytes(int[] x, int xo, int n, byte[] dst, int dOff) {
        int j = 0, sum = 0;
        if (ENABLED) {
            IntVector acc = IntVector.zero(I);
            for (; j + L <= n; j += L) {
                IntVector v = IntVector.fromArray(I, x, xo + j);
                acc = acc.add(v);
                ((ByteVector) v.convertShape(VectorOperators.I2B, B, 0)).intoArray(dst, dOff + j);
            }
            sum = acc.reduceLanes(VectorOperators.ADD);
        }
        for (; j < n; j++) {
            dst[dOff + j] = (byte) x[xo + j];
            sum += x[xo + j];
        }
        return sum;
    }

    private static final VectorSpecies<Double> D = ENABLED ? VectorSpecies.of(double.class, F.vectorShape()) : null;
    private static final VectorSpecies<Integer> I_HALF = ENABLED ? VectorSpecies.of(int.class, VectorShape.forBitSize(D.length() * 32)) : null;
    private static final VectorSpecies<Float> F_HALF = ENABLED ? VectorSpecies.of(float.class, VectorShape.forBitSize(D.length() * 32)) : null;

    /**
     * out[oo + j] = (float) (acc[ao + j] * (double) xScale * wScale[wo + j]), j < n: int32 dot products of
     * int8 values back to floats as quant_matmul defines it, in double lanes, so each result is the
     * scalar expression's to the bit.
     */
    public static void dequant(int[] acc, int ao, float xScale, float[] wScale, int wo, int n, float[] out, int oo) {
        int j = 0;
        if (ENABLED) {
            int dl = D.length();
            DoubleVector xs = DoubleVector.broadcast(D, xScale);
            for (; j + dl <= n; j += dl) {
                DoubleVector a = (DoubleVector) IntVector.fromArray(I_HALF, acc, ao + j).convertShape(VectorOperators.I2D, D, 0);
                DoubleVector ws = (DoubleVector) FloatVector.fromArray(F_HALF, wScale, wo + j).convertShape(VectorOperators.F2D, D, 0);
                ((FloatVector) a.mul(xs).mul(ws).convertShape(VectorOperators.D2F, F_HALF, 0)).intoArray(out, oo + j);
            }
        }
        for (; j < n; j++) out[oo + j] = dequant(acc[ao + j], xScale, wScale[wo + j]);
    }

    /**
     * out[oo + j] = (float) sum_q w[q] * y[yo[q] + j] for j < n, q < m: each sum taken in double, from
     * zero, adding the rows in the order given (a double multiply, then a double add), so each result is
     * acc[j] += w[q] * y[yo[q] + j] row by row in an array of doubles, then a cast, to the bit. A vector
     * of sums stays in a register across the m rows instead of going through an array once a row.
     */
    public static void weightedRowsDouble(double[] w, float[] y, int[] yo, int m, float[] out, int oo, int n) {
        int j = 0;
        if (ENABLED) {
            int dl = D.length();
            for (; j + dl <= n; j += dl) {
                DoubleVector acc = DoubleVector.zero(D);
                for (int q = 0; q < m; q++) {
                    DoubleVector v = (DoubleVector) FloatVector.fromArray(F_HALF, y, yo[q] + j).convertShape(VectorOperators.F2D, D, 0);
                    acc = acc.add(v.mul(w[q]));
                }
                ((FloatVector) acc.convertShape(VectorOperators.D2F, F_HALF, 0)).intoArray(out, oo + j);
            }
        }
        for (; j < n; j++) {
            double acc = 0;
            for (int q = 0; q < m; q++) acc += w[q] * y[yo[q] + j];
            out[oo + j] = (float) acc;
        }
    }

    /** An int32 dot of int8 values back to a float: acc * x_scale * w_scale, in double, as quant_matmul defines it. */
    static float dequant(int acc, float xScale, float wScale) {
        return (float) (acc * (double) xScale * wScale);
    }

    /** The bf16 bits of v rounded as the op semantics round (nearest, ties to even): how a bf16 cache stores a value. */
    public static short toBf16(float v) {
        return (short) (Float.floatToRawIntBits(dev.moec.ir.interp.Reference.roundTo(dev.moec.ir.DType.BF16, v)) >>> 16);
    }

    /**
     * src[so, so + n) into dst from element de as bf16, each rounded as {@link #toBf16} rounds it (nearest,
     * ties to even; a NaN keeps its top half): a bf16 cache row written.
     */
    public static void storeBf16(float[] src, int so, MemorySegment dst, long de, int n) {
        int j = 0;
        if (ENABLED) {
            for (; j + L <= n; j += L) {
                FloatVector v = FloatVector.fromArray(F, src, so + j);
                IntVector bits = v.reinterpretAsInts(), top = bits.lanewise(VectorOperators.LSHR, 16);
                IntVector rounded = bits.add(0x7FFF).add(top.and(1)).lanewise(VectorOperators.LSHR, 16)
                        .blend(top, v.test(VectorOperators.IS_NAN).cast(I));
                ((ShortVector) rounded.convertShape(VectorOperators.I2S, S, 0)).reinterpretAsBytes().intoMemorySegment(dst, (de + j) * 2, ByteOrder.LITTLE_ENDIAN);
            }
        }
        for (; j < n; j++) dst.setAtIndex(SHORT_LE, de + j, toBf16(src[so + j]));
    }

    /** int8 values held in ints, as floats (exact): the activation form of the float-accumulated int8 loops. */
    public static float[] exact(int[] x, int n) {
        float[] out = new float[n];
        exact(x, 0, out, 0, n);
        return out;
    }

    /** out[oo + j] = x[xo + j] as a float (exact for int8 values), j < n. */
    public static void exact(int[] x, int xo, float[] out, int oo, int n) { exact(x, xo, out, oo, n, 1f); }

    /** out[oo + j] = x[xo + j] as a float times {@code scale} (exact for int8 values and a power of two), j < n. */
    public static void exact(int[] x, int xo, float[] out, int oo, int n, float scale) {
        int j = 0;
        if (ENABLED) {
            for (; j + L <= n; j += L) ((FloatVector) IntVector.fromArray(I, x, xo + j).convertShape(VectorOperators.I2F, F, 0)).mul(scale).intoArray(out, oo + j);
        }
        for (; j < n; j++) out[oo + j] = x[xo + j] * scale;
    }

    /** bf16 elements [we, we + n) of w, widened into dst[0, n). */
    public static void widenBf16(MemorySegment w, long we, int n, float[] dst) {
        int j = 0;
        if (ENABLED) for (; j + L <= n; j += L) bf16(w, we * 2 + 2L * j).intoArray(dst, j);
        for (; j < n; j++) dst[j] = bf16At(w, we + j);
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

    /**
     * sum_j x[j] * int4(w element we + j), j < n, in int32: an int4 weight row read in place (two elements a
     * byte, the even element in the low nibble), against an int8 activation row split into its even and odd
     * elements ({@code xEven[xo + b]} = x[2b], {@code xOdd[xo + b]} = x[2b + 1]; see {@link #splitEvenOdd}).
     * {@code n} and {@code we} are even.
     */
    public static int dotI4(int[] xEven, int[] xOdd, int xo, MemorySegment w, long we, int n) {
        int half = n / 2, b = 0, s = 0;
        long base = we / 2;
        if (ENABLED) {
            IntVector acc = IntVector.zero(I);
            for (; b + L <= half; b += L) {
                IntVector v = (IntVector) ByteVector.fromMemorySegment(B, w, base + b, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2I, I, 0);
                IntVector lo = v.lanewise(VectorOperators.LSHL, 28).lanewise(VectorOperators.ASHR, 28);
                IntVector hi = v.lanewise(VectorOperators.LSHL, 24).lanewise(VectorOperators.ASHR, 28);
                acc = acc.add(lo.mul(IntVector.fromArray(I, xEven, xo + b))).add(hi.mul(IntVector.fromArray(I, xOdd, xo + b)));
            }
            s = acc.reduceLanes(VectorOperators.ADD);
        }
        for (; b < half; b++) {
            int v = w.get(ValueLayout.JAVA_BYTE, base + b);
            s += lowNibble(v) * xEven[xo + b] + highNibble(v) * xOdd[xo + b];
        }
        return s;
    }

    /** Rows of {@code cols} (even) ints from element xo on, split into even and odd elements: the activation form of {@link #dotI4}. */
    public static int[][] splitEvenOdd(int[] x, int xo, int rows, int cols) {
        int half = cols / 2;
        int[] even = new int[rows * half], odd = new int[rows * half];
        for (int r = 0; r < rows; r++) {
            for (int b = 0; b < half; b++) {
                even[r * half + b] = x[xo + r * cols + 2 * b];
                odd[r * half + b] = x[xo + r * cols + 2 * b + 1];
            }
        }
        return new int[][]{even, odd};
    }

    /** sum_j x[xo + j] * int8(w at byte we + j), in int32: an int8 weight row read in place. */
    public static int dotI8(int[] x, int xo, MemorySegment w, long we, int n) {
        int j = 0, s = 0;
        if (ENABLED) {
            // Four quarter-width byte loads, each widened straight to int lanes (one sign-extending load), into
            // four accumulators: a quarter faster than one full-width load widened in four parts.
            IntVector acc0 = IntVector.zero(I), acc1 = IntVector.zero(I), acc2 = IntVector.zero(I), acc3 = IntVector.zero(I);
            for (; j + 4 * L <= n; j += 4 * L) {
                acc0 = acc0.add(IntVector.fromArray(I, x, xo + j).mul(i8i(w, we + j)));
                acc1 = acc1.add(IntVector.fromArray(I, x, xo + j + L).mul(i8i(w, we + j + L)));
                acc2 = acc2.add(IntVector.fromArray(I, x, xo + j + 2 * L).mul(i8i(w, we + j + 2 * L)));
                acc3 = acc3.add(IntVector.fromArray(I, x, xo + j + 3 * L).mul(i8i(w, we + j + 3 * L)));
            }
            for (; j + L <= n; j += L) acc0 = acc0.add(IntVector.fromArray(I, x, xo + j).mul(i8i(w, we + j)));
            s = acc0.add(acc1).add(acc2.add(acc3)).reduceLanes(VectorOperators.ADD);
        }
        for (; j < n; j++) s += x[xo + j] * w.get(ValueLayout.JAVA_BYTE, we + j);
        return s;
    }

    // ---- exp: a Cody-Waite reduction and a degree-6 polynomial, in plain float arithmetic --------------
    //
    // exp(x) = 2^n * e^r with n = round(x / ln 2) and r = x - n ln 2 (|r| <= ln 2 / 2, ln 2 split in two so
    // r is exact to a float), e^r by its Taylor polynomial to degree 7 (truncation error below 1e-8; with
    // the roundings, within three float ulps), 2^n built in the exponent bits. Only adds, multiplies, fused multiply-adds and bit moves,
    // which round the same compiled or interpreted, so results are reproducible; the vector and the scalar
    // forms do the same operations, so a value does not depend on whether it fell in a vector or the tail.
    // x is clamped to [-87.3, 88.7] (the normal range of the result): below, exp is under 1.2e-38.

    private static final float EXP_LO = -87.3f, EXP_HI = 88.7f, LOG2E = 1.44269504f, LN2_HI = 0.693145751953125f,
            LN2_LO = 1.428606765330187e-06f, ROUND = 12582912f;                           // 1.5 * 2^23
    private static final float C2 = 1 / 2f, C3 = 1 / 6f, C4 = 1 / 24f, C5 = 1 / 120f, C6 = 1 / 720f, C7 = 1 / 5040f;

    /** e^x as the kernels compute it (see above): within three ulps of the true value. */
    public static float exp(float x) {
        x = Math.min(Math.max(x, EXP_LO), EXP_HI);
        float n = Math.fma(x, LOG2E, ROUND) - ROUND;
        float r = Math.fma(n, -LN2_LO, Math.fma(n, -LN2_HI, x));
        float p = Math.fma(Math.fma(Math.fma(Math.fma(Math.fma(Math.fma(C7, r, C6), r, C5), r, C4), r, C3), r, C2), r, 1f);
        p = Math.fma(p, r, 1f);
        return p * Float.intBitsToFloat(((int) n + 127) << 23);
    }

    private static FloatVector exp(FloatVector x) {
        x = x.max(EXP_LO).min(EXP_HI);
        FloatVector n = x.fma(LOG2E, ROUND).sub(ROUND);
        FloatVector r = n.fma(FloatVector.broadcast(F, -LN2_LO), n.fma(FloatVector.broadcast(F, -LN2_HI), x));
        FloatVector one = FloatVector.broadcast(F, 1f);
        FloatVector p = FloatVector.broadcast(F, C7).fma(r, FloatVector.broadcast(F, C6)).fma(r, FloatVector.broadcast(F, C5)).fma(r, FloatVector.broadcast(F, C4))
                .fma(r, FloatVector.broadcast(F, C3)).fma(r, FloatVector.broadcast(F, C2)).fma(r, one).fma(r, one);
        IntVector bits = ((IntVector) n.convertShape(VectorOperators.F2I, I, 0)).add(127).lanewise(VectorOperators.LSHL, 23);
        return p.mul(bits.reinterpretAsFloats());
    }

    /**
     * x[xo + j] *= scale for j < n, and the largest of the products (negative infinity for none): an
     * attention row's scores scaled and their max for the softmax. The same products as the scalar loop,
     * and a maximum does not depend on the order it is taken in.
     */
    public static float scaleMax(float[] x, int xo, int n, float scale) {
        int j = 0;
        float max = Float.NEGATIVE_INFINITY;
        if (ENABLED && n >= L) {
            FloatVector m = FloatVector.broadcast(F, Float.NEGATIVE_INFINITY);
            for (; j + L <= n; j += L) {
                FloatVector v = FloatVector.fromArray(F, x, xo + j).mul(scale);
                v.intoArray(x, xo + j);
                m = m.max(v);
            }
            max = m.reduceLanes(VectorOperators.MAX);
        }
        for (; j < n; j++) max = Math.max(max, x[xo + j] *= scale);
        return max;
    }

    /** out[oo + j] = x[xo + j] / d for j < n: each lane's quotient rounded as the scalar division rounds it. */
    public static void divide(float[] x, int xo, float d, float[] out, int oo, int n) {
        int j = 0;
        if (ENABLED) for (; j + L <= n; j += L) FloatVector.fromArray(F, x, xo + j).div(d).intoArray(out, oo + j);
        for (; j < n; j++) out[oo + j] = x[xo + j] / d;
    }

    /**
     * x[xo + j] = exp(x[xo + j] - max), j < n, in place; returns their sum (lanes, then the lanes' sums in
     * a fixed order). The tail of fewer than L values is one masked vector: a decode step's attention rows
     * are tens of positions long, and there the scalar tail took as long as the vectors. Every vector,
     * the tail's too, goes through one call of the vector exp: the JIT inlined it at the loop's call and
     * not at a second one for the tail, where each call then boxed its argument and its result (two
     * 16-float arrays a row, a fifth of a batch-8 step's garbage).
     */
    public static float expShifted(float[] x, int xo, int n, float max) {
        int j = 0;
        float s = 0;
        if (ENABLED) {
            FloatVector acc = FloatVector.zero(F);
            for (; j < n; j += L) {
                VectorMask<Float> m = F.indexInRange(j, n);               // all lanes but in the tail
                FloatVector e = exp(FloatVector.fromArray(F, x, xo + j, m).sub(max));
                e.intoArray(x, xo + j, m);
                acc = acc.add(e, m);
            }
            s = sum(acc);
        }
        for (; j < n; j++) s += x[xo + j] = exp(x[xo + j] - max);
        return s;
    }

    /**
     * The index (from 0) of the largest of x[xo], ..., x[xo + n - 1], the first of equal ones: what
     * {@code best = 0; for i: if (x[xo + i] > x[xo + best]) best = i} gives, NaN never greater and -0
     * equal to 0. Each lane keeps its largest value and the first index it was seen at, in one pass; of
     * the lanes holding the overall largest, the smallest index wins. A greedy step takes the argmax of
     * each row of 151,936 logits: the scalar loop took 85 µs a row.
     */
    public static int argmax(float[] x, int xo, int n) {
        if (n <= 0) throw new IllegalArgumentException("argmax of no values");
        if (Float.isNaN(x[xo])) return 0;                                  // nothing is greater than a NaN first value
        int j = 0, best = 0;
        float max = x[xo];
        if (ENABLED && n >= 2 * L) {
            FloatVector top = FloatVector.broadcast(F, Float.NEGATIVE_INFINITY);
            IntVector at = IntVector.zero(I), index = IntVector.zero(I).addIndex(1), step = IntVector.broadcast(I, L);
            for (; j + L <= n; j += L) {
                FloatVector v = FloatVector.fromArray(F, x, xo + j);
                VectorMask<Float> greater = v.compare(VectorOperators.GT, top);
                top = top.blend(v, greater);
                at = at.blend(index, greater.cast(I));
                index = index.add(step);
            }
            float[] tops = new float[L];
            int[] ats = new int[L];
            top.intoArray(tops, 0);
            at.intoArray(ats, 0);
            for (int l = 0; l < L; l++) {                                 // a lane that saw no value above -inf keeps index 0
                if (tops[l] > max || (tops[l] == max && ats[l] < best)) {
                    max = tops[l];
                    best = ats[l];
                }
            }
        }
        for (int i = Math.max(j, 1); i < n; i++) {
            if (x[xo + i] > max) {
                max = x[xo + i];
                best = i;
            }
        }
        return best;
    }

    /**
     * For each of {@code rows} rows, over {@code panels} panels of a bf16 dot tile's sums from sums[so]
     * ([panels][rows][32], {@link Bf16Tiles#dotSums}) with the norms of their lanes from laneNorms[no]
     * ([panels][32]): the largest a + n e[r] into upper[r * stride + at] and the largest a - n e[r] into
     * lower[r * stride + at], each term with one rounding (NaN where one is NaN). How a {@link GreedyHead}
     * task keeps the extremes of its sums while they are in cache.
     */
    static void dotBounds(float[] sums, int so, int rows, int panels, float[] laneNorms, int no, float[] e, float[] upper, float[] lower, int at, int stride) {
        int width = Bf16Tiles.WIDTH;
        for (int r = 0; r < rows; r++) {
            float up = Float.NEGATIVE_INFINITY, low = Float.NEGATIVE_INFINITY, er = e[r];
            int j = 0;
            if (ENABLED && width % L == 0) {
                FloatVector ev = FloatVector.broadcast(F, er), neg = ev.neg();
                FloatVector u = FloatVector.broadcast(F, Float.NEGATIVE_INFINITY), d = u;
                for (int p = 0; p < panels; p++) {
                    for (int l = 0; l < width; l += L) {
                        FloatVector a = FloatVector.fromArray(F, sums, so + (p * rows + r) * width + l), n = FloatVector.fromArray(F, laneNorms, no + p * width + l);
                        u = u.max(n.fma(ev, a));
                        d = d.max(n.fma(neg, a));
                    }
                }
                up = u.reduceLanes(VectorOperators.MAX);
                low = d.reduceLanes(VectorOperators.MAX);
                j = panels * width;
            }
            for (; j < panels * width; j++) {
                float a = sums[so + (j / width * rows + r) * width + j % width], n = laneNorms[no + j];
                up = Math.max(up, Math.fma(n, er, a));
                low = Math.max(low, Math.fma(n, -er, a));
            }
            upper[r * stride + at] = up;
            lower[r * stride + at] = low;
        }
    }

    /** out[oo + j] = a[ao + j] + b[bo + j], j < n. */
    public static void add(float[] a, int ao, float[] b, int bo, float[] out, int oo, int n) {
        int j = 0;
        if (ENABLED) {
            for (; j + L <= n; j += L) FloatVector.fromArray(F, a, ao + j).add(FloatVector.fromArray(F, b, bo + j)).intoArray(out, oo + j);
        }
        for (; j < n; j++) out[oo + j] = a[ao + j] + b[bo + j];
    }

    /**
     * A NeoX rotation of one head: with x1 = x[xo + i] and x2 = x[xo + half + i], out[oo + i] = x1 * c - x2 * s
     * and out[oo + half + i] = x2 * c + x1 * s, c = cos[co + i], s = sin[so + i], i < half (each product
     * rounded, then the sum: the scalar expressions' bits).
     */
    public static void rotateHalves(float[] x, int xo, int half, float[] cos, int co, float[] sin, int so, float[] out, int oo) {
        int i = 0;
        if (ENABLED) {
            for (; i + L <= half; i += L) {
                FloatVector x1 = FloatVector.fromArray(F, x, xo + i), x2 = FloatVector.fromArray(F, x, xo + half + i);
                FloatVector c = FloatVector.fromArray(F, cos, co + i), s = FloatVector.fromArray(F, sin, so + i);
                x1.mul(c).sub(x2.mul(s)).intoArray(out, oo + i);
                x2.mul(c).add(x1.mul(s)).intoArray(out, oo + half + i);
            }
        }
        for (; i < half; i++) {
            float x1 = x[xo + i], x2 = x[xo + half + i], c = cos[co + i], s = sin[so + i];
            out[oo + i] = x1 * c - x2 * s;
            out[oo + half + i] = x2 * c + x1 * s;
        }
    }

    /**
     * One row of rms_norm: out[oo + j] = x[xo + j] * inv * w[j], j < n, inv = 1 / sqrt(sum(x^2) / n + eps)
     * with the squares taken and summed in double (as the op defines it; the lanes' partial sums added
     * in lane order, so the bits do not depend on the JIT) and inv rounded to a float.
     */
    public static void rmsNormRow(float[] x, int xo, int n, float eps, float[] w, float[] out, int oo) {
        int j = 0;
        double ss = 0;
        if (ENABLED) {
            DoubleVector acc = DoubleVector.zero(D);
            for (int dl = D.length(); j + dl <= n; j += dl) {
                DoubleVector v = (DoubleVector) FloatVector.fromArray(F_HALF, x, xo + j).convertShape(VectorOperators.F2D, D, 0);
                acc = v.fma(v, acc);
            }
            for (int l = 0; l < D.length(); l++) ss += acc.lane(l);
        }
        for (; j < n; j++) ss += (double) x[xo + j] * x[xo + j];
        float inv = (float) (1.0 / Math.sqrt(ss / n + eps));
        j = 0;
        if (ENABLED) {
            for (; j + L <= n; j += L) FloatVector.fromArray(F, x, xo + j).mul(inv).mul(FloatVector.fromArray(F, w, j)).intoArray(out, oo + j);
        }
        for (; j < n; j++) out[oo + j] = x[xo + j] * inv * w[j];
    }

    /** out[oo + j] = silu(g[go + j]) * u[uo + j] = g / (1 + e^-g) * u, j < n: SwiGLU. */
    public static void swiglu(float[] g, int go, float[] u, int uo, float[] out, int oo, int n) {
        int j = 0;
        if (ENABLED) {
            for (; j + L <= n; j += L) {
                FloatVector gv = FloatVector.fromArray(F, g, go + j);
                gv.div(exp(gv.neg()).add(1f)).mul(FloatVector.fromArray(F, u, uo + j)).intoArray(out, oo + j);
            }
        }
        for (; j < n; j++) out[oo + j] = g[go + j] / (exp(-g[go + j]) + 1f) * u[uo + j];
    }

    /**
     * The sum of v's lanes along a fixed tree: lane i is added to lane i + L/2, then i + L/4, ..., and
     * lane 0 holds the total. {@code reduceLanes(ADD)} leaves the order of a float reduction open, and the
     * JIT-compiled and interpreted forms of it round differently, so a step's logits would depend on how
     * warm the JVM is; this tree is the same in both, so a run is reproducible bit for bit.
     */
    static float sum(FloatVector v) {
        if (L == 16) {                    // the usual widths with each rotation a constant the JIT folds: from an array, 1.7x slower
            v = v.add(v.rearrange(ROTATE_8));
        } else if (L != 8) {
            for (VectorShuffle<Float> rotation : HALVES) v = v.add(v.rearrange(rotation));
            return v.lane(0);
        }
        v = v.add(v.rearrange(ROTATE_4));
        v = v.add(v.rearrange(ROTATE_2));
        v = v.add(v.rearrange(ROTATE_1));
        return v.lane(0);
    }

    /**
     * L bf16 values from byte {@code byteOffset} of w, widened. They are loaded as bytes and seen as
     * shorts, which costs nothing: the JIT compiled a short vector's load from a heap segment over a
     * byte[] to the Vector API's Java fallback (a byte vector's to one instruction), and attention over a
     * bf16 cache held in a byte[] took 163 instead of 27 µs a launch (one thread, 112 positions). Caches
     * now live off the heap ({@link CpuGraph#allocateState}); this keeps any heap segment off that path.
     */
    private static FloatVector bf16(MemorySegment w, long byteOffset) {
        ShortVector v = ByteVector.fromMemorySegment(B2, w, byteOffset, ByteOrder.LITTLE_ENDIAN).reinterpretAsShorts();
        return ((IntVector) v.convertShape(VectorOperators.S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
    }
}
