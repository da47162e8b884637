package dev.moec.frontend.arch;

import dev.moec.ir.Graph;

/**
 * One model family: builds the step graph (see {@link dev.moec.ir.StepAbi}) of a model from its config.
 * A new family is one implementation plus one line in {@link Architectures}.
 */
public interface Architecture {
    /** The {@code model_type} of config.json this builder reads. */
    String modelType();

    Graph buildStep(ModelConfig config, WeightTypes weights);
}
