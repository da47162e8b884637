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
    public static Graph stepGraph(Checkpoint ckpt) { return stepGraph(ckpt, Integer.MAX_VALUE); }

    /** The same, with only the first {@code maxLayers} decoder layers (for reading a big model's IR). */
    public static Graph stepGraph(Checkpoint ckpt, int maxLayers) {
        ModelConfig config = limitLayers(new ModelConfig(ckpt.dir().resolve("config.json"), ckpt.config()), maxLayers);
        return Architectures.forConfig(config).buildStep(config, WeightTypes.fromCheckpoint(ckpt));
    }

    /** Builds the step graph from config.json alone: weights are typed parameters with no data. */
    public static Graph stepGraphFromConfig(Path configFile) { return stepGraphFromConfig(configFile, Integer.MAX_VALUE); }

    public static Graph stepGraphFromConfig(Path configFile, int maxLayers) {
        ModelConfig config = limitLayers(new ModelConfig(configFile, Checkpoint.readConfig(configFile)), maxLayers);
        return Architectures.forConfig(config).buildStep(config, WeightTypes.fromConfig(config));
    }

    private static ModelConfig limitLayers(ModelConfig c, int maxLayers) {
        if (maxLayers < 1) throw new IllegalArgumentException("--layers must be at least 1");
        if (maxLayers >= c.integer("num_hidden_layers")) return c;
        com.fasterxml.jackson.databind.node.ObjectNode json = c.json().deepCopy();
        json.put("num_hidden_layers", maxLayers);
        return new ModelConfig(c.file(), json);
    }
}
