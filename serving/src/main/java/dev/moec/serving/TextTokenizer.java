package dev.moec.serving;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A Hugging Face {@code tokenizer.json}, run by DJL's binding of the Rust tokenizers library (its native
 * library ships inside the jar). No special tokens are added, nothing is truncated or padded: a prompt
 * encodes exactly as the reference {@code tokenizer(text)["input_ids"]} does for these models.
 */
public final class TextTokenizer implements AutoCloseable {
    /**
     * DJL reports each native-library lookup at INFO, and warns that it found no CUDA driver, which a CPU
     * tokenizer never needs. Keep its other warnings (the loggers are held, so the levels stick).
     */
    private static final java.util.logging.Logger DJL_LOG = java.util.logging.Logger.getLogger("ai.djl");
    private static final java.util.logging.Logger DJL_CUDA_LOG = java.util.logging.Logger.getLogger("ai.djl.util.cuda");
    static {
        DJL_LOG.setLevel(java.util.logging.Level.WARNING);
        DJL_CUDA_LOG.setLevel(java.util.logging.Level.SEVERE);
    }

    private final HuggingFaceTokenizer tokenizer;

    private TextTokenizer(HuggingFaceTokenizer tokenizer) {
        this.tokenizer = tokenizer;
    }

    /** Loads {@code tokenizer.json} from {@code dir}. */
    public static TextTokenizer load(Path dir) {
        Path file = dir.resolve("tokenizer.json");
        if (!Files.isRegularFile(file)) throw new IllegalArgumentException(file + ": missing, so text prompts cannot be tokenized (use token ids)");
        try {
            return new TextTokenizer(HuggingFaceTokenizer.builder().optTokenizerPath(file).optAddSpecialTokens(false)
                    .optTruncation(false).optPadding(false).build());
        } catch (IOException | RuntimeException e) {
            throw new IllegalArgumentException(file + ": cannot load the tokenizer: " + e.getMessage(), e);
        }
    }

    public int[] encode(String text) {
        long[] ids = tokenizer.encode(text, false, false).getIds();
        int[] out = new int[ids.length];
        for (int i = 0; i < ids.length; i++) out[i] = Math.toIntExact(ids[i]);
        return out;
    }

    public String decode(int[] ids) {
        long[] l = new long[ids.length];
        for (int i = 0; i < ids.length; i++) l[i] = ids[i];
        return tokenizer.decode(l, true);
    }

    @Override public void close() { tokenizer.close(); }
}
