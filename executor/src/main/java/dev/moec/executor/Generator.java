package dev.moec.executor;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/** Generation of one sequence in one cache slot: prefill the prompt, then decode token by token. */
public final class Generator {
    private Generator() {}

    /**
     * @param tokens    the generated ids (a stop id that ended generation is included)
     * @param stepLogits the logits each token was sampled from, when asked for
     * @param finish    {@code stop} (a stop id was produced) or {@code length} (maxTokens reached)
     */
    public record Result(int[] tokens, List<float[]> stepLogits, String finish) {}

    /** Generates in {@code slot}, and gives the slot's KV blocks back when done. */
    public static Result generate(StepModel model, int slot, int[] prompt, int maxTokens, Sampler sampler, Set<Integer> stopIds, boolean keepLogits) {
        if (prompt.length == 0) throw new IllegalArgumentException("the prompt is empty");
        if (prompt.length + maxTokens > model.maxSeqLen()) {
            throw new IllegalArgumentException("prompt (" + prompt.length + " tokens) plus max tokens (" + maxTokens + ") exceed the context of " + model.maxSeqLen());
        }
        try {
            return run(model, slot, prompt, maxTokens, sampler, stopIds, keepLogits);
        } finally {
            model.kvBlocks().release(slot);
        }
    }

    private static Result run(StepModel model, int slot, int[] prompt, int maxTokens, Sampler sampler, Set<Integer> stopIds, boolean keepLogits) {
        int[] positions = new int[prompt.length], slots = new int[prompt.length];
        for (int i = 0; i < prompt.length; i++) {
            positions[i] = i;
            slots[i] = slot;
        }
        List<float[]> kept = new ArrayList<>();
        int[] out = new int[maxTokens];
        int n = 0;
        String finish = "length";
        int[] tokens = prompt;
        int row = prompt.length - 1;
        while (n < maxTokens) {
            int next;
            if (keepLogits) {
                float[] logits = model.step(tokens, positions, slots, new int[] {row})[0];
                kept.add(logits);
                next = sampler.sample(logits);
            } else {
                next = sampler.next(model, tokens, positions, slots, row);
            }
            out[n++] = next;
            if (stopIds.contains(next)) {
                finish = "stop";
                break;
            }
            if (n == maxTokens) break;
            tokens = new int[] {next};
            positions = new int[] {prompt.length + n - 1};
            slots = new int[] {slot};
            row = 0;
        }
        return new Result(java.util.Arrays.copyOf(out, n), kept, finish);
    }
}
