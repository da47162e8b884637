package dev.moec.ir;

/**
 * The calling convention of a model step graph, shared by frontends (which build it) and executors
 * (which feed it). A step processes T tokens drawn from any mix of sequences: token t belongs to cache
 * slot {@code slots[t]} at position {@code positions[t]}; prefill is T tokens of one slot, decode is one
 * token for each of B slots. Logits are produced for the R rows listed in {@code logit_rows}.
 *
 * <pre>
 * inputs:  %tokens: i32[T]  %positions: i32[T]  %slots: i32[T]  %logit_rows: i32[R]
 *          %k_cache.{l}: f32[S,L,kv_heads,head_dim]  %v_cache.{l}: same        (state, one pair per layer)
 * outputs: %logits: f32[R,vocab]  %k_cache.{l}.next  %v_cache.{l}.next       (new state versions)
 * </pre>
 * A slot below zero marks a padding token: it writes no cache entry and its attention output is zero.
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

    public static String kCache(int layer) { return "k_cache." + layer; }
    public static String vCache(int layer) { return "v_cache." + layer; }
    public static String next(String state) { return state + ".next"; }
    public static boolean isState(String inputName) { return inputName.startsWith("k_cache.") || inputName.startsWith("v_cache."); }
}
