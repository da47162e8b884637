package dev.moec.tests;

import dev.moec.executor.ReferenceModel;
import dev.moec.executor.Sampler;
import dev.moec.frontend.Checkpoint;
import dev.moec.frontend.ModelImport;
import dev.moec.ir.Graph;
import dev.moec.ir.Node;
import dev.moec.ir.Verifier;
import dev.moec.passes.Pass;
import dev.moec.passes.PassManager;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.Map;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The default pipeline on every family's tiny checkpoint, pass by pass: the graph verifies after each
 * pass, each pass is idempotent, and the reference interpreter's logits stay within 1e-3 of the
 * unoptimized graph's (the passes are exact; only summation order moves the last bits). At the end every
 * attention is one Ascend attention kernel and every MoE block one gating op and one
 * dispatch / grouped-matmul / combine chain. Quantizing pipelines are held to top-1 agreement and a
 * cosine bound against the float model instead.
 */
class PassPipelineTest {
    static final int[] PROMPT = {3, 17, 101, 7, 42, 250, 9, 64};

    @ParameterizedTest
    @ValueSource(strings = {"qwen3", "qwen3_moe", "deepseek_v3", "deepseek_v32", "minimax_m2", "qwen3_next", "qwen3_5_moe"})
    void theDefaultPipelineIsExactAndFusesEveryAttentionAndMoeBlock(String arch) {
        try (Checkpoint c = Checkpoint.open(Fixtures.tinyCheckpoint(arch))) {
            Graph original = ModelImport.stepGraph(c), g = original;
            float[] reference = prefill(original, c);
            Map<String, Integer> before = counts(original);
            for (Pass p : PassManager.parse(PassManager.defaultPipeline("none"))) {
                Graph out = p.run(g);
                assertTrue(Verifier.check(out).isEmpty(), p.name() + ": " + Verifier.check(out));
                assertSame(out, p.run(out), p.name() + " is not idempotent on " + arch);
                if (out != g) {
                    float diff = Fixtures.maxAbsDiff(reference, prefill(out, c));
                    assertTrue(diff <= 1e-3f, arch + ", after " + p.name() + ": max |logits - unoptimized| = " + diff);
                }
                g = out;
            }
            Map<String, Integer> after = counts(g);
            int attention = before.getOrDefault("attention", 0), mla = before.getOrDefault("mla_attention", 0),
                    sparse = before.getOrDefault("mla_attention_sparse", 0), moe = before.getOrDefault("moe_experts", 0);
            for (String gone : new String[]{"attention", "mla_attention", "mla_attention_sparse", "moe_experts", "rope", "softmax", "topk"}) {
                assertEquals(0, after.getOrDefault(gone, 0), arch + ": " + gone + " left after the pipeline: " + after);
            }
            assertEquals(attention, after.getOrDefault("fused_infer_attention", 0), arch + " " + after);
            assertEquals(mla, after.getOrDefault("fused_infer_attention_mla", 0), arch + " " + after);
            assertEquals(sparse, after.getOrDefault("sparse_flash_attention", 0), arch + " " + after);
            int gating = after.getOrDefault("moe_gating_topk", 0) + after.getOrDefault("moe_gating_topk_softmax", 0);
            assertEquals(moe, gating, arch + ": one gating op per MoE block " + after);
            assertEquals(moe, after.getOrDefault("moe_dispatch", 0), arch + " " + after);
            assertEquals(2 * moe, after.getOrDefault("grouped_matmul", 0), arch + " " + after);
            assertEquals(moe, after.getOrDefault("moe_combine", 0), arch + " " + after);
        }
    }

    /**
     * Quantization against the float model over every position of a 16-token prompt: the share of
     * positions whose top-1 token is unchanged, and the mean cosine of the logits. The trained demo model
     * (peaked distributions) is the meaningful case; the random-weight families have near-ties everywhere,
     * so their bounds are lower. Measured values are in the comments; the bounds leave a margin.
     */
    @ParameterizedTest(name = "{0} {1}")
    @CsvSource({
            "demo,        w8a8, 1.00, 0.999",   // measured: top-1 1.00, cosine 1.0000
            "demo,        w4a8, 0.90, 0.999",   // measured: top-1 1.00, cosine 1.0000
            "deepseek_v3, w8a8, 0.60, 0.99",    // measured: top-1 0.81, cosine 0.9986
            "minimax_m2,  w8a8, 0.75, 0.99",    // measured: top-1 1.00, cosine 0.9999
            "qwen3_next,  w8a8, 0.60, 0.95",    // measured: top-1 0.81, cosine 0.979
            "qwen3_next,  w4a8, 0.15, 0.75",
            "demo,        kv-int8, 1.00, 0.999",
            "qwen3_moe,   kv-int8, 0.75, 0.99",
            "qwen3_next,  kv-int8, 0.75, 0.99"})   // measured: top-1 0.31, cosine 0.847: int4 experts on random weights are lossy; a broken path scores ~0
    void quantizedPipelinesStayCloseToTheFloatModel(String arch, String quantization, double minTop1, double minCosine) {
        java.nio.file.Path dir = arch.equals("demo") ? Fixtures.demoModel() : Fixtures.tinyCheckpoint(arch);
        try (Checkpoint c = Checkpoint.open(dir)) {
            Graph original = ModelImport.stepGraph(c);
            boolean c8 = quantization.equals("kv-int8");
            Graph q = new PassManager(c8 ? PassManager.defaultPipeline("none", "int8") : PassManager.defaultPipeline(quantization)).run(original);
            Map<String, Integer> ops = counts(q);
            if (c8) assertTrue(ops.getOrDefault("fused_infer_attention_int8", 0) > 0, arch + ": the KV cache is not int8 " + ops);
            else assertTrue(ops.getOrDefault("grouped_quant_matmul", 0) > 0, arch + " " + quantization + ": experts not quantized " + ops);
            if (quantization.equals("w8a8")) assertTrue(ops.getOrDefault("quant_matmul", 0) > 0, "Linears not quantized " + ops);
            int[] prompt = arch.equals("demo") ? new int[]{542, 448, 1201, 46, 10, 10, 542, 843, 741, 385, 434, 517, 292, 320, 517, 292}
                    : new int[]{3, 17, 101, 7, 42, 250, 9, 64, 5, 12, 900, 33, 1, 77, 260, 8};
            float[][] a = allPositions(original, c, prompt), b = allPositions(q, c, prompt);
            int same = 0;
            double cos = 0;
            for (int t = 0; t < prompt.length; t++) {
                if (Sampler.argmax(a[t]) == Sampler.argmax(b[t])) same++;
                cos += CheckpointFormatsTest.cosine(a[t], b[t]) / prompt.length;
            }
            double top1 = (double) same / prompt.length;
            System.out.printf(java.util.Locale.ROOT, "quantization %s %s: top-1 agreement %.2f, mean cosine %.4f%n", arch, quantization, top1, cos);
            assertTrue(top1 >= minTop1, arch + " " + quantization + ": top-1 agreement " + top1);
            assertTrue(cos >= minCosine, arch + " " + quantization + ": mean cosine " + cos);
        }
    }

    static float[][] allPositions(Graph g, Checkpoint c, int[] prompt) {
        int n = prompt.length;
        int[] pos = new int[n], rows = new int[n];
        for (int i = 0; i < n; i++) pos[i] = rows[i] = i;
        return new ReferenceModel(g, c, 1, 32).step(prompt, pos, new int[n], rows);
    }

    static Map<String, Integer> counts(Graph g) {
        Map<String, Integer> m = new TreeMap<>();
        for (Node n : g.nodes()) m.merge(n.op().text(), 1, Integer::sum);
        return m;
    }

    static float[] prefill(Graph g, Checkpoint c) {
        int n = PROMPT.length;
        int[] pos = new int[n], slots = new int[n];
        for (int i = 0; i < n; i++) pos[i] = i;
        return new ReferenceModel(g, c, 1, 16).step(PROMPT, pos, slots, new int[]{n - 1})[0];
    }

}
