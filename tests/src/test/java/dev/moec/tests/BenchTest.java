package dev.moec.tests;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.moec.capture.Artifact;
import dev.moec.capture.Manifest;
import dev.moec.executor.CompiledModel;
import dev.moec.executor.Sampler;
import dev.moec.executor.bench.Bench;
import dev.moec.executor.bench.Roofline;
import dev.moec.frontend.ModelImport;
import dev.moec.ir.ParamCount;
import dev.moec.frontend.testmodel.TestModels;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** What {@code moec bench} measures: the weight bytes a decode step must read, and the benchmark model's size. */
class BenchTest {

    /**
     * Bytes a decode step of the tiny qwen3_moe reads, counted from the manifest alone: every weight once,
     * one embedding row per token, and of each stacked expert tensor [E, N, K] (the checkpoint's experts.*
     * stacks and the gate_up stacks the compiler derives from them) only the experts routed to.
     */
    private static double expectedBytes(Manifest m, double expertsUsed, int experts, int tokens, int vocab) {
        double bytes = 0;
        for (Manifest.TensorEntry t : m.weights().tensors()) {
            if (t.name().equals("model.embed_tokens.weight")) bytes += (double) t.bytes() / vocab * tokens;
            else if (t.type().matches(".*\\[" + experts + ",\\d+,\\d+]")) bytes += (double) t.bytes() / experts * expertsUsed;
            else bytes += t.bytes();
        }
        return bytes;
    }

    @Test void aBatchOneDecodeStepReadsTopKExpertsPerLayerAndOneEmbeddingRow() {
        try (Artifact a = Artifact.open(Fixtures.tinyArtifact()); CompiledModel model = new CompiledModel(a, 4, 128, 2)) {
            Bench.Decode d = Bench.decode(model, 1, 8, 1, 3, 0);
            assertEquals("decode_bs1", d.graph());
            assertEquals(8, d.experts(), 0);
            assertEquals(2, d.expertsUsed(), 0, "top-2 routing of one token touches two experts");
            assertEquals(expectedBytes(a.manifest(), 2, 8, 1, 151936), d.weightBytesPerStep(), 1e-6);
            assertTrue(d.kernelMsPerStep() > 0 && d.kernelMsPerStep() <= d.profiledMsPerStep(), d.toString());
            assertTrue(d.tokensPerSecond() > 0);
        }
    }

    @Test void aBatchTouchesTheUnionOfItsTokensExperts() {
        try (Artifact a = Artifact.open(Fixtures.tinyArtifact()); CompiledModel model = new CompiledModel(a, 4, 128, 2)) {
            Bench.Decode d = Bench.decode(model, 4, 8, 1, 3, 0);
            assertEquals("decode_bs4", d.graph());
            assertTrue(d.expertsUsed() > 2 && d.expertsUsed() <= 8, "4 tokens x top-2 touch 2..8 experts: " + d.expertsUsed());
            assertEquals(expectedBytes(a.manifest(), d.expertsUsed(), 8, 4, 151936), d.weightBytesPerStep(), 1e-3);
            Bench.Prefill p = Bench.prefill(model, 16, 0, 1, 0);
            assertEquals("prefill", p.graph());
            assertTrue(p.tokensPerSecond() > 0);
        }
    }

    /**
     * A greedy batch's lm_head runs on the bf16 dot tiles where this machine has them: its multiply-accumulates
     * (4 rows x 151,936 x the hidden size) count at their peak, one step's worth per step; a single row's
     * lm_head, and any on a machine without the tiles, counts none there.
     */
    @Test void aGreedyBatchsLmHeadCountsOnTheDotTilesWhereItRunsThere() {
        try (Artifact a = Artifact.open(Fixtures.tinyArtifact()); CompiledModel model = new CompiledModel(a, 4, 128, 2)) {
            String head = a.manifest().weights().tensors().stream().filter(t -> t.name().equals("lm_head.weight")).findFirst().orElseThrow().type();
            long hidden = Long.parseLong(head.replaceAll(".*,(\\d+)]", "$1"));                 // bf16[151936,H]
            Bench.Decode d = Bench.decode(model, 4, 8, 1, 3, 0);
            assertEquals(dev.moec.executor.cpu.Bf16Tiles.DOT_AVAILABLE ? 4 * 151936 * hidden : 0, d.dotMacsPerStep(), 1e-6);
            assertEquals(0, Bench.decode(model, 1, 8, 1, 3, 0).dotMacsPerStep());
        }
    }

    /**
     * The multiply-accumulates on the VNNI tiles are the W8A8 model's int8 matmuls (all of its Linears and
     * experts but not the lm_head, which stays bf16) where this machine has the tiles, and none where it does
     * not; a bf16 model has none either way.
     */
    @Test void int8MatmulsCountOnTheVnniTilesWhereTheyRunThere() {
        Path w8a8 = Fixtures.compile(Fixtures.tinyCheckpoint(), java.util.List.of(1), 4, dev.moec.passes.PassManager.defaultPipeline("w8a8"));
        try (Artifact a = Artifact.open(w8a8); CompiledModel model = new CompiledModel(a, 1, 64, 2);
             Artifact b = Artifact.open(Fixtures.tinyArtifact()); CompiledModel bf16 = new CompiledModel(b, 1, 64, 2)) {
            Bench.Decode d = Bench.decode(model, 1, 8, 1, 2, 0);
            if (dev.moec.executor.cpu.Vnni.AVAILABLE) assertTrue(d.vnniMacsPerStep() > 0 && d.vnniMacsPerStep() < d.macsPerStep(), d.toString());
            else assertEquals(0, d.vnniMacsPerStep());
            Bench.Prefill p = Bench.prefill(model, 16, 0, 1, 0);
            assertTrue(p.vnniMacsPerRun() <= p.macsPerRun() && (p.vnniMacsPerRun() > 0) == dev.moec.executor.cpu.Vnni.AVAILABLE, p.toString());
            assertEquals(0, Bench.decode(bf16, 1, 8, 1, 2, 0).vnniMacsPerStep());
        }
    }

    /**
     * With a bandwidth probe, one reading follows every timed step, and the fraction of the roofline is the
     * median over the steps of each step's roofline at its own reading over its time; without one there is
     * none. The probe itself reads its buffer with the executor's threads.
     */
    @Test void eachTimedStepIsHeldToTheBandwidthReadBesideIt() {
        try (Artifact a = Artifact.open(Fixtures.tinyArtifact()); CompiledModel model = new CompiledModel(a, 4, 128, 2)) {
            double[] rates = {4e9, 1e9, 2e9};
            int[] calls = {0};
            Bench.Decode d = Bench.decode(model, 1, 8, 1, 3, 0, () -> rates[calls[0]++]);
            assertEquals(3, calls[0]);
            org.junit.jupiter.api.Assertions.assertArrayEquals(rates, d.bandwidths());
            assertEquals(2e9, d.bandwidthMedian());
            assertTrue(d.readingsMoved(), "4 GB/s against 1 GB/s: the run's readings moved");
            double[] ratio = new double[3];
            for (int s = 0; s < 3; s++) ratio[s] = d.weightBytesPerStep() / rates[s] * 1e3 / d.stepMs()[s];
            java.util.Arrays.sort(ratio);
            assertEquals(ratio[1], d.achievedOfRoofline(), 1e-12);
            // The launch-by-launch bound at each step's reading: at least the whole step's bytes and its
            // MACs, at most both added; held to the steps as the roofline is.
            double f32 = 5e9, vnni = 20e9;
            Roofline.Peaks peaks = new Roofline.Peaks(f32, vnni, 10e9);
            double compute = (d.macsPerStep() - d.vnniMacsPerStep()) / f32 * 1e3 + d.vnniMacsPerStep() / vnni * 1e3;
            for (int s = 0; s < 3; s++) {
                double bytes = d.weightBytesPerStep() / rates[s] * 1e3, bound = d.launches().ms(rates[s], peaks);
                assertTrue(bound >= Math.max(bytes, compute) * (1 - 1e-9) && bound <= (bytes + compute) * (1 + 1e-9), bound + " against " + bytes + " and " + compute);
                ratio[s] = bound / d.stepMs()[s];
            }
            java.util.Arrays.sort(ratio);
            assertEquals(ratio[1], d.achievedOfLaunchBound(peaks), 1e-12);
            double[] steady = {2e9, 2.9e9, 2.5e9};
            int[] reads = {0};
            org.junit.jupiter.api.Assertions.assertFalse(Bench.decode(model, 1, 8, 1, 3, 0, () -> steady[reads[0]++]).readingsMoved(), "within 1.5 times: steady");
            Bench.Decode unprobed = Bench.decode(model, 1, 8, 1, 3, 0);
            org.junit.jupiter.api.Assertions.assertFalse(unprobed.readingsMoved(), "no probe, no readings");
            assertTrue(Double.isNaN(unprobed.achievedOfRoofline()) && Double.isNaN(unprobed.achievedOfLaunchBound(peaks)), "no probe, no fraction");
            try (dev.moec.executor.bench.MemoryBandwidth.Probe probe = new dev.moec.executor.bench.MemoryBandwidth.Probe(model.parallel(), 8 << 20)) {
                assertTrue(probe.read() > 0);
            }
        }
    }

    /**
     * The warm-up repeats the measured schedule from position 0 in every round: in a cache of exactly the
     * schedule's positions it runs round after round without running out, and the measurement after it
     * still fits.
     */
    @Test void warmUpRoundsRestartTheirSequencesSoTheContextNeverGrows() {
        int positions = Bench.decodePositions(8, 1, 3);
        try (Artifact a = Artifact.open(Fixtures.tinyArtifact()); CompiledModel model = new CompiledModel(a, 2, positions, 2)) {
            Bench.Warmup w = Bench.warmUp(model, 2, 8, 1, 3, 2.0, 0, 2.0, 0, null);
            assertTrue(w.rounds() >= 2, "a tiny model runs many rounds in 2 s: " + w);
            int perRound = 1 + 2 * 3;
            assertEquals(w.rounds() * perRound, w.steps(), "whole rounds: " + w);
            assertTrue(w.seconds() >= 2.0, w.toString());
            assertEquals("decode_bs2", Bench.decode(model, 2, 8, 1, 3, 0).graph());
            assertEquals(0, Bench.warmUp(model, 2, 8, 1, 3, 0, 0, 5, 0, null).rounds(), "no time, no steps, no rounds");
        }
    }

    /**
     * However little time it is given, the warm-up runs its minimum of decode steps, in whole rounds of the
     * measured schedule: the bandwidth reading after every timed step included, so the JIT has compiled
     * it (and the profiled steps' observer) before the measured steps.
     */
    @Test void warmUpRunsItsMinimumOfStepsWhateverTheTime() {
        int positions = Bench.decodePositions(8, 1, 3), perRound = 1 + 2 * 3;
        try (Artifact a = Artifact.open(Fixtures.tinyArtifact()); CompiledModel model = new CompiledModel(a, 2, positions, 2)) {
            int[] readings = {0};
            Bench.Warmup w = Bench.warmUp(model, 2, 8, 1, 3, 0, 17, 0, 0, () -> ++readings[0]);
            assertEquals(Math.ceilDiv(17, perRound), w.rounds(), w.toString());
            assertEquals(w.rounds() * perRound, w.steps(), w.toString());
            assertEquals(w.rounds() * 3, readings[0], "a reading after every timed step of every round");
            assertThrows(IllegalArgumentException.class, () -> Bench.warmUp(model, 2, 8, 1, 3, 0, -1, 0, 0, null));
            assertThrows(IllegalArgumentException.class, () -> Bench.warmUp(model, 2, 8, 1, 3, Double.NaN, 0, 0, 0, null));
            assertThrows(IllegalArgumentException.class, () -> Bench.warmUp(model, 2, 8, 1, 3, 0, 0, Double.NaN, 0, null));
        }
    }

    /**
     * Past its time and steps the warm-up goes on while the JIT compiles, up to its limit: it ends either
     * with a last round in which the JIT compiled for at most {@link Bench#QUIET} of the round's time, or
     * at the limit. The measured steps report the JIT's time during them.
     */
    @Test void warmUpGoesOnWhileTheJitCompilesUpToItsLimit() {
        int positions = Bench.decodePositions(8, 1, 3);
        try (Artifact a = Artifact.open(Fixtures.tinyArtifact()); CompiledModel model = new CompiledModel(a, 2, positions, 2)) {
            Bench.Warmup w = Bench.warmUp(model, 2, 8, 1, 3, 0, 1, 3.0, 0, null);
            assertTrue(w.rounds() >= 1, w.toString());
            if (Bench.compileMillis() >= 0) {
                boolean quiet = w.lastRoundCompileMs() <= Bench.QUIET * w.lastRoundSeconds() * 1e3;
                assertTrue(quiet || w.seconds() >= 3.0, "stopped while the JIT compiled, before the limit: " + w);
                assertTrue(w.rounds() == 1 || w.seconds() - w.lastRoundSeconds() < 3.0, "no round starts past the limit: " + w);
                Bench.Decode d = Bench.decode(model, 2, 8, 1, 3, 0);
                assertTrue(d.compileMs() >= 0, "compile time during the measured steps: " + d.compileMs());
                // Each step returns its tokens in a new array, so a counted step allocates something.
                assertTrue(Double.isNaN(d.allocatedBytesPerStep()) ? Bench.allocatedBytes() < 0 : d.allocatedBytesPerStep() > 0, "heap bytes a step: " + d.allocatedBytesPerStep());
            } else {
                assertTrue(Double.isNaN(w.lastRoundCompileMs()), w.toString());
            }
        }
    }

    /** The captured straight-line replay and the looped replay of the same decode graphs give bit-identical logits. */
    @Test void capturedAndLoopedReplayAgreeExactly() {
        try (Artifact a = Artifact.open(Fixtures.tinyArtifact());
             CompiledModel captured = new CompiledModel(a, 4, 64, 2, true);
             CompiledModel looped = new CompiledModel(Artifact.open(Fixtures.tinyArtifact()), 4, 64, 2, false)) {
            assertTrue(captured.capturedReplay());
            assertTrue(!looped.capturedReplay());
            int[] tokens = {11, 22, 33, 44};
            int[] slots = {0, 1, 2, 3}, rows = {0, 1, 2, 3};
            for (int step = 0; step < 3; step++) {
                int[] positions = {step, step, step, step};
                float[][] c = captured.step(tokens, positions, slots, rows), l = looped.step(tokens, positions, slots, rows);
                assertEquals("decode_bs4", captured.lastGraph());
                for (int r = 0; r < 4; r++) {
                    org.junit.jupiter.api.Assertions.assertArrayEquals(l[r], c[r], "step " + step + " row " + r);
                    tokens[r] = Sampler.argmax(c[r]);
                }
            }
        }
    }

    /**
     * The reference benchmark model: about 1.42 B parameters, 388 M active per token. ParamCount's active
     * count includes the whole embedding table; a lookup reads one row of it, so the benchmark's 388 M leaves
     * the table out (the untied lm_head is read whole and counts).
     */
    @Test void theBenchPresetIsTheReferenceBenchmarkModel() throws Exception {
        ObjectNode config = TestModels.config("qwen3_moe", "bench");
        Path file = Fixtures.tempDir("moec-bench-config").resolve("config.json");
        Files.writeString(file, config.toString());
        ParamCount c = ParamCount.of(ModelImport.stepGraphFromConfig(file));
        assertEquals(1_424_013_312L, c.total());
        long embeddingTable = 151_936L * 1024;
        assertEquals(388, Math.round((c.active() - embeddingTable) / 1e6), "active " + c.active());
    }
}
