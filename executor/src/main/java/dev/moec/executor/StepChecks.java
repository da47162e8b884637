package dev.moec.executor;

/** Argument checks shared by every {@link StepModel}: a bad step fails before any kernel runs. */
final class StepChecks {
    private StepChecks() {}

    static void check(int[] tokens, int[] positions, int[] slots, int[] logitRows, int maxSlots, int maxSeqLen, int vocab) {
        int n = tokens.length;
        if (n == 0) throw new IllegalArgumentException("a step needs at least one token");
        if (positions.length != n || slots.length != n) throw new IllegalArgumentException("tokens, positions and slots must have equal lengths");
        for (int t = 0; t < n; t++) {
            if (tokens[t] < 0 || tokens[t] >= vocab) throw new IllegalArgumentException("token id " + tokens[t] + " outside the vocabulary 0.." + (vocab - 1));
            if (slots[t] < 0 || slots[t] >= maxSlots) throw new IllegalArgumentException("slot " + slots[t] + " outside 0.." + (maxSlots - 1));
            if (positions[t] < 0 || positions[t] >= maxSeqLen) throw new IllegalArgumentException("position " + positions[t] + " outside the context of " + maxSeqLen);
        }
        for (int r : logitRows) if (r < 0 || r >= n) throw new IllegalArgumentException("logit row " + r + " outside 0.." + (n - 1));
    }
}
