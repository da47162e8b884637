package dev.moec.frontend;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.moec.frontend.testmodel.TestModels;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The tiny qwen3_moe test checkpoint: real config keys, determinism, import (names and shapes: tests/FamiliesTest). */
class TestModelsTest {
    @TempDir static Path dir;
    static Path model;

    @BeforeAll static void write() throws IOException {
        model = dir.resolve("tiny");
        TestModels.write("qwen3_moe", "tiny", 0, model, line -> {});
    }

    @Test void configHasEveryRealKeyAndThePresetSizes() throws IOException {
        ObjectMapper json = new ObjectMapper();
        JsonNode real;
        try (InputStream in = TestModels.class.getResourceAsStream("/moec/configs/qwen3_moe.json")) {
            real = json.readTree(in);
        }
        JsonNode ours = json.readTree(model.resolve("config.json").toFile());
        for (Iterator<String> it = real.fieldNames(); it.hasNext(); ) {
            String key = it.next();
            assertTrue(ours.has(key), "config.json lacks the real key " + key);
        }
        assertEquals(256, ours.get("hidden_size").asInt());
        assertEquals(4, ours.get("num_hidden_layers").asInt());
        assertEquals(4, ours.get("num_attention_heads").asInt());
        assertEquals(2, ours.get("num_key_value_heads").asInt());
        assertEquals(128, ours.get("head_dim").asInt());
        assertEquals(8, ours.get("num_experts").asInt());
        assertEquals(2, ours.get("num_experts_per_tok").asInt());
        assertEquals(128, ours.get("moe_intermediate_size").asInt());
        assertEquals(151936, ours.get("vocab_size").asInt());
        assertFalse(ours.get("tie_word_embeddings").asBoolean());
        assertEquals("qwen3_moe", ours.get("model_type").asText());
    }

    @Test void theSameSeedGivesByteIdenticalFilesAndAnotherSeedDoesNot() throws IOException {
        Path again = dir.resolve("again"), other = dir.resolve("other");
        TestModels.write("qwen3_moe", "tiny", 0, again, line -> {});
        TestModels.write("qwen3_moe", "tiny", 1, other, line -> {});
        for (String f : List.of("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")) {
            assertArrayEquals(Files.readAllBytes(model.resolve(f)), Files.readAllBytes(again.resolve(f)), f);
        }
        assertFalse(java.util.Arrays.equals(Files.readAllBytes(model.resolve("model.safetensors")), Files.readAllBytes(other.resolve("model.safetensors"))));
    }

    @Test void theStepGraphImportsFromTheCheckpoint() {
        try (Checkpoint c = Checkpoint.open(model)) {
            var g = ModelImport.stepGraph(c);
            assertEquals(82_521_344L, g.parameterElements());
            Map<String, Integer> ops = new HashMap<>();
            g.nodes().forEach(n -> ops.merge(n.op().text(), 1, Integer::sum));
            assertEquals(4, ops.get("moe_experts"));
            assertEquals(4, ops.get("attention"));
        }
    }

}
