package dev.moec.ir;

/**
 * The calling convention of a model step graph, shared by frontends (which build it) and executors
 * (which feed it). A step processes T tokens drawn from any mix of sequences: token t belongs to cache
 * slot {@code slots[t]} at position {@code positions[t]}; prefill is T tokens of one slot, decode is one
 * token for each of B slots. Logits are produced for the R rows listed in {@code logit_rows}.
 *
 * <pre>
 * inputs:  %tokens: i32[T]  %positions: i32[T]  %slots: i32[T]  %logit_rows: i32[R]
 *          state, per layer as the family needs it, e.g.
 *          %k_cache.{l}, %v_cache.{l}: f32[S,L,kv_heads,head_dim]   (GQA)
 *          %kv_cache.{l}: f32[S,L,1,kv_lora_rank+rope_dim]          (MLA latent cache)
 *          %index_cache.{l}: f32[S,L,1,index_head_dim]              (DeepSeek-V3.2 indexer keys)
 *          %conv_state.{l}: f32[S,kernel-1,channels], %ssm_state.{l}: f32[S,heads,dk,dv] (gated delta net)
 * outputs: %logits: f32[R,vocab], then %{state}.next for every state input (its new version)
 * </pre>
 * An input is state exactly when the graph returns {@code <name>.next}; only S (slots) and L (cache
 * length) remain symbolic in state types, bound by the runtime. A slot below zero marks a padding token:
 * it writes no state and its outputs are zero.
 */
public final class StepAbi {
    private StepAbi() {}

    public static final String TOKENS = "tokens";
    public static final String POSITIONS = "positions";
    public static final String SLOTS = "slots";
    public static final String LOGIT_ROWS = "logit_rows";
    public static final String LOGITS = "logits";

    /** Symbols: tokens in the step, logit rows, cache slots, cache length. */
    public static final String T = "T", R = "R", S = "S", L = "L";

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
