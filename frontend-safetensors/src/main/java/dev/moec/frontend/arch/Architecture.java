package dev.moec.frontend.arch;

import dev.moec.ir.Graph;

import java.util.List;
import java.util.Optional;

/**
 * One model family: builds the step graph (see {@link dev.moec.ir.StepAbi}) of a model from its config,
 * and the multi-token-prediction graph when the checkpoint has an MTP layer. A new family is one
 * implementation plus one line in {@link Architectures}.
 */
public interface Architecture {
    /** The {@code model_type} values of config.json this builder reads. */
    List<String> modelTypes();

    Graph buildStep(ModelConfig config, WeightTypes weights);

    /**
     * The MTP layer as its own step graph: it takes the main model's last hidden state (input
     * {@code hidden}, before the final norm) with the next tokens and predicts one token further.
     */
    default Optional<Graph> buildMtp(ModelConfig config, WeightTypes weights) { return Optional.empty(); }
}
