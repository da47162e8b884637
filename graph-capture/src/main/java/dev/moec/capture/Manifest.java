package dev.moec.capture;

import java.util.List;
import java.util.Map;

/**
 * {@code manifest.json} of an artifact. {@code formatVersion} changes whenever a reader of the old
 * version would misread the new files; a reader refuses any other version. {@code kvBlockSize} is the
 * paged KV cache's block size (the BS of the graphs' cache types) that the executor binds.
 * Version 3: paged KV caches (block_table input, caches [NB, BS, ...]). Version 4: an alias buffer may
 * carry an {@code offset} (a decode graph's contiguous slice made a view), which version 3 readers ignored.
 */
public record Manifest(String format, int formatVersion, String compiler, ModelInfo model, String target, String pipeline, int kvBlockSize,
                       List<GraphEntry> graphs, WeightsEntry weights, List<String> tokenizerFiles, List<String> report, Map<String, String> sha256) {
    public static final String FORMAT = "moec-artifact";
    public static final int FORMAT_VERSION = 4;

    /**
     * A captured graph: {@code kind} is prefill (symbolic token count) or decode ({@code tokens} =
     * batchSize x tokens per sequence, more than one with speculative decoding). Decode graphs carry their
     * static memory plan's peak and the naive sum of their activation buffers (0 for prefill).
     */
    public record GraphEntry(String name, String kind, int batchSize, int tokens, String file, long plannedPeakBytes, long naiveBytes) {}

    public record WeightsEntry(String file, List<TensorEntry> tensors) {}

    /**
     * A weight in the packed file: {@code type} as printed ({@code bf16[8,128,256]}), byte range
     * [offset, offset+bytes), {@code layout} "nd" (row-major) or "nz" (Ascend FRACTAL_NZ, padded to tiles).
     */
    public record TensorEntry(String name, String type, long offset, long bytes, String layout) {}

    /** Lines of the compile report: the operator fallbacks the backend took. */
    public record Report(List<String> lines) {}
}
