package dev.moec.frontend.arch;

import com.fasterxml.jackson.databind.JsonNode;
import dev.moec.frontend.CheckpointException;

import java.nio.file.Path;

/** Typed access to {@code config.json}: a missing or mistyped key is reported by name and file. */
public record ModelConfig(Path file, JsonNode json) {
    public String modelType() { return string("model_type"); }

    public int integer(String key) {
        JsonNode n = json.get(key);
        if (n == null || !n.canConvertToInt()) throw new CheckpointException(file, null, "config key '" + key + "' must be an integer, got " + n);
        return n.asInt();
    }

    public double number(String key) {
        JsonNode n = json.get(key);
        if (n == null || !n.isNumber()) throw new CheckpointException(file, null, "config key '" + key + "' must be a number, got " + n);
        return n.asDouble();
    }

    public boolean bool(String key, boolean fallback) {
        JsonNode n = json.get(key);
        if (n == null || n.isNull()) return fallback;
        if (!n.isBoolean()) throw new CheckpointException(file, null, "config key '" + key + "' must be true or false, got " + n);
        return n.asBoolean();
    }

    public int integer(String key, int fallback) {
        JsonNode n = json.get(key);
        return n == null || n.isNull() ? fallback : integer(key);
    }

    public String string(String key) {
        JsonNode n = json.get(key);
        if (n == null || !n.isTextual()) throw new CheckpointException(file, null, "config key '" + key + "' must be a string, got " + n);
        return n.asText();
    }

    public double number(String key, double fallback) {
        JsonNode n = json.get(key);
        return n == null || n.isNull() ? fallback : number(key);
    }

    public String string(String key, String fallback) {
        JsonNode n = json.get(key);
        return n == null || n.isNull() ? fallback : string(key);
    }

    /** A nested object, e.g. {@code text_config}, read with the same checks. */
    public ModelConfig section(String key) {
        JsonNode n = json.get(key);
        if (n == null || !n.isObject()) throw new CheckpointException(file, null, "config key '" + key + "' must be an object");
        return new ModelConfig(file, n);
    }

    public boolean has(String key) { return json.has(key) && !json.get(key).isNull(); }
}
