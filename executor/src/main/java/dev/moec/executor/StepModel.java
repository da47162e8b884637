package dev.moec.executor;

/**
 * A model that runs steps over a KV cache of {@link #maxSlots()} sequences of up to {@link #maxSeqLen()}
 * positions (see {@link dev.moec.ir.StepAbi} for what a step is). Implemented by the compiled CPU
 * executor and by the reference interpreter, so every caller can run either. The cache is paged: a step
 * takes the blocks it writes from {@link #kvBlocks()}, and a caller whose sequence has ended gives its
 * slot's blocks back with {@code kvBlocks().release(slot)}.
 */
public interface StepModel extends AutoCloseable {
    int vocabSize();
    int maxSlots();
    int maxSeqLen();

    /** The paged KV cache's blocks: the block table the steps read and the pool of free blocks. */
    KvBlocks kvBlocks();

    /**
     * Runs one step. Token t is {@code tokens[t]} at {@code positions[t]} of cache slot {@code slots[t]};
     * the result has one row of logits for each entry of {@code logitRows} (indices into the tokens).
     */
    float[][] step(int[] tokens, int[] positions, int[] slots, int[] logitRows);

    /**
     * Runs one step as {@link #step} does and returns, for each entry of {@code logitRows}, the argmax of
     * its logits ({@link Sampler#argmax}): greedy decoding, where an implementation need not hand out the
     * logits themselves.
     */
    default int[] greedy(int[] tokens, int[] positions, int[] slots, int[] logitRows) {
        float[][] logits = step(tokens, positions, slots, logitRows);
        int[] ids = new int[logits.length];
        for (int r = 0; r < ids.length; r++) ids[r] = Sampler.argmax(logits[r]);
        return ids;
    }

    /** The name of the graph the last step ran on (e.g. {@code decode_bs4}), for reports and tests. */
    default String lastGraph() { return "reference"; }

    @Override default void close() {}
}
