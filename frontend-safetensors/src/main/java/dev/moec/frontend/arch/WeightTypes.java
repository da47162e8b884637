package dev.moec.frontend.arch;

import dev.moec.frontend.Checkpoint;
import dev.moec.frontend.CheckpointException;
import dev.moec.ir.DType;
import dev.moec.ir.Shape;
import dev.moec.ir.TensorType;

/**
 * Decides the type of each weight a builder declares. From a checkpoint, the tensor must exist with the
 * shape the config implies (its dtype is taken from the file); from a config alone, the config's
 * {@code torch_dtype} is used.
 */
@FunctionalInterface
public interface WeightTypes {
    /** The type of tensor {@code name}, whose shape the architecture expects to be {@code expected}. */
    TensorType resolve(String name, Shape expected);

    /** How the checkpoint quantizes a tensor (msModelSlim types: W8A8, W8A8_DYNAMIC, W4A8_DYNAMIC), or FLOAT. */
    default String quantization(String name) { return "FLOAT"; }

    static WeightTypes fromConfig(ModelConfig config) {
        DType d = switch (config.has("torch_dtype") ? config.string("torch_dtype") : "bfloat16") {
            case "float32" -> DType.F32;
            case "float16" -> DType.F16;
            default -> DType.BF16;
        };
        return (name, expected) -> new TensorType(d, expected);
    }

    static WeightTypes fromCheckpoint(Checkpoint ckpt) {
        return new WeightTypes() {
            @Override public TensorType resolve(String name, Shape expected) {
                TensorType actual = ckpt.type(name);
                if (!actual.shape().equals(expected)) {
                    throw new CheckpointException(ckpt.file(name).path(), name, "has shape " + actual.shape() + " but config.json implies " + expected);
                }
                return actual;
            }

            @Override public String quantization(String name) { return ckpt.quantType(name); }
        };
    }
}
