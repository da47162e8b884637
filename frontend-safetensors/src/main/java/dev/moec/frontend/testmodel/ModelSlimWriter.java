package dev.moec.frontend.testmodel;

import dev.moec.frontend.safetensors.SafetensorsWriter;
import dev.moec.ir.DType;
import dev.moec.ir.TensorType;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;

/**
 * Writes one Linear weight in msModelSlim's layout (see docs/ascend/04_quantization_formats.md), quantized
 * per output channel, symmetric:
 * <ul>
 * <li>W8A8_DYNAMIC: weight i8 [n, k], weight_scale and weight_offset (zeros) [n, 1] in bf16;</li>
 * <li>W8A8 (static): weight i8 [n, k], input_scale and input_offset [1] in bf16, quant_bias i32 [n],
 *     deq_scale f32 [n] = input_scale * weight scale (the calibration is a fixed input range of +-8);</li>
 * <li>W4A8_DYNAMIC: weight i8 [n/2, k] holding two int4 per byte along the output dim (row 2r in the low
 *     nibble), weight_scale and weight_offset (zeros) [n, 1] in f32. The A8W4 kernel's scale_bias is left out:
 *     it is derived from these, and moec's import does not read it.</li>
 * </ul>
 */
final class ModelSlimWriter {
    private ModelSlimWriter() {}

    static final float STATIC_INPUT_RANGE = 8f;

    /** Writes the tensors; returns their names (they all carry the weight's quantization type). */
    static List<String> write(SafetensorsWriter w, String name, TensorType type, float[] values, String quant) {
        int n = (int) type.shape().dim(0).size(), k = (int) type.shape().dim(1).size();
        String base = name.substring(0, name.length() - ".weight".length());
        int qmax = quant.equals("W4A8_DYNAMIC") ? 7 : 127;
        float[] scale = new float[n];
        int[] q = new int[n * k];
        for (int r = 0; r < n; r++) {
            float max = 0;
            for (int j = 0; j < k; j++) max = Math.max(max, Math.abs(values[r * k + j]));
            scale[r] = max == 0 ? 1f : max / qmax;
            if (!quant.equals("W4A8_DYNAMIC")) scale[r] = TestModels.bf16Value(scale[r]);      // the stored scale is what dequantizes
            for (int j = 0; j < k; j++) q[r * k + j] = (int) Math.max(-qmax, Math.min(qmax, Math.rint(values[r * k + j] / scale[r])));
        }
        switch (quant) {
            case "W8A8_DYNAMIC" -> {
                w.add(name, TensorType.of(DType.I8, n, k), bytes(q));
                w.add(base + ".weight_scale", TensorType.of(DType.BF16, n, 1), TestModels.encode(scale, DType.BF16));
                w.add(base + ".weight_offset", TensorType.of(DType.BF16, n, 1), TestModels.encode(new float[n], DType.BF16));
                return List.of(name, base + ".weight_scale", base + ".weight_offset");
            }
            case "W8A8" -> {
                float inScale = TestModels.bf16Value(STATIC_INPUT_RANGE / 127f);
                float[] deq = new float[n];
                for (int r = 0; r < n; r++) deq[r] = inScale * scale[r];
                w.add(name, TensorType.of(DType.I8, n, k), bytes(q));
                w.add(base + ".input_scale", TensorType.of(DType.BF16, 1), TestModels.encode(new float[]{inScale}, DType.BF16));
                w.add(base + ".input_offset", TensorType.of(DType.BF16, 1), TestModels.encode(new float[]{0f}, DType.BF16));
                ByteBuffer bias = ByteBuffer.allocate(4 * n).order(ByteOrder.LITTLE_ENDIAN);   // offset 0: no zero-point correction
                w.add(base + ".quant_bias", TensorType.of(DType.I32, n), bias.array());
                w.add(base + ".deq_scale", TensorType.of(DType.F32, n), TestModels.encode(deq, DType.F32));
                return List.of(name, base + ".input_scale", base + ".input_offset", base + ".quant_bias", base + ".deq_scale");
            }
            case "W4A8_DYNAMIC" -> {
                byte[] packed = new byte[n / 2 * k];
                for (int r = 0; r < n / 2; r++) {
                    for (int j = 0; j < k; j++) packed[r * k + j] = (byte) ((q[2 * r * k + j] & 0xF) | (q[(2 * r + 1) * k + j] << 4));
                }
                w.add(name, TensorType.of(DType.I8, n / 2, k), packed);
                w.add(base + ".weight_scale", TensorType.of(DType.F32, n, 1), TestModels.encode(scale, DType.F32));
                w.add(base + ".weight_offset", TensorType.of(DType.F32, n, 1), TestModels.encode(new float[n], DType.F32));
                return List.of(name, base + ".weight_scale", base + ".weight_offset");
            }
            default -> throw new IllegalArgumentException("no msModelSlim writer for " + quant);
        }
    }

    private static byte[] bytes(int[] q) {
        byte[] b = new byte[q.length];
        for (int i = 0; i < q.length; i++) b[i] = (byte) q[i];
        return b;
    }
}
