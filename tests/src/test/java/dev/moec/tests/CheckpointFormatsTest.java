package dev.moec.tests;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.moec.executor.ReferenceModel;
import dev.moec.frontend.Checkpoint;
import dev.moec.frontend.Fp8;
import dev.moec.frontend.ModelImport;
import dev.moec.frontend.safetensors.SafetensorsFile;
import dev.moec.frontend.safetensors.SafetensorsWriter;
import dev.moec.frontend.testmodel.TestModels;
import dev.moec.ir.DType;
import dev.moec.ir.TensorType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Checkpoint layouts import alike: sharded files with an index, and block-FP8 weights dequantized at import. */
class CheckpointFormatsTest {
    @TempDir Path dir;

    @Test void aShardedCheckpointReadsLikeTheSingleFile() throws IOException {
        Path single = Fixtures.tinyCheckpoint("qwen3");
        Path sharded = dir.resolve("sharded");
        Files.createDirectories(sharded);
        for (String f : List.of("config.json", "tokenizer.json", "tokenizer_config.json")) Files.copy(single.resolve(f), sharded.resolve(f));
        ObjectMapper json = new ObjectMapper();
        ObjectNode index = json.createObjectNode();
        ObjectNode map = index.putObject("weight_map");
        try (SafetensorsFile f = SafetensorsFile.open(single.resolve("model.safetensors"))) {
            List<String> names = new ArrayList<>(f.entries().keySet());
            SafetensorsWriter[] shards = {new SafetensorsWriter(), new SafetensorsWriter()};
            for (int i = 0; i < names.size(); i++) {
                String n = names.get(i), shard = i % 2 == 0 ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
                shards[i % 2].add(n, f.entry(n).type(), f.data(n).toArray(ValueLayout.JAVA_BYTE));
                map.put(n, shard);
            }
            shards[0].write(sharded.resolve("model-00001-of-00002.safetensors"));
            shards[1].write(sharded.resolve("model-00002-of-00002.safetensors"));
        }
        Files.writeString(sharded.resolve("model.safetensors.index.json"), json.writeValueAsString(index));
        int[] prompt = {1, 2, 3, 4};
        float[] a, b;
        try (Checkpoint c = Checkpoint.open(single)) {
            a = new ReferenceModel(ModelImport.stepGraph(c), c, 1, 8).step(prompt, new int[]{0, 1, 2, 3}, new int[4], new int[]{3})[0];
        }
        try (Checkpoint c = Checkpoint.open(sharded)) {
            b = new ReferenceModel(ModelImport.stepGraph(c), c, 1, 8).step(prompt, new int[]{0, 1, 2, 3}, new int[4], new int[]{3})[0];
        }
        assertArrayEquals(a, b);
    }

    /**
     * A block-FP8 checkpoint (e4m3 weights, 128x128 weight_scale_inv) imports as bf16: each weight equals
     * e4m3(q) * scale of its block, within e4m3's rounding of the original bf16 weight.
     */
    @Test void blockFp8WeightsAreDequantizedAtImport() throws IOException {
        Path fp8 = dir.resolve("fp8");
        TestModels.write("deepseek_v3", "tiny", 0, fp8, TestModels.Format.FP8, line -> {});
        String name = "model.layers.1.self_attn.q_b_proj.weight";           // [4 * 24, 64]: one partial block
        String big = "model.layers.0.mlp.gate_proj.weight";                 // [256, 256]: four full blocks
        try (Checkpoint c = Checkpoint.open(fp8); Checkpoint ref = Checkpoint.open(Fixtures.tinyCheckpoint("deepseek_v3"));
             SafetensorsFile raw = SafetensorsFile.open(fp8.resolve("model.safetensors"))) {
            assertFalse(c.names().stream().anyMatch(n -> n.endsWith("_scale_inv")), "scale tensors are folded into their weights");
            assertEquals(DType.F8E4M3, raw.entry(big).type().dtype());
            assertEquals(TensorType.of(DType.BF16, 256, 256), c.type(big));
            for (String n : List.of(name, big)) {
                float[] deq = c.readF32(n), orig = ref.readF32(n);
                float[] scale = raw.readF32(n + "_scale_inv");
                MemorySegment q = raw.data(n);
                int cols = (int) c.type(n).shape().dim(1).size(), scaleCols = (cols + 127) / 128;
                for (int i = 0; i < deq.length; i++) {
                    float s = scale[(i / cols / 128) * scaleCols + (i % cols) / 128];
                    float exact = Fp8.decode(q.get(ValueLayout.JAVA_BYTE, i)) * s;
                    assertEquals(exact, deq[i], Math.abs(exact) / 128, n + "[" + i + "] = e4m3 * scale, rounded to bf16");
                    // e4m3 keeps 3 mantissa bits: relative error <= 2^-4 for normals, plus the subnormal step.
                    assertEquals(orig[i], deq[i], Math.abs(orig[i]) / 16 + s * 0x1p-9f + Math.abs(orig[i]) / 128, n + "[" + i + "] vs the bf16 original");
                }
                // The artifact packer reads the same values as bf16 bytes.
                MemorySegment bytes = c.raw(n);
                for (int i = 0; i < deq.length; i++) {
                    short bits = bytes.getAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), i);
                    assertEquals(deq[i], Float.intBitsToFloat(bits << 16));
                }
            }
            // The model runs, and its logits stay close to the bf16 model's.
            int[] prompt = {1, 2, 3, 4, 5, 6, 7};
            int[] pos = {0, 1, 2, 3, 4, 5, 6};
            float[] a = new ReferenceModel(ModelImport.stepGraph(c), c, 1, 8).step(prompt, pos, new int[7], new int[]{6})[0];
            float[] b = new ReferenceModel(ModelImport.stepGraph(ref), ref, 1, 8).step(prompt, pos, new int[7], new int[]{6})[0];
            double cos = cosine(a, b);
            assertTrue(cos > 0.99, "cosine(fp8 logits, bf16 logits) = " + cos);
        }
    }

    static double cosine(float[] a, float[] b) {
        double ab = 0, aa = 0, bb = 0;
        for (int i = 0; i < a.length; i++) {
            ab += (double) a[i] * b[i];
            aa += (double) a[i] * a[i];
            bb += (double) b[i] * b[i];
        }
        return ab / Math.sqrt(aa * bb);
    }
}
