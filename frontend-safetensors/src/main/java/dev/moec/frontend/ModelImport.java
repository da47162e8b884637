package dev.moec.frontend;

import dev.moec.frontend.arch.Architectures;
import dev.moec.frontend.arch.ModelConfig;
import dev.moec.frontend.arch.WeightTypes;
import dev.moec.ir.Graph;

import java.nio.file.Path;

/** Entry points of the frontend: a checkpoint or a bare config to a step graph. */
public final class ModelImport {
    private ModelImport() {}

    /** Builds the step graph of an opened checkpoint, checking every weight's presence and shape. */
    public static Graph stepGraph(Checkpoint ckpt) {
        ModelConfig config = new ModelConfig(ckpt.dir().resolve("config.json"), ckpt.config());
        return Architectures.forConfig(config).buildStep(config, WeightTypes.fromCheckpoint(ckpt));
    }

    /** Builds the step graph from config.json alone: weights are typed parameters with no data. */
    public static Graph stepGraphFromConfig(Path configFile) {
        ModelConfig config = new ModelConfig(configFile, Checkpoint.readConfig(configFile));
        return Architectures.forConfig(config).buildStep(config, WeightTypes.fromConfig(config));
    }
}
