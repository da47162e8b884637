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

    /** The MTP layer's graph of a checkpoint, if the family and checkpoint have one. */
    public static java.util.Optional<Graph> mtpGraph(Checkpoint ckpt) {
        ModelConfig config = new ModelConfig(ckpt.dir().resolve("config.json"), ckpt.config());
        return Architectures.forConfig(config).buildMtp(config, WeightTypes.fromCheckpoint(ckpt));
    }

    public static java.util.Optional<Graph> mtpGraphFromConfig(Path configFile) {
        ModelConfig config = new ModelConfig(configFile, Checkpoint.readConfig(configFile));
        return Architectures.forConfig(config).buildMtp(config, WeightTypes.fromConfig(config));
    }

    private static ModelConfig limitLayers(ModelConfig c, int maxLayers) {
        if (maxLayers < 1) throw new IllegalArgumentException("--layers must be at least 1");
        if (maxLayers == Integer.MAX_VALUE) return c;
        com.fasterxml.jackson.databind.node.ObjectNode json = c.json().deepCopy();
        com.fasterxml.jackson.databind.node.ObjectNode text = json.has("text_config") ? (com.fasterxml.jackson.databind.node.ObjectNode) json.get("text_config") : json;
        if (maxLayers < text.path("num_hidden_layers").asInt(Integer.MAX_VALUE)) text.put("num_hidden_layers", maxLayers);
        return new ModelConfig(c.file(), json);
    }

    /** The language model's part of a config: {@code text_config} for multimodal wrappers (Qwen3.5), else the whole. */
    public static com.fasterxml.jackson.databind.JsonNode textConfig(com.fasterxml.jackson.databind.JsonNode config) {
        return config.has("text_config") ? config.get("text_config") : config;
    }
}
