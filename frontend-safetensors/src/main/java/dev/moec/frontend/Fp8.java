package dev.moec.frontend;

import java.util.HashMap;
import java.util.Map;

/**
 * OCP float8 e4m3 ("fn": no infinities, one NaN pattern per sign): 1 sign bit, 4 exponent bits with bias 7,
 * 3 mantissa bits; subnormals below 2^-6; largest finite value 448. The format of block-FP8 checkpoints
 * (DeepSeek-V3, MiniMax-M2), whose weights moec dequantizes at import.
 */
public final class Fp8 {
    private Fp8() {}

    private static final float[] DECODE = new float[256];
    private static final Map<Float, Byte> ENCODE = new HashMap<>();

    static {
        for (int b = 0; b < 256; b++) {
            int sign = b >> 7, exp = (b >> 3) & 0xF, man = b & 7;
            float v;
            if (exp == 15 && man == 7) v = Float.NaN;
            else if (exp == 0) v = (float) Math.scalb(man / 8.0, -6);
            else v = (float) Math.scalb(1 + man / 8.0, exp - 7);
            DECODE[b] = sign == 1 ? -v : v;
            if (!Float.isNaN(v)) ENCODE.putIfAbsent(DECODE[b], (byte) b);
        }
    }

    public static float decode(byte b) { return DECODE[b & 0xFF]; }

    /** The byte of a value that e4m3 represents exactly (round it first, e.g. with the reference's cast). */
    public static byte encode(float v) {
        Byte b = ENCODE.get(v);
        if (b == null) throw new IllegalArgumentException(v + " is not an e4m3 value");
        return b;
    }
}
