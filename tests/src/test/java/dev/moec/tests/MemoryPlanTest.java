package dev.moec.tests;

import dev.moec.backend.KernelGraph;
import dev.moec.backend.Target;
import dev.moec.capture.Artifact;
import dev.moec.capture.Manifest;
import dev.moec.capture.MemoryPlan;
import dev.moec.cli.ModelCompiler;
import dev.moec.executor.CompiledModel;
import dev.moec.executor.ReferenceModel;
import dev.moec.frontend.Checkpoint;
import dev.moec.frontend.ModelImport;
import dev.moec.ir.StepAbi;
import dev.moec.passes.PassManager;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Static memory plans of the captured decode graphs, and decode graphs sized for speculative steps. */
class MemoryPlanTest {
    @TempDir Path dir;

    @Test void plansNeverOverlapLiveBuffersAndBeatTheNaiveSum() {
        try (Artifact a = Artifact.open(Fixtures.demoArtifact())) {
            for (Manifest.GraphEntry e : a.manifest().graphs()) {
                if (!e.kind().equals("decode")) continue;
                KernelGraph g = a.decodeGraphs().get(e.batchSize()).bind("plan", StepAbi.stateBindings(1, 1, 1, 1));
                MemoryPlan plan = MemoryPlan.of(g);
                assertEquals(plan.peakBytes(), e.plannedPeakBytes(), "the manifest reports the plan");
                assertTrue(plan.peakBytes() < plan.naiveBytes(), e.name() + ": peak " + plan.peakBytes() + " vs naive " + plan.naiveBytes());
                List<String> names = List.copyOf(plan.sizes().keySet());
                for (int i = 0; i < names.size(); i++) {
                    String p = names.get(i);
                    long ps = plan.offsets().get(p), pe = ps + plan.sizes().get(p);
                    assertTrue(pe <= plan.peakBytes(), p + " ends past the peak");
                    for (int j = i + 1; j < names.size(); j++) {
                        String q = names.get(j);
                        int[] lp = plan.lifetimes().get(p), lq = plan.lifetimes().get(q);
                        if (lp[0] > lq[1] || lq[0] > lp[1]) continue;                     // never live together
                        long qs = plan.offsets().get(q), qe = qs + plan.sizes().get(q);
                        assertTrue(pe <= qs || qe <= ps, e.name() + ": " + p + " and " + q + " are live together but share memory");
                    }
                }
            }
        }
    }

    /**
     * A slice that is one contiguous run of an activation becomes a view of it (an alias at the run's
     * first element) and its launch goes; a strided slice, or a slice of state, stays a launch. The plan
     * keeps the viewed buffer live while its view is read, so nothing written meanwhile takes its memory.
     */
    @Test void contiguousSlicesOfActivationsBecomeViews() {
        dev.moec.ir.TensorType row = dev.moec.ir.TensorType.parse("f32[1,8]"), rows = dev.moec.ir.TensorType.parse("f32[2,8]");
        java.util.function.BiFunction<String, String, KernelGraph.Buffer> act = (n, t) -> new KernelGraph.Buffer(n, dev.moec.ir.TensorType.parse(t), KernelGraph.Role.ACTIVATION, null);
        java.util.function.Function<long[], dev.moec.ir.Attrs> slice = r -> new dev.moec.ir.Attrs(Map.of("axis", r[0], "start", r[1], "end", r[2]));
        KernelGraph g = new KernelGraph("views", List.of(
                new KernelGraph.Buffer("x", row, KernelGraph.Role.INPUT, null), new KernelGraph.Buffer("s", row, KernelGraph.Role.STATE, null),
                act.apply("a", "f32[1,8]"), act.apply("p", "f32[2,8]"), act.apply("a0", "f32[1,4]"), act.apply("s0", "f32[1,4]"),
                act.apply("p0", "f32[2,4]"), act.apply("p1", "f32[1,8]"), act.apply("b", "f32[1,8]"), act.apply("c", "f32[1,4]")),
                List.of(
                        new KernelGraph.Launch(dev.moec.backend.Kernel.ADD, List.of("x", "x"), List.of("a"), dev.moec.ir.Attrs.NONE),
                        new KernelGraph.Launch(dev.moec.backend.Kernel.REPEAT, List.of("x"), List.of("p"), new dev.moec.ir.Attrs(Map.of("axis", 0L, "times", 2L))),
                        new KernelGraph.Launch(dev.moec.backend.Kernel.SLICE, List.of("a"), List.of("a0"), slice.apply(new long[] {-1, 2, 6})),
                        new KernelGraph.Launch(dev.moec.backend.Kernel.SLICE, List.of("s"), List.of("s0"), slice.apply(new long[] {1, 0, 4})),
                        new KernelGraph.Launch(dev.moec.backend.Kernel.SLICE, List.of("p"), List.of("p0"), slice.apply(new long[] {1, 4, 8})),
                        new KernelGraph.Launch(dev.moec.backend.Kernel.SLICE, List.of("p"), List.of("p1"), slice.apply(new long[] {0, 1, 2})),
                        new KernelGraph.Launch(dev.moec.backend.Kernel.ADD, List.of("x", "p1"), List.of("b"), dev.moec.ir.Attrs.NONE),
                        new KernelGraph.Launch(dev.moec.backend.Kernel.ADD, List.of("a0", "s0"), List.of("c"), dev.moec.ir.Attrs.NONE)),
                List.of("b", "c", "p0"), List.of());
        KernelGraph v = g.withSliceViews();
        assertEquals(List.of("a0", "p1"), v.buffers().stream().filter(b -> b.role() == KernelGraph.Role.ALIAS).map(KernelGraph.Buffer::name).toList());
        assertEquals(2, v.buffer("a0").offset(), "a0 starts at a's element 2");
        assertEquals("a", v.buffer("a0").source());
        assertEquals(8, v.buffer("p1").offset(), "p1 is p's second row");
        assertEquals(List.of(List.of("s0"), List.of("p0")), v.launches().stream().filter(l -> l.kernel() == dev.moec.backend.Kernel.SLICE).map(KernelGraph.Launch::outputs).toList());
        MemoryPlan plan = MemoryPlan.of(v);
        assertEquals(v.launches().size() - 1, plan.lifetimes().get("a")[1], "a lives until its view's last reader");
        assertTrue(plan.offsets().get("a") + plan.sizes().get("a") <= plan.offsets().get("b") || plan.offsets().get("b") + plan.sizes().get("b") <= plan.offsets().get("a"),
                "b is written while a's view is still to be read");
        assertEquals(v, v.withSliceViews(), "nothing left to view");
    }

    /**
     * The CPU executor stores activations as the plan places them: one array per plan slot, so a decode
     * graph takes about the planned peak rather than one array per buffer (the steps still match the
     * reference: every compiled test runs on these graphs).
     */
    @Test void theExecutorAllocatesActivationsByThePlan() {
        try (Artifact a = Artifact.open(Fixtures.demoArtifact()); CompiledModel m = new CompiledModel(a, 1, 32, 2)) {
            m.decodeActivationBytes().forEach((bs, bytes) -> {
                KernelGraph g = a.decodeGraphs().get(bs).bind("plan", StepAbi.stateBindings(1, 1, 1, 1));
                long separate = 0, largest = 0;
                for (KernelGraph.Buffer b : g.buffers()) {
                    if (b.role() != KernelGraph.Role.ACTIVATION && b.role() != KernelGraph.Role.INPUT) continue;
                    long held = 4 * b.type().shape().elements();                 // f32, and integers held in ints
                    separate += held;
                    largest = Math.max(largest, held);
                }
                assertTrue(bytes >= largest && bytes < separate / 2, "decode_bs" + bs + ": " + bytes + " bytes vs " + separate + " as separate arrays");
            });
        }
    }

    /**
     * With --speculative-num-draft-tokens 3 each decode graph carries bs x 3 tokens; a step verifying three
     * tokens of one sequence runs on decode_bs1 and gives the reference's logits for all three.
     */
    @Test void speculativeDecodeGraphsCarryBatchTimesDraftTokens() throws Exception {
        Path out = dir.resolve("spec");
        ModelCompiler.compile(Fixtures.demoModel(), out, new ModelCompiler.Options(List.of(1, 2), PassManager.defaultPipeline("none"),
                Target.CPU, null, 3), line -> {});
        try (Artifact a = Artifact.open(out); Checkpoint c = Checkpoint.open(Fixtures.demoModel())) {
            assertEquals(3, a.decodeTokens(1));
            assertEquals(6, a.decodeTokens(2));
            assertEquals("i32[6]", a.decodeGraphs().get(2).buffer("tokens").type().toString());
            CompiledModel compiled = new CompiledModel(a, 1, 32, 2);
            ReferenceModel reference = new ReferenceModel(ModelImport.stepGraph(c), c, 1, 32);
            for (var m : List.of(compiled, reference)) m.step(new int[]{542, 448}, new int[]{0, 1}, new int[2], new int[]{1});
            int[] draft = {1201, 46, 10};
            float[][] x = compiled.step(draft, new int[]{2, 3, 4}, new int[3], new int[]{0, 1, 2});
            assertEquals("decode_bs1", compiled.lastGraph());
            float[][] y = reference.step(draft, new int[]{2, 3, 4}, new int[3], new int[]{0, 1, 2});
            for (int r = 0; r < 3; r++) {
                float diff = Fixtures.maxAbsDiff(x[r], y[r]);
                assertTrue(diff <= CompiledVsReferenceTest.TOLERANCE, "row " + r + ": " + diff);
            }
        }
    }
}
