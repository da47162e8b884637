package dev.moec.ir;

/**
 * The calling convention of a model step graph, shared by frontends (which build it) and executors
 * (which feed it). A step processes T tokens drawn from any mix of sequences: token t belongs to
 * sequence slot {@code slots[t]} at position {@code positions[t]}; prefill is T tokens of one slot,
 * decode is one token for each of B slots. Logits are produced for the R rows listed in
 * {@code logit_rows}.
 *
 * <p>The per-token caches are paged: a cache is NB blocks of BS positions, and row {@code s} of
 * {@code block_table} lists the blocks of slot s in order, so position p of slot s lives at
 * {@code [block_table[s, p / BS], p % BS]} (vLLM's and FIA's block table; entries of blocks not yet
 * assigned are -1). The runtime owns the table: it hands out blocks as sequences grow and takes them
 * back when a sequence ends. Per-sequence recurrent state (convolution and delta-rule states) is
 * indexed by slot directly.
 *
 * <pre>
 * inputs:  %tokens: i32[T]  %positions: i32[T]  %slots: i32[T]  %logit_rows: i32[R]
 *          %block_table: i32[S,MB]                                   (when the model has a per-token cache)
 *          state, per layer as the family needs it, e.g.
 *          %k_cache.{l}, %v_cache.{l}: f32[NB,BS,kv_heads,head_dim]  (GQA)
 *          %kv_cache.{l}: f32[NB,BS,1,kv_lora_rank+rope_dim]         (MLA latent cache)
 *          %index_cache.{l}: f32[NB,BS,1,index_head_dim]             (DeepSeek-V3.2 indexer keys)
 *          %conv_state.{l}: f32[S,kernel-1,channels], %ssm_state.{l}: f32[S,heads,dk,dv] (gated delta net)
 * outputs: %logits: f32[R,vocab], then %{state}.next for every state input (its new version)
 * </pre>
 * An input is state exactly when the graph returns {@code <name>.next}. The cache symbols S (slots), NB
 * (cache blocks), BS (block size) and MB (blocks per sequence) stay symbolic in the graph and are bound
 * by the runtime (BS from the artifact's {@code kv_block_size}). A slot below zero marks a padding
 * token: it writes no state and its outputs are zero.
 */
public final class StepAbi {
    private StepAbi() {}

    public static final String TOKENS = "tokens";
    public static final String POSITIONS = "positions";
    public static final String SLOTS = "slots";
    public static final String LOGIT_ROWS = "logit_rows";
    public static final String BLOCK_TABLE = "block_table";
    public static final String LOGITS = "logits";

    /** Symbols: tokens in the step, logit rows, sequence slots. */
    public static final String T = "T", R = "R", S = "S";

    /** Symbols of the paged cache: cache blocks, positions per block, blocks per sequence (block table width). */
    public static final String NB = "NB", BS = "BS", MB = "MB";

    /** The KV block size an artifact gets unless {@code --kv-block-size} says otherwise (FIA accepts 128..512 in steps of 128). */
    public static final int DEFAULT_KV_BLOCK_SIZE = 128;

    /**
     * The bindings of the state symbols for {@code slots} sequences of up to {@code maxSeqLen} positions in
     * blocks of {@code blockSize}, with {@code blocks} cache blocks in all.
     */
    public static java.util.Map<String, Long> stateBindings(int slots, int maxSeqLen, int blockSize, int blocks) {
        return java.util.Map.of(S, (long) slots, NB, (long) blocks, BS, (long) blockSize, MB, (long) blocksPerSequence(maxSeqLen, blockSize));
    }

    /** Blocks a sequence of {@code maxSeqLen} positions needs: the block table's width. */
    public static int blocksPerSequence(int maxSeqLen, int blockSize) {
        if (blockSize < 1) throw new IllegalArgumentException("KV block size must be at least 1, got " + blockSize);
        return Math.ceilDiv(maxSeqLen, blockSize);
    }

    /** The hidden state an MTP graph takes from the main model. */
    public static final String HIDDEN = "hidden";

    public static String kCache(int layer) { return "k_cache." + layer; }
    public static String vCache(int layer) { return "v_cache." + layer; }
    public static String next(String state) { return state + ".next"; }

    /** The state inputs of a step graph: those whose {@code .next} version the graph returns. */
    public static java.util.List<Value> stateInputs(Graph g) {
        java.util.Set<String> outs = new java.util.HashSet<>();
        for (Value v : g.outputs()) outs.add(v.name());
        return g.inputs().stream().filter(v -> outs.contains(next(v.name()))).toList();
    }
}
