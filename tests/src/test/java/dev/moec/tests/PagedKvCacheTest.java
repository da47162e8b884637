package dev.moec.tests;

import dev.moec.capture.Artifact;
import dev.moec.executor.CompiledModel;
import dev.moec.executor.Generator;
import dev.moec.executor.ReferenceModel;
import dev.moec.executor.Sampler;
import dev.moec.executor.StepModel;
import dev.moec.frontend.Checkpoint;
import dev.moec.frontend.ModelImport;
import dev.moec.ir.Graph;
import dev.moec.passes.PassManager;
import dev.moec.serving.BatchScheduler;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The paged KV cache: where a position lives (block size, which blocks, blocks handed back and reused)
 * must never change what a model computes. Every comparison here is exact: paging moves rows, it does
 * not change the arithmetic.
 */
class PagedKvCacheTest {
    static final int[][] PROMPTS = {{9707, 11, 1879, 0, 576}, {785, 3974}, {40, 1079, 264, 5562, 13, 8, 99}};

    /**
     * Three sequences prefilled and decoded in an interleaved order, so their blocks interleave in the
     * cache; returns every logits row the steps produced, in order.
     */
    static List<float[]> interleaved(StepModel m, int steps) {
        List<float[]> out = new ArrayList<>();
        int[] last = new int[3], position = new int[3];
        for (int s = 0; s < 3; s++) {
            float[] l = Fixtures.prefill(m, s, PROMPTS[s]);
            out.add(l);
            last[s] = Sampler.argmax(l);
            position[s] = PROMPTS[s].length;
        }
        for (int k = 0; k < steps; k++) {
            // Slots 2 and 0 together, then slot 1 alone: both the captured bs2 graph and the bs1 graph.
            float[][] two = m.step(new int[]{last[2], last[0]}, new int[]{position[2], position[0]}, new int[]{2, 0}, new int[]{0, 1});
            float[] one = m.step(new int[]{last[1]}, new int[]{position[1]}, new int[]{1}, new int[]{0})[0];
            out.add(two[0]);
            out.add(two[1]);
            out.add(one);
            last[2] = Sampler.argmax(two[0]);
            last[0] = Sampler.argmax(two[1]);
            last[1] = Sampler.argmax(one);
            for (int s = 0; s < 3; s++) position[s]++;
        }
        return out;
    }

    static void assertSame(List<float[]> expected, List<float[]> actual, String what) {
        assertEquals(expected.size(), actual.size());
        for (int i = 0; i < expected.size(); i++) assertArrayEquals(expected.get(i), actual.get(i), what + ": logits row " + i);
    }

    @Test void theCompiledResultDoesNotDependOnTheBlockSize() {
        Artifacts paths = Artifacts.get();
        List<float[]> b4, b1;
        try (CompiledModel m = new CompiledModel(Artifact.open(Fixtures.tinyArtifact()), 3, 32, 2)) {
            assertEquals(Fixtures.TINY_KV_BLOCK, m.kvBlocks().blockSize());
            b4 = interleaved(m, 6);
            // The sequences' blocks interleave: slot 0 does not own a contiguous run of blocks.
            int[] slot0 = m.kvBlocks().blocksOf(0);
            assertTrue(slot0.length >= 3, "positions 0..10 in blocks of 4");
            assertFalse(slot0[slot0.length - 1] - slot0[0] == slot0.length - 1, "slot 0's blocks " + java.util.Arrays.toString(slot0) + " are one run");
        }
        try (Artifact one = Artifact.open(paths.blockOfOne)) {
            assertEquals(1, one.manifest().kvBlockSize());
        }
        b1 = interleavedOn(paths.blockOfOne, 6);
        assertSame(b4, b1, "blocks of 4 vs blocks of 1");
    }

    @Test void theReferenceResultDoesNotDependOnTheBlockSize() {
        try (Checkpoint c = Checkpoint.open(Fixtures.tinyCheckpoint())) {
            Graph g = ModelImport.stepGraph(c);
            List<float[]> whole = interleaved(new ReferenceModel(g, c, 3, 16, 16, 0), 3);         // one block per sequence
            List<float[]> paged = interleaved(new ReferenceModel(g, c, 3, 16, 3, 0), 3);          // blocks of 3, interleaved
            assertSame(whole, paged, "one block per sequence vs blocks of 3");
        }
    }

    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(strings = {"bf16", "int8"})
    void narrowCachesArePagedToo(String dtype) {
        Artifacts paths = Artifacts.get();
        boolean bf16 = dtype.equals("bf16");
        assertSame(interleavedOn(bf16 ? paths.bf16Block4 : paths.int8Block4, 4), interleavedOn(bf16 ? paths.bf16Block1 : paths.int8Block1, 4),
                dtype + " cache, blocks of 4 vs blocks of 1");
    }

    /** {@link #interleaved} on a fresh model of the artifact at {@code dir}. */
    static List<float[]> interleavedOn(java.nio.file.Path dir, int steps) {
        try (CompiledModel m = new CompiledModel(Artifact.open(dir), 3, 32, 2)) {
            return interleaved(m, steps);
        }
    }

    @Test void blocksHandedBackAreReusedWithoutLeakingTheOldSequence() {
        int[] a = PROMPTS[2], b = PROMPTS[0];
        float[] fresh;
        try (CompiledModel m = new CompiledModel(Artifact.open(Fixtures.tinyArtifact()), 2, 32, 2)) {
            fresh = prefill(m, 1, b);
        }
        // A pool of 3 blocks (12 positions): sequence a fills 2 of them, gives them back, and b takes them.
        try (CompiledModel m = new CompiledModel(Artifact.open(Fixtures.tinyArtifact()), 2, 32, 2, true, 3)) {
            Generator.generate(m, 0, a, 4, Sampler.greedy(), Set.of(), false);    // gives its blocks back when done
            assertEquals(3, m.kvBlocks().freeBlocks());
            prefill(m, 0, a);
            Set<Integer> held = new HashSet<>();
            for (int x : m.kvBlocks().blocksOf(0)) held.add(x);
            m.kvBlocks().release(0);
            float[] reused = prefill(m, 1, b);
            for (int x : m.kvBlocks().blocksOf(1)) assertTrue(held.contains(x), "slot 1 reuses slot 0's old blocks");
            assertArrayEquals(fresh, reused, "a reused block holds only the new sequence");
        }
    }

    @Test void aStepTheCacheCannotHoldFailsClearlyAndChangesNothing() {
        try (CompiledModel m = new CompiledModel(Artifact.open(Fixtures.tinyArtifact()), 2, 32, 2, true, 2)) {
            prefill(m, 0, new int[]{1, 2, 3, 4, 5, 6, 7});                      // 7 positions: both blocks
            int[] table = m.kvBlocks().table().clone();
            var e = assertThrows(IllegalStateException.class, () -> prefill(m, 1, new int[]{1}));
            assertTrue(e.getMessage().contains("KV cache is full"), e.getMessage());
            assertArrayEquals(table, m.kvBlocks().table());
            // Slot 0 still decodes into its own second block.
            m.step(new int[]{8}, new int[]{7}, new int[]{0}, new int[]{0});
            assertThrows(IllegalStateException.class, () -> m.step(new int[]{9}, new int[]{8}, new int[]{0}, new int[]{0}));
        }
    }

    @Test void theSchedulerQueuesRequestsUntilTheCacheHasRoomAndRefusesOnesThatNeverFit() throws Exception {
        int maxTokens = 6;
        List<int[]> solo = new ArrayList<>();
        try (CompiledModel m = new CompiledModel(Artifact.open(Fixtures.tinyArtifact()), 3, 32, 2)) {
            for (int[] p : PROMPTS) solo.add(Generator.generate(m, 0, p, maxTokens, Sampler.greedy(), Set.of(), false).tokens());
        }
        // Four blocks of 4 positions: the sequences need 3, 2 and 4 blocks, so they cannot all run at once and wait their turn.
        try (CompiledModel m = new CompiledModel(Artifact.open(Fixtures.tinyArtifact()), 3, 32, 2, true, 4);
             BatchScheduler scheduler = new BatchScheduler(m)) {
            List<CompletableFuture<BatchScheduler.Completion>> futures = new ArrayList<>();
            for (int[] p : PROMPTS) futures.add(scheduler.submit(new BatchScheduler.Request(p, maxTokens, Sampler.greedy(), Set.of(), null)));
            for (int i = 0; i < PROMPTS.length; i++) assertArrayEquals(solo.get(i), futures.get(i).get(60, TimeUnit.SECONDS).tokens());
            assertEquals(4, m.kvBlocks().freeBlocks(), "every finished sequence gave its blocks back");
            var tooLong = scheduler.submit(new BatchScheduler.Request(new int[]{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 10, Sampler.greedy(), Set.of(), null));
            var e = assertThrows(ExecutionException.class, () -> tooLong.get(60, TimeUnit.SECONDS));
            assertTrue(e.getCause().getMessage().contains("--kv-cache-blocks"), e.getCause().getMessage());
        }
    }

    private static float[] prefill(StepModel m, int slot, int[] prompt) { return Fixtures.prefill(m, slot, prompt); }

    /** The extra artifacts these tests compile once: blocks of one position, and the int8 and bf16 caches at two block sizes. */
    record Artifacts(java.nio.file.Path blockOfOne, java.nio.file.Path int8Block4, java.nio.file.Path int8Block1,
                     java.nio.file.Path bf16Block4, java.nio.file.Path bf16Block1) {
        private static Artifacts made;

        static synchronized Artifacts get() {
            if (made == null) {
                var ckpt = Fixtures.tinyCheckpoint();
                String int8 = PassManager.defaultPipeline("none", "int8"), bf16 = PassManager.defaultPipeline("none", "bf16");
                made = new Artifacts(Fixtures.compile(ckpt, List.of(1, 2), 1),
                        Fixtures.compile(ckpt, List.of(1, 2), 4, int8), Fixtures.compile(ckpt, List.of(1, 2), 1, int8),
                        Fixtures.compile(ckpt, List.of(1, 2), 4, bf16), Fixtures.compile(ckpt, List.of(1, 2), 1, bf16));
            }
            return made;
        }
    }
}
