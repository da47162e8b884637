package dev.moec.tests;

import dev.moec.executor.ReferenceModel;
import dev.moec.frontend.Checkpoint;
import dev.moec.frontend.ModelImport;
import dev.moec.frontend.testmodel.TestModels;
import dev.moec.ir.DType;
import dev.moec.ir.Graph;
import dev.moec.ir.Node;
import dev.moec.ir.Op;
import dev.moec.ir.Param;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.file.Path;
import java.util.Map;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * msModelSlim checkpoints (quant_model_description.json) import as quantized parameters, not dequantized:
 * int8 / int4 weights with their scales feed the quantized ops. The quantized model's logits stay close to
 * the bf16 model the checkpoint was quantized from (same seed). Measured cosines of these seeded models:
 * W8A8_DYNAMIC 0.9997, W8A8 (static, fixed +-8 input range) 0.9991, W4A8_DYNAMIC 0.984; the bounds leave
 * a small margin below them.
 */
class QuantizedCheckpointTest {
    @TempDir Path dir;

    @ParameterizedTest(name = "{0}")
    @CsvSource({
            "w8a8_dynamic, i8, 0.999",
            "w8a8,         i8, 0.998",
            "w4a8_dynamic, i4, 0.97"})
    void modelSlimCheckpointsImportQuantized(String format, String expertDtype, double minCosine) throws Exception {
        Path q = dir.resolve(format);
        TestModels.write("qwen3_moe", "tiny", 0, q, TestModels.Format.parse(format), line -> {});
        int[] prompt = {785, 3974, 13876, 38835, 34208, 916, 279, 15678};
        int[] pos = {0, 1, 2, 3, 4, 5, 6, 7};
        float[] quantized, reference;
        try (Checkpoint c = Checkpoint.open(q)) {
            Graph g = ModelImport.stepGraph(c);
            Map<String, Integer> ops = new TreeMap<>();
            for (Node n : g.nodes()) ops.merge(n.op().text(), 1, Integer::sum);
            assertEquals(4, ops.get(Op.MOE_EXPERTS_QUANT.text()), ops.toString());
            assertEquals(null, ops.get(Op.MOE_EXPERTS.text()));
            // q, k, v, o in 4 layers; the router and lm_head stay in float.
            String linearOp = format.equals("w8a8") ? Op.QUANT_MATMUL_STATIC.text() : Op.QUANT_MATMUL.text();
            assertEquals(16, ops.get(linearOp), ops.toString());
            Param experts = g.params().stream().filter(p -> p.tensor().equals("model.layers.0.mlp.experts.*.gate_proj.weight")).findFirst().orElseThrow();
            assertEquals(DType.parse(expertDtype), experts.value().type().dtype(), "experts stay quantized");
            assertEquals(DType.I8, g.params().stream().filter(p -> p.tensor().equals("model.layers.0.self_attn.q_proj.weight")).findFirst().orElseThrow().value().type().dtype());
            quantized = new ReferenceModel(g, c, 1, 16).step(prompt, pos, new int[8], new int[]{7})[0];
        }
        try (Checkpoint c = Checkpoint.open(Fixtures.tinyCheckpoint())) {
            reference = new ReferenceModel(ModelImport.stepGraph(c), c, 1, 16).step(prompt, pos, new int[8], new int[]{7})[0];
        }
        double cos = CheckpointFormatsTest.cosine(quantized, reference);
        assertTrue(cos >= minCosine, format + ": cosine(quantized logits, bf16 logits) = " + cos);
    }
}
