package dev.moec.cli;

import dev.moec.passes.PassManager;

/** The pipeline a user's compile flags choose. */
final class Pipelines {
    private Pipelines() {}

    static String forCompile(String quantization, String kvCacheDtype) {
        return switch (kvCacheDtype) {
            case "auto" -> PassManager.defaultPipeline(quantization);
            case "int8" -> throw new IllegalArgumentException("--kv-cache-dtype int8 needs the kv-int8 (C8) pass, which this moec does not have yet; use auto");
            default -> throw new IllegalArgumentException("--kv-cache-dtype must be auto or int8, not " + kvCacheDtype);
        };
    }
}
