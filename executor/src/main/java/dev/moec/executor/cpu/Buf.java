package dev.moec.executor.cpu;

import dev.moec.ir.DType;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * A bound buffer of a CPU graph: its values are the {@link #elements()} elements of its array from
 * element {@code off} on. Float activations and state are in {@code f}, integer inputs and indices in
 * {@code i}; an activation's array is its graph's arena (float or integer region) and {@code off} its
 * constant offset there, fixed by the graph's memory plan when the graph is bound; state has an array of
 * its own (off 0). A weight is read in place from the artifact's mapping ({@code w}, stored
 * {@code dtype}); a packed cache state (bf16 or int8) is {@code w}, off-heap memory the kernels write
 * ({@code writable}). Aliases share the storage and offset of their source under their own shape.
 */
public final class Buf {
    private static final ValueLayout.OfShort SHORT_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat FLOAT_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    final String name;
    final DType dtype;
    final int[] shape;
    final float[] f;
    final int[] i;
    final int off;                           // element 0 is f[off] or i[off]
    final MemorySegment w;
    final boolean writable;                  // w is packed state, not a weight
    final MemorySegment panels;              // a matmul weight's copy in panels (see WeightPanels), or null
    final boolean vnni;                      // int8 panels in Vnni's layout
    private volatile float[] widened;        // a weight's values as floats, once asked for (weightFloats)

    Buf(String name, DType dtype, int[] shape, float[] f, int[] i, MemorySegment w) {
        this(name, dtype, shape, f, i, 0, w, false);
    }

    Buf(String name, DType dtype, int[] shape, float[] f, int[] i, int off, MemorySegment w, boolean writable) {
        this(name, dtype, shape, f, i, off, w, writable, null, false);
    }

    private Buf(String name, DType dtype, int[] shape, float[] f, int[] i, int off, MemorySegment w, boolean writable, MemorySegment panels, boolean vnni) {
        this.name = name;
        this.dtype = dtype;
        this.shape = shape;
        this.f = f;
        this.i = i;
        this.off = off;
        this.w = w;
        this.writable = writable;
        this.panels = panels;
        this.vnni = vnni;
        int n = elements();
        if (off < 0 || (f != null && off + n > f.length) || (i != null && off + n > i.length)) {
            throw new IllegalArgumentException("buffer " + name + " of " + n + " elements at offset " + off + " overruns its array");
        }
    }

    /** A packed cache state over {@code bytes}: bf16 (two bytes an element) or int8. */
    static Buf packed(String name, DType dtype, int[] shape, MemorySegment bytes) {
        return new Buf(name, dtype, shape, null, null, 0, bytes, true);
    }

    /** A float activation at element {@code off} of an arena's float region. */
    static Buf floatsAt(String name, DType dtype, int[] shape, float[] arena, int off) {
        return new Buf(name, dtype, shape, arena, null, off, null, false);
    }

    /** An integer activation at element {@code off} of an arena's integer region. */
    static Buf intsAt(String name, DType dtype, int[] shape, int[] arena, int off) {
        return new Buf(name, dtype, shape, null, arena, off, null, false);
    }

    /** This weight with its copy in panels ({@link WeightPanels}; int8 in {@link Vnni}'s layout where {@code vnni}) beside its row-major mapping. */
    Buf withPanels(MemorySegment panels, boolean vnni) {
        if (!isWeight()) throw new IllegalStateException(name + " is not a weight");
        int matrices = shape.length == 3 ? shape[0] : 1;
        boolean tiles = vnni && dtype == DType.I8;
        long want = WeightPanels.panelBytes(dtype, matrices, dim(-2), dim(-1), tiles);
        if (panels.byteSize() != want) throw new IllegalArgumentException("panels of " + this + " take " + want + " bytes, not " + panels.byteSize());
        return new Buf(name, dtype, shape, f, i, off, w, false, panels, tiles);
    }

    /** This buffer's storage from its element {@code at} on, under another name and shape: an alias (a view where {@code at > 0}). */
    Buf alias(String name, DType dtype, int[] shape, int at) {
        if (at != 0 && (writable || w != null)) throw new IllegalArgumentException("view " + name + " at element " + at + " of " + this + ": only activations have views");
        return new Buf(name, dtype, shape, f, i, off + at, writable ? w : null, writable);
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
                else System.arraycopy(f, off + (int) base, dst, 0, cols);
            }
            default -> throw new IllegalStateException("weight " + name + " has unsupported dtype " + dtype);
        }
    }

    /** Row {@code row} of an integer weight (i8, i4 two per byte, i32) or integer activation, into {@code dst}. */
    void intRow(long row, int cols, int[] dst) {
        long base = row * cols;
        if (w == null) {
            System.arraycopy(i, off + (int) base, dst, 0, cols);
            return;
        }
        switch (dtype) {
            case I8 -> Simd.widenI8(w, base, cols, dst);
            case I4 -> { for (int j = 0; j < cols; j++) dst[j] = Simd.int4At(w, base + j); }
            case I32 -> { for (int j = 0; j < cols; j++) dst[j] = w.getAtIndex(ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), base + j); }
            default -> throw new IllegalStateException("buffer " + name + " is " + dtype + ", not integer");
        }
    }

    /**
     * The values of a float buffer held in {@code f} as an array of exactly {@link #elements()}: f itself
     * when it holds just them (state, or an activation filling its array), else a copy of its range.
     * Callers read it only.
     */
    float[] floatValues() {
        int n = elements();
        return off == 0 && f.length == n ? f : Arrays.copyOfRange(f, off, off + n);
    }

    /** {@link #floatValues()} for a buffer held in {@code i}. */
    int[] intValues() {
        int n = elements();
        return off == 0 && i.length == n ? i : Arrays.copyOfRange(i, off, off + n);
    }

    /** All values of a small float vector (weight or activation), e.g. per-channel scales (see {@link #floatValues()}). */
    float[] floats() {
        if (w == null) return floatValues();
        float[] out = new float[elements()];
        weightRow(0, out.length, out);
        return out;
    }

    /**
     * A weight's values as floats (a weight's per-channel scales or biases), widened on the first call and
     * kept: weights never change. A launch then finds them with one field read, where a shared map's lookup
     * went to memory for its table and the key's header (half a microsecond a launch, cold after each
     * step's stream of weights).
     */
    float[] weightFloats() {
        if (!isWeight()) throw new IllegalStateException(name + " is not a weight");
        float[] v = widened;
        if (v == null) widened = v = floats();
        return v;
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

    /** Whether this weight's int8 panels are in {@link Vnni}'s layout, so its matmuls run on the VNNI tiles. */
    public boolean onVnniTiles() { return vnni; }
    /** The integer contents of an index or count buffer (not a weight): a copy of its elements. */
    public int[] ints() {
        if (i == null) throw new IllegalStateException(name + " is not an integer activation");
        return Arrays.copyOfRange(i, off, off + elements());
    }

    @Override public String toString() { return name + ":" + dtype + Arrays.toString(shape); }
}
