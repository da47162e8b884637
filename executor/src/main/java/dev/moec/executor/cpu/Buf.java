package dev.moec.executor.cpu;

import dev.moec.ir.DType;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * A bound buffer of a CPU graph, its values the first {@link #elements()} of its array (an activation's
 * array is its memory-plan slot, which may be longer): f32 activations and state in {@code f}, integer inputs and indices in
 * {@code i}, a weight read in place from the artifact's mapping ({@code w}, stored {@code dtype}), or a
 * packed cache state (bf16 or int8, {@code w} over a byte[] the kernels write: {@code writable}).
 * Aliases share the storage of their source under their own shape.
 */
public final class Buf {
    private static final ValueLayout.OfShort SHORT_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat FLOAT_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    final String name;
    final DType dtype;
    final int[] shape;
    float[] f;
    int[] i;
    final MemorySegment w;
    final boolean writable;                  // w is packed state, not a weight

    Buf(String name, DType dtype, int[] shape, float[] f, int[] i, MemorySegment w) {
        this(name, dtype, shape, f, i, w, false);
    }

    Buf(String name, DType dtype, int[] shape, float[] f, int[] i, MemorySegment w, boolean writable) {
        this.name = name;
        this.dtype = dtype;
        this.shape = shape;
        this.f = f;
        this.i = i;
        this.w = w;
        this.writable = writable;
    }

    /** A packed cache state over {@code bytes}: bf16 (two bytes an element) or int8. */
    static Buf packed(String name, DType dtype, int[] shape, byte[] bytes) {
        return new Buf(name, dtype, shape, null, null, MemorySegment.ofArray(bytes), true);
    }

    int dim(int k) { return shape[k < 0 ? shape.length + k : k]; }

    public int elements() {
        int n = 1;
        for (int d : shape) n *= d;
        return n;
    }

    /** Row {@code row} of a 2-D (or flattened) weight with {@code cols} columns, widened into {@code dst}. */
    void weightRow(long row, int cols, float[] dst) {
        long base = row * cols;
        switch (dtype) {
            case BF16 -> Simd.widenBf16(w, base, cols, dst);
            case F16 -> {
                for (int j = 0; j < cols; j++) dst[j] = Float.float16ToFloat(w.getAtIndex(SHORT_LE, base + j));
            }
            case F32 -> {
                if (w != null) for (int j = 0; j < cols; j++) dst[j] = w.getAtIndex(FLOAT_LE, base + j);
                else System.arraycopy(f, (int) base, dst, 0, cols);
            }
            default -> throw new IllegalStateException("weight " + name + " has unsupported dtype " + dtype);
        }
    }

    /** Row {@code row} of an integer weight (i8, i4 two per byte, i32) or integer activation, into {@code dst}. */
    void intRow(long row, int cols, int[] dst) {
        long base = row * cols;
        if (w == null) {
            System.arraycopy(i, (int) base, dst, 0, cols);
            return;
        }
        switch (dtype) {
            case I8 -> Simd.widenI8(w, base, cols, dst);
            case I4 -> {
                for (int j = 0; j < cols; j++) {
                    long e = base + j;
                    int b = w.get(ValueLayout.JAVA_BYTE, e / 2);
                    dst[j] = e % 2 == 0 ? (b << 28) >> 28 : (b << 24) >> 28;
                }
            }
            case I32 -> { for (int j = 0; j < cols; j++) dst[j] = w.getAtIndex(ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), base + j); }
            default -> throw new IllegalStateException("buffer " + name + " is " + dtype + ", not integer");
        }
    }

    /** All values of a small float vector (weight or activation), e.g. per-channel scales. */
    float[] floats() {
        if (w == null) return f;
        float[] out = new float[elements()];
        weightRow(0, out.length, out);
        return out;
    }

    public boolean isWeight() { return w != null && !writable; }

    /** Whether this is a bf16 or int8 cache state held packed (read and written through {@code w}). */
    public boolean isPacked() { return writable; }

    public String name() { return name; }
    public DType dtype() { return dtype; }
    /** The shape (a copy). */
    public int[] shape() { return shape.clone(); }
    /** Bytes a weight occupies as stored (0 for activations and state). */
    public long storedBytes() { return w == null ? 0 : w.byteSize(); }
    /** The integer contents of an index or count buffer (not a weight): a copy of its elements. */
    public int[] ints() {
        if (i == null) throw new IllegalStateException(name + " is not an integer activation");
        return Arrays.copyOf(i, elements());
    }

    @Override public String toString() { return name + ":" + dtype + Arrays.toString(shape); }
}
