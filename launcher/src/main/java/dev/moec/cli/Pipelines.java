package dev.moec.cli;

import dev.moec.passes.PassManager;

/** The pipeline a user's compile flags choose. */
final class Pipelines {
    private Pipelines() {}

    static String forCompile(String quantization, String kvCacheDtype) {
        return PassManager.defaultPipeline(quantization, kvCacheDtype);
    }
}
