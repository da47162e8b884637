package dev.moec.tests;

import dev.moec.capture.Artifact;
import dev.moec.executor.CompiledModel;
import dev.moec.executor.Generator;
import dev.moec.executor.ReferenceModel;
import dev.moec.executor.Sampler;
import dev.moec.executor.StepModel;
import dev.moec.frontend.Checkpoint;
import dev.moec.frontend.ModelImport;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Correctness ladder, model level: the compiled artifact on the CPU executor against the reference
 * interpreter on the same checkpoint's IR (tiny qwen3_moe, seeded random weights).
 *
 * <p>Tolerance: 2e-3 absolute on logits. Both paths compute in f32 from the same bf16 weights; they differ
 * only in summation order (the reference accumulates dot products in double), which moves logits of
 * magnitude ~5 by about 1e-5. 2e-3 leaves room for that while any wrong weight, head or expert moves
 * logits by O(0.1) or more.
 */
class CompiledVsReferenceTest {
    static final float TOLERANCE = 2e-3f;
    static final int[] PROMPT = {785, 3974, 13876, 38835, 34208, 916, 279, 15678, 5562, 13};

    static Checkpoint checkpoint;
    static StepModel compiled, reference;

    @BeforeAll static void load() {
        checkpoint = Checkpoint.open(Fixtures.tinyCheckpoint());
        reference = new ReferenceModel(ModelImport.stepGraph(checkpoint), checkpoint, 1, 64);
        compiled = new CompiledModel(Artifact.open(Fixtures.tinyArtifact()), 1, 64, 2);
    }

    @AfterAll static void close() {
        compiled.close();
        checkpoint.close();
    }

    @Test void lastPositionLogitsMatchTheReference() {
        float[] a = prefill(compiled), b = prefill(reference);
        assertEquals(151936, a.length);
        float diff = Fixtures.maxAbsDiff(a, b);
        assertTrue(diff <= TOLERANCE, "max |compiled - reference| = " + diff);
        assertEquals(Sampler.argmax(b), Sampler.argmax(a));
        assertEquals("prefill", compiled.lastGraph());
    }

    @Test void greedyGenerationOf16TokensIsIdentical() {
        int[] a = Generator.generate(compiled, 0, PROMPT, 16, Sampler.greedy(), Set.of(), false).tokens();
        int[] b = Generator.generate(reference, 0, PROMPT, 16, Sampler.greedy(), Set.of(), false).tokens();
        assertEquals(16, a.length);
        assertArrayEquals(b, a);
    }

    private static float[] prefill(StepModel m) {
        int n = PROMPT.length;
        int[] pos = new int[n], slots = new int[n];
        for (int i = 0; i < n; i++) pos[i] = i;
        return m.step(PROMPT, pos, slots, new int[]{n - 1})[0];
    }
}
