package dev.moec.tests;

import dev.moec.capture.Artifact;
import dev.moec.executor.CompiledModel;
import dev.moec.executor.Generator;
import dev.moec.executor.ReferenceModel;
import dev.moec.executor.Sampler;
import dev.moec.executor.StepModel;
import dev.moec.frontend.Checkpoint;
import dev.moec.frontend.ModelImport;
import org.junit.jupiter.api.Test;

import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Batched against token-by-token: a prompt prefilled in one step must give the same last-position logits
 * as the same prompt fed one token per step through the cache; sequences decoded together must give the
 * tokens they give alone. Tolerance as in {@link CompiledVsReferenceTest}.
 */
class BatchingTest {
    static final int[] PROMPT = {9707, 11, 1879, 0, 576, 374, 264, 1273};

    @Test void compiledBatchedPrefillMatchesTokenByToken() {
        try (CompiledModel batched = new CompiledModel(Artifact.open(Fixtures.tinyArtifact()), 2, 32, 2)) {
            assertPrefillMatchesStepwise(batched);
        }
    }

    @Test void referenceBatchedPrefillMatchesTokenByToken() {
        try (Checkpoint c = Checkpoint.open(Fixtures.tinyCheckpoint())) {
            assertPrefillMatchesStepwise(new ReferenceModel(ModelImport.stepGraph(c), c, 2, 32));
        }
    }

    /** Slot 0 gets the whole prompt in one step, slot 1 one token per step; the last logits must agree. */
    private static void assertPrefillMatchesStepwise(StepModel m) {
        int n = PROMPT.length;
        int[] pos = new int[n], slots = new int[n];
        for (int i = 0; i < n; i++) pos[i] = i;
        float[] whole = m.step(PROMPT, pos, slots, new int[]{n - 1})[0];
        float[] stepwise = null;
        for (int i = 0; i < n; i++) stepwise = m.step(new int[]{PROMPT[i]}, new int[]{i}, new int[]{1}, new int[]{0})[0];
        float diff = Fixtures.maxAbsDiff(whole, stepwise);
        assertTrue(diff <= CompiledVsReferenceTest.TOLERANCE, "max |batched - stepwise| = " + diff);
    }

    /**
     * A prompt's graph is kept and run again for the next prompt of the same sizes, its activations as the
     * last prompt left them: the second prompt must give the logits it gives in a fresh model, to the bit.
     */
    @Test void aPromptOnTheLastPromptsGraphGivesWhatItGivesAlone() {
        int[] other = {40, 1079, 264, 5562, 13, 785, 3974, 11};
        int n = PROMPT.length;
        int[] pos = new int[n], slot0 = new int[n], slot1 = new int[n], rows = {n - 1, 2};
        for (int i = 0; i < n; i++) {
            pos[i] = i;
            slot1[i] = 1;
        }
        float[][] alone, second;
        try (CompiledModel m = new CompiledModel(Artifact.open(Fixtures.tinyArtifact()), 2, 32, 2)) {
            alone = m.step(PROMPT, pos, slot1, rows);
        }
        try (CompiledModel m = new CompiledModel(Artifact.open(Fixtures.tinyArtifact()), 2, 32, 2)) {
            m.step(other, pos, slot0, rows);
            second = m.step(PROMPT, pos, slot1, rows);
            assertEquals("prefill", m.lastGraph());
        }
        for (int r = 0; r < rows.length; r++) assertArrayEquals(alone[r], second[r], "logit row " + rows[r]);
    }

    /**
     * A greedy step gives each row's argmax of the logits the same step gives (a step run again with the
     * same tokens at the same positions writes the same cache rows): a prompt's chosen rows, a live batch
     * of three on the graph captured for four, and the reference model through the default method.
     */
    @Test void aGreedyStepGivesTheArgmaxOfItsLogits() {
        int n = PROMPT.length;
        int[] pos = new int[n], slot1 = new int[n], rows = {n - 1, 2};
        for (int i = 0; i < n; i++) {
            pos[i] = i;
            slot1[i] = 1;
        }
        try (CompiledModel m = new CompiledModel(Artifact.open(Fixtures.tinyArtifact()), 4, 32, 2);
             Checkpoint c = Checkpoint.open(Fixtures.tinyCheckpoint())) {
            for (StepModel model : new StepModel[] {m, new ReferenceModel(ModelImport.stepGraph(c), c, 4, 32)}) {
                assertGreedyIsArgmax(model, PROMPT, pos, slot1, rows);
                int[] tokens = {PROMPT[1], PROMPT[5], PROMPT[7]}, at = {n, 3, 0}, slots = {1, 2, 3};
                model.step(PROMPT, pos, new int[] {2, 2, 2, 2, 2, 2, 2, 2}, new int[] {n - 1});
                assertGreedyIsArgmax(model, tokens, at, slots, new int[] {0, 1, 2});
            }
            assertEquals("decode_bs4", m.lastGraph());
        }
    }

    private static void assertGreedyIsArgmax(StepModel m, int[] tokens, int[] positions, int[] slots, int[] rows) {
        float[][] logits = m.step(tokens, positions, slots, rows);
        int[] ids = m.greedy(tokens, positions, slots, rows);
        assertEquals(rows.length, ids.length);
        for (int r = 0; r < rows.length; r++) {
            int best = 0;
            for (int i = 1; i < logits[r].length; i++) if (logits[r][i] > logits[r][best]) best = i;
            assertEquals(best, ids[r], "row " + rows[r]);
        }
    }

    @Test void aLiveBatchRunsOnTheSmallestCapturedGraphAndMatchesSoloRuns() {
        int[][] prompts = {{9707, 11, 1879}, {785, 3974}, {40, 1079, 264, 5562, 13}};
        int steps = 8;
        int[][] solo = new int[3][];
        try (CompiledModel m = new CompiledModel(Artifact.open(Fixtures.tinyArtifact()), 4, 32, 2)) {
            assertEquals(Set.of(1, 2, 4), m.capturedBatchSizes());
            for (int s = 0; s < 3; s++) solo[s] = Generator.generate(m, s, prompts[s], steps, Sampler.greedy(), Set.of(), false).tokens();

            // The same three sequences decoded together: three tokens per step run on decode_bs4.
            int[][] together = new int[3][steps];
            int[] last = new int[3], position = new int[3];
            for (int s = 0; s < 3; s++) {
                last[s] = Sampler.argmax(Fixtures.prefill(m, s, prompts[s]));
                together[s][0] = last[s];
                position[s] = prompts[s].length;
            }
            for (int k = 1; k < steps; k++) {
                float[][] logits = m.step(last.clone(), position.clone(), new int[]{0, 1, 2}, new int[]{0, 1, 2});
                assertEquals("decode_bs4", m.lastGraph());
                for (int s = 0; s < 3; s++) {
                    last[s] = Sampler.argmax(logits[s]);
                    together[s][k] = last[s];
                    position[s]++;
                }
            }
            for (int s = 0; s < 3; s++) assertArrayEquals(solo[s], together[s], "sequence " + s);

            m.step(new int[]{1, 2}, new int[]{20, 20}, new int[]{0, 1}, new int[]{0, 1});
            assertEquals("decode_bs2", m.lastGraph());
            m.step(new int[]{1}, new int[]{21}, new int[]{0}, new int[]{0});
            assertEquals("decode_bs1", m.lastGraph());
        }
    }
}
