package dev.moec.frontend.arch;

import dev.moec.frontend.CheckpointException;

import java.util.List;

/** The registry of model families, by {@code model_type}. */
public final class Architectures {
    private Architectures() {}

    private static final List<Architecture> ALL = List.of(
            new Qwen3Moe());

    public static List<Architecture> all() { return ALL; }

    public static Architecture forConfig(ModelConfig config) {
        String type = config.modelType();
        return ALL.stream().filter(a -> a.modelType().equals(type)).findFirst().orElseThrow(() -> new CheckpointException(config.file(), null,
                "model_type '" + type + "' is not supported (supported: " + String.join(", ", ALL.stream().map(Architecture::modelType).toList()) + ")"));
    }
}
