package dev.moec.ir.interp;

import dev.moec.ir.DType;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/** Reads little-endian stored tensors (a safetensors slice, an artifact's packed weights) as f32. */
public final class StoredValues {
    private StoredValues() {}

    private static final ValueLayout.OfShort SHORT_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat FLOAT_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** True for the dtypes {@link #widen} reads. */
    public static boolean widens(DType d) { return d == DType.F32 || d == DType.BF16 || d == DType.F16; }

    /** The first {@code n} elements of {@code s}, stored as {@code dtype} (f32, bf16 or f16), widened to f32. */
    public static float[] widen(MemorySegment s, DType dtype, int n) {
        float[] out = new float[n];
        switch (dtype) {
            case F32 -> { for (int i = 0; i < n; i++) out[i] = s.getAtIndex(FLOAT_LE, i); }
            case BF16 -> { for (int i = 0; i < n; i++) out[i] = Float.intBitsToFloat(s.getAtIndex(SHORT_LE, i) << 16); }
            case F16 -> { for (int i = 0; i < n; i++) out[i] = Float.float16ToFloat(s.getAtIndex(SHORT_LE, i)); }
            default -> throw new IllegalArgumentException("dtype " + dtype + " cannot be widened to f32 (f32, bf16, f16 can)");
        }
        return out;
    }
}
