package dev.moec.frontend.arch;

import dev.moec.frontend.CheckpointException;

import java.util.List;

/** The registry of model families, by {@code model_type}. */
public final class Architectures {
    private Architectures() {}

    private static final List<Architecture> ALL = List.of(
            new Qwen3(),
            new DeepSeekV3(),
            new MiniMaxM2(),
            new Qwen3Next());

    public static List<Architecture> all() { return ALL; }

    public static List<String> modelTypes() { return ALL.stream().flatMap(a -> a.modelTypes().stream()).toList(); }

    public static Architecture forConfig(ModelConfig config) {
        String type = config.modelType();
        return ALL.stream().filter(a -> a.modelTypes().contains(type)).findFirst().orElseThrow(() -> new CheckpointException(config.file(), null,
                "model_type '" + type + "' is not supported (supported: " + String.join(", ", modelTypes()) + ")"));
    }
}
