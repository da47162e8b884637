package dev.moec.frontend.arch;

import dev.moec.ir.GraphBuilder;
import dev.moec.ir.Shape;
import dev.moec.ir.TensorType;
import dev.moec.ir.Value;

/**
 * Declares weight parameters for a builder, typed by {@link WeightTypes}. A name with {@code *} is a
 * stack of per-expert tensors: each member is resolved against the checkpoint on its own.
 */
final class Weights {
    private final GraphBuilder g;
    private final WeightTypes types;

    Weights(GraphBuilder g, WeightTypes types) {
        this.g = g;
        this.types = types;
    }

    Value get(String valueName, String tensor, long... shape) {
        Shape full = Shape.ofSizes(shape);
        TensorType type;
        if (tensor.contains("*")) {
            Shape member = Shape.ofSizes(java.util.Arrays.copyOfRange(shape, 1, shape.length));
            TensorType first = types.resolve(tensor.replace("*", "0"), member);
            for (int e = 1; e < shape[0]; e++) {
                TensorType t = types.resolve(tensor.replace("*", Integer.toString(e)), member);
                if (t.dtype() != first.dtype()) {
                    throw new IllegalArgumentException(tensor.replace("*", Integer.toString(e)) + " is " + t.dtype() + " but expert 0 is " + first.dtype());
                }
            }
            type = new TensorType(first.dtype(), full);
        } else {
            type = types.resolve(tensor, full);
        }
        return g.param(valueName, tensor, type);
    }
}
