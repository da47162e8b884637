package dev.moec.ir;

/**
 * A weight: a graph value whose data lives in a {@link dev.moec.ir.interp.TensorStore} under {@code tensor}.
 * A name with a {@code *} stacks the tensors {@code *=0,1,...} along a new leading dimension, so
 * {@code model.layers.0.mlp.experts.*.up_proj.weight} is all experts' up projections as {@code [E, I, H]}.
 */
public record Param(Value value, String tensor) {
    public boolean stacked() { return tensor.contains("*"); }

    /** The store name of one member of a stacked parameter. */
    public String member(int index) { return tensor.replace("*", Integer.toString(index)); }
}
