package dev.moec.ir.interp;

import dev.moec.ir.DType;

import java.util.Arrays;

/**
 * A dense tensor of the reference interpreter, row-major. Floating dtypes keep their values widened to
 * f32 in {@code f} (a bf16 weight holds exactly its bf16 values); integer dtypes (i64 within int range,
 * i32, i8, i4, bool) keep them in {@code i}. Plain and slow on purpose: it is the semantics the compiled
 * path is measured against.
 */
public final class RefTensor {
    private final DType dtype;
    private final int[] shape;
    private final float[] f;
    private final int[] i;

    private RefTensor(DType dtype, int[] shape, float[] f, int[] i) {
        this.dtype = dtype;
        this.shape = shape.clone();
        this.f = f;
        this.i = i;
        if ((f != null) != dtype.isFloating()) throw new IllegalArgumentException(dtype + " data must be " + (dtype.isFloating() ? "float" : "int"));
        long n = volume(shape);
        long have = f != null ? f.length : i.length;
        if (n != have) throw new IllegalArgumentException("shape " + Arrays.toString(shape) + " needs " + n + " elements, got " + have);
    }

    public static RefTensor f32(int[] shape, float[] data) { return new RefTensor(DType.F32, shape, data, null); }
    public static RefTensor i32(int[] shape, int[] data) { return new RefTensor(DType.I32, shape, null, data); }
    public static RefTensor of(DType dtype, int[] shape, float[] data) { return new RefTensor(dtype, shape, data, null); }
    public static RefTensor ofInts(DType dtype, int[] shape, int[] data) { return new RefTensor(dtype, shape, null, data); }
    public static RefTensor zerosF32(int... shape) { return f32(shape, new float[(int) volume(shape)]); }

    public static long volume(int[] shape) {
        long n = 1;
        for (int d : shape) n *= d;
        return n;
    }

    public DType dtype() { return dtype; }
    public int[] shape() { return shape.clone(); }
    public int dim(int k) { return shape[k < 0 ? shape.length + k : k]; }
    public int rank() { return shape.length; }
    public int size() { return f != null ? f.length : i.length; }
    public boolean isInt() { return i != null; }

    /** The float data (not a copy). */
    public float[] f() {
        if (f == null) throw new IllegalStateException("tensor is " + dtype + ", not floating point");
        return f;
    }

    /** The integer data (not a copy). */
    public int[] i() {
        if (i == null) throw new IllegalStateException("tensor is " + dtype + ", not integer");
        return i;
    }

    public RefTensor reshaped(int[] newShape) {
        return f != null ? of(dtype, newShape, f) : ofInts(dtype, newShape, i);
    }

    @Override public String toString() { return dtype + Arrays.toString(shape); }
}
