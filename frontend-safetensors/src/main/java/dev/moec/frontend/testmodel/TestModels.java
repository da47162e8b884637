package dev.moec.frontend.testmodel;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.moec.frontend.arch.Architectures;
import dev.moec.frontend.arch.ModelConfig;
import dev.moec.frontend.arch.WeightTypes;
import dev.moec.frontend.safetensors.SafetensorsWriter;
import dev.moec.ir.DType;
import dev.moec.ir.Param;
import dev.moec.ir.Shape;
import dev.moec.ir.TensorType;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.Consumer;

/**
 * Writes test checkpoints in exact Hugging Face layout: the real {@code config.json} of the family with a
 * preset's sizes put in, {@code model.safetensors} with the real tensor names and shapes (taken from the
 * family's builder, so the checkpoint is exactly what import expects) and seeded random weights, and the
 * family's real tokenizer files. The same arch, preset and seed give byte-identical files.
 *
 * <p>Weights are scaled so that activations stay O(1) through the layers (embeddings N(0,1), linear
 * weights N(0, 1/in), norms 1 + N(0, 0.1^2)): logits of a random model then differ by far more than
 * rounding noise, so greedy decoding is a sharp test.
 */
public final class TestModels {
    private TestModels() {}

    /** A family's template and its presets (config key overrides). */
    public record Family(String arch, String configResource, String tokenizerResource, Map<String, Map<String, Object>> presets) {}

    private static final String QWEN_TOKENIZER = "/moec/tokenizers/qwen3", DEEPSEEK_TOKENIZER = "/moec/tokenizers/deepseek_v3";

    /** Keys set to this are removed from the config (e.g. an fp8 quantization_config for a bf16 checkpoint). */
    public static final Object REMOVE = new Object();

    private static final Map<String, Object> DEEPSEEK_TINY = ordered("hidden_size", 256, "num_hidden_layers", 3, "first_k_dense_replace", 1,
            "num_attention_heads", 4, "num_key_value_heads", 4, "q_lora_rank", 64, "kv_lora_rank", 32, "qk_nope_head_dim", 16,
            "qk_rope_head_dim", 8, "v_head_dim", 16, "intermediate_size", 256, "moe_intermediate_size", 64, "n_routed_experts", 16,
            "n_group", 4, "topk_group", 2, "num_experts_per_tok", 4, "n_shared_experts", 1, "num_nextn_predict_layers", 1,
            "quantization_config", REMOVE);

    /**
     * The families and their presets: config keys to override in the real config ("a.b" reaches into a
     * nested object). Families whose real tokenizer is not available here get a small vocabulary.
     */
    public static final List<Family> FAMILIES = List.of(
            new Family("qwen3", "/moec/configs/qwen3.json", QWEN_TOKENIZER, Map.of(
                    "tiny", ordered("hidden_size", 256, "num_hidden_layers", 4, "num_attention_heads", 4, "num_key_value_heads", 2,
                            "head_dim", 128, "intermediate_size", 512, "max_window_layers", 4))),
            new Family("qwen3_moe", "/moec/configs/qwen3_moe.json", QWEN_TOKENIZER, Map.of(
                    "tiny", ordered("hidden_size", 256, "num_hidden_layers", 4, "num_attention_heads", 4,
                            "num_key_value_heads", 2, "head_dim", 128, "num_experts", 8, "num_experts_per_tok", 2,
                            "moe_intermediate_size", 128, "intermediate_size", 512, "max_window_layers", 4,
                            "vocab_size", 151936, "tie_word_embeddings", false, "torch_dtype", "bfloat16"),
                    // the reference benchmark model of `moec bench`: about 1.42 B parameters, 388 M active per token
                    "bench", ordered("hidden_size", 1024, "num_hidden_layers", 20, "num_attention_heads", 16,
                            "num_key_value_heads", 4, "head_dim", 128, "num_experts", 64, "num_experts_per_tok", 8,
                            "moe_intermediate_size", 256, "intermediate_size", 3072, "max_window_layers", 20,
                            "vocab_size", 151936, "tie_word_embeddings", false, "torch_dtype", "bfloat16"))),
            new Family("deepseek_v3", "/moec/configs/deepseek_v3.json", DEEPSEEK_TOKENIZER, Map.of("tiny", DEEPSEEK_TINY)),
            new Family("deepseek_v32", "/moec/configs/deepseek_v32.json", DEEPSEEK_TOKENIZER, Map.of(
                    "tiny", merged(DEEPSEEK_TINY, ordered("index_n_heads", 4, "index_head_dim", 32, "index_topk", 4)))),
            new Family("minimax_m2", "/moec/configs/minimax_m2.json", null, Map.of(
                    "tiny", ordered("hidden_size", 256, "num_hidden_layers", 3, "attn_type_list", List.of(1, 1, 1), "num_attention_heads", 4,
                            "num_key_value_heads", 2, "head_dim", 64, "rotary_dim", 32, "intermediate_size", 128, "num_local_experts", 8,
                            "num_experts_per_tok", 2, "vocab_size", 2048, "quantization_config", REMOVE))),
            new Family("qwen3_next", "/moec/configs/qwen3_next.json", QWEN_TOKENIZER, Map.of(
                    "tiny", ordered("hidden_size", 256, "num_hidden_layers", 4, "num_attention_heads", 4, "num_key_value_heads", 2,
                            "head_dim", 64, "linear_num_key_heads", 2, "linear_num_value_heads", 4, "linear_key_head_dim", 32,
                            "linear_value_head_dim", 32, "num_experts", 8, "num_experts_per_tok", 2, "moe_intermediate_size", 64,
                            "shared_expert_intermediate_size", 64, "intermediate_size", 512))),
            new Family("qwen3_5_moe", "/moec/configs/qwen3_5_moe.json", null, Map.of(
                    "tiny", ordered("text_config.hidden_size", 256, "text_config.num_hidden_layers", 4, "text_config.num_attention_heads", 4,
                            "text_config.num_key_value_heads", 2, "text_config.head_dim", 64, "text_config.linear_num_key_heads", 2,
                            "text_config.linear_num_value_heads", 4, "text_config.linear_key_head_dim", 32, "text_config.linear_value_head_dim", 32,
                            "text_config.num_experts", 8, "text_config.num_experts_per_tok", 2, "text_config.moe_intermediate_size", 64,
                            "text_config.shared_expert_intermediate_size", 64, "text_config.vocab_size", 2048))));

    public static Family family(String arch) {
        return FAMILIES.stream().filter(f -> f.arch().equals(arch)).findFirst().orElseThrow(() -> new IllegalArgumentException(
                "no test model for arch '" + arch + "' (have: " + String.join(", ", FAMILIES.stream().map(Family::arch).toList()) + ")"));
    }

    /** The preset's config.json: the family's real config with the preset's keys put in. */
    public static ObjectNode config(String arch, String preset) throws IOException {
        Family family = family(arch);
        Map<String, Object> overrides = family.presets().get(preset);
        if (overrides == null) throw new IllegalArgumentException("arch " + arch + " has no preset '" + preset + "' (have: " + family.presets().keySet() + ")");
        ObjectMapper json = new ObjectMapper();
        ObjectNode config;
        try (InputStream in = resource(family.configResource())) {
            config = (ObjectNode) json.readTree(in);
        }
        overrides.forEach((k, v) -> {
            ObjectNode target = config;
            String[] path = k.split("\\.");
            for (int i = 0; i < path.length - 1; i++) target = (ObjectNode) target.get(path[i]);
            if (v == REMOVE) target.remove(path[path.length - 1]);
            else target.set(path[path.length - 1], json.valueToTree(v));
        });
        return config;
    }

    /** How the weights are stored: bf16, or block-FP8 (e4m3 with 128x128 weight_scale_inv) for the Linear weights. */
    public enum Format {
        BF16(null), FP8(null),
        /** msModelSlim formats: quant_model_description.json plus quant_model_weight_<format>.safetensors. */
        W8A8("W8A8"), W8A8_DYNAMIC("W8A8_DYNAMIC"), W4A8_DYNAMIC("W4A8_DYNAMIC");

        final String modelSlim;
        Format(String modelSlim) { this.modelSlim = modelSlim; }

        public static Format parse(String s) {
            for (Format f : values()) if (f.name().equalsIgnoreCase(s)) return f;
            throw new IllegalArgumentException("unknown format '" + s + "' (formats: bf16, fp8, w8a8, w8a8_dynamic, w4a8_dynamic)");
        }
    }

    /** Writes the checkpoint into {@code dir} (created if needed); {@code progress} gets one line per stage. */
    public static void write(String arch, String preset, long seed, Path dir, Consumer<String> progress) throws IOException {
        write(arch, preset, seed, dir, Format.BF16, progress);
    }

    public static void write(String arch, String preset, long seed, Path dir, Format format, Consumer<String> progress) throws IOException {
        Family family = family(arch);
        ObjectNode config = config(arch, preset);
        if (format == Format.FP8) {
            ObjectNode q = config.putObject("quantization_config");
            q.put("activation_scheme", "dynamic").put("fmt", "e4m3").put("quant_method", "fp8");
            q.putArray("weight_block_size").add(FP8_BLOCK).add(FP8_BLOCK);
        }
        Files.createDirectories(dir);
        ObjectMapper json = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
        Path configFile = dir.resolve("config.json");
        Files.writeString(configFile, json.writeValueAsString(config) + "\n");

        ModelConfig mc = new ModelConfig(configFile, config);
        var builder = Architectures.forConfig(mc);
        List<Param> params = new java.util.ArrayList<>(builder.buildStep(mc, WeightTypes.fromConfig(mc)).params());
        builder.buildMtp(mc, WeightTypes.fromConfig(mc)).ifPresent(mtp -> params.addAll(mtp.params()));
        Map<String, TensorType> tensors = new LinkedHashMap<>();
        for (Param p : params) {
            TensorType t = p.value().type();
            if (!p.stacked()) {
                tensors.put(p.tensor(), t);
                continue;
            }
            TensorType member = t.withShape(new Shape(t.shape().dims().subList(1, t.rank())));
            for (int e = 0; e < t.shape().dim(0).size(); e++) tensors.put(p.member(e), member);
        }
        SafetensorsWriter writer = new SafetensorsWriter().metadata("format", "pt");
        Map<String, String> description = new java.util.TreeMap<>();
        long count = 0;
        for (var e : tensors.entrySet()) {
            String name = e.getKey();
            TensorType type = e.getValue();
            if (format == Format.FP8 && fp8Quantized(name, type)) {
                writeFp8(writer, name, type, randomValues(name, type, seed));
            } else if (format.modelSlim != null && fp8Quantized(name, type)) {
                String q = name.contains(".experts.") ? (format == Format.W4A8_DYNAMIC ? "W4A8_DYNAMIC" : "W8A8_DYNAMIC")
                        : format == Format.W8A8 ? "W8A8" : "W8A8_DYNAMIC";
                for (String written : ModelSlimWriter.write(writer, name, type, randomValues(name, type, seed), q)) description.put(written, q);
            } else {
                writer.add(name, type, randomTensor(name, type, seed));
                description.put(name, "FLOAT");
            }
            count += type.shape().elements();
        }
        progress.accept(String.format("generated %d tensors, %,d parameters (seed %d)", tensors.size(), count, seed));
        String weightsFile = format.modelSlim == null ? "model.safetensors" : "quant_model_weight_" + format.modelSlim.toLowerCase() + ".safetensors";
        writer.write(dir.resolve(weightsFile));
        progress.accept("wrote " + dir.resolve(weightsFile));
        if (format.modelSlim != null) {
            ObjectNode desc = json.createObjectNode();
            desc.put("model_quant_type", format.modelSlim).put("version", "1.0.0").put("group_size", 0);
            description.forEach(desc::put);
            Files.writeString(dir.resolve("quant_model_description.json"), json.writeValueAsString(desc) + "\n");
            progress.accept("wrote quant_model_description.json (" + format.modelSlim + ")");
        }
        if (family.tokenizerResource() == null) {
            progress.accept("no " + arch + " tokenizer is available to moec: use token ids (vocabulary " + mc.json().findValue("vocab_size") + ")");
            return;
        }
        for (String f : List.of("tokenizer.json", "tokenizer_config.json", "LICENSE.npm-package")) {
            try (InputStream in = resource(family.tokenizerResource() + "/" + f)) {
                Files.copy(in, dir.resolve(f.equals("LICENSE.npm-package") ? "LICENSE.tokenizer" : f), StandardCopyOption.REPLACE_EXISTING);
            }
        }
        progress.accept("copied the " + arch + " tokenizer files");
    }

    static final int FP8_BLOCK = 128;

    /** The Linear weights a block-FP8 release quantizes: not embeddings, heads, routers, norms or biases. */
    static boolean fp8Quantized(String name, TensorType t) {
        if (t.rank() != 2 || !name.endsWith(".weight")) return false;
        for (String keep : List.of("embed_tokens", "lm_head", "shared_head.head", ".mlp.gate.weight", "block_sparse_moe.gate.weight",
                "shared_expert_gate", "weights_proj", "eh_proj")) {
            if (name.contains(keep)) return false;
        }
        return true;
    }

    /** Per 128x128 block: scale = max|w| / 448, q = e4m3(w / scale); writes the weight and its weight_scale_inv. */
    static void writeFp8(SafetensorsWriter writer, String name, TensorType type, float[] w) {
        int rows = (int) type.shape().dim(0).size(), cols = (int) type.shape().dim(1).size();
        int br = (rows + FP8_BLOCK - 1) / FP8_BLOCK, bc = (cols + FP8_BLOCK - 1) / FP8_BLOCK;
        float[] scales = new float[br * bc];
        for (int i = 0; i < rows; i++) {
            for (int j = 0; j < cols; j++) {
                int b = (i / FP8_BLOCK) * bc + j / FP8_BLOCK;
                scales[b] = Math.max(scales[b], Math.abs(w[i * cols + j]));
            }
        }
        for (int b = 0; b < scales.length; b++) scales[b] = scales[b] == 0 ? 1f : scales[b] / 448f;
        byte[] q = new byte[rows * cols];
        for (int i = 0; i < rows; i++) {
            for (int j = 0; j < cols; j++) {
                float v = w[i * cols + j] / scales[(i / FP8_BLOCK) * bc + j / FP8_BLOCK];
                q[i * cols + j] = dev.moec.frontend.Fp8.encode(dev.moec.ir.interp.Reference.roundTo(DType.F8E4M3, v));
            }
        }
        writer.add(name, type.withDType(DType.F8E4M3), q);
        writer.add(name + "_scale_inv", TensorType.of(DType.F32, br, bc), encode(scales, DType.F32));
    }

    static byte[] randomTensor(String name, TensorType type, long seed) {
        return encode(randomValues(name, type, seed), type.dtype());
    }

    static float[] randomValues(String name, TensorType type, long seed) {
        SplittableRandom rnd = new SplittableRandom(seed * 0x9E3779B97F4A7C15L ^ name.hashCode());
        int n = Math.toIntExact(type.shape().elements());
        long[] dims = type.shape().sizes();
        boolean norm = dims.length == 1;
        double std = norm ? 0.1 : name.contains("embed_tokens") ? 1.0 : 1.0 / Math.sqrt(dims[dims.length - 1]);
        float[] values = new float[n];
        for (int i = 0; i < n; i++) values[i] = (float) ((norm ? 1.0 : 0.0) + std * rnd.nextGaussian());
        return values;
    }

    static byte[] encode(float[] values, DType dtype) {
        switch (dtype) {
            case BF16 -> {
                byte[] out = new byte[values.length * 2];
                for (int i = 0; i < values.length; i++) {
                    short b = toBf16(values[i]);
                    out[2 * i] = (byte) b;
                    out[2 * i + 1] = (byte) (b >> 8);
                }
                return out;
            }
            case F32 -> {
                byte[] out = new byte[values.length * 4];
                for (int i = 0; i < values.length; i++) {
                    int b = Float.floatToRawIntBits(values[i]);
                    for (int k = 0; k < 4; k++) out[4 * i + k] = (byte) (b >> (8 * k));
                }
                return out;
            }
            default -> throw new IllegalArgumentException("test models are written in bf16 or f32, not " + dtype);
        }
    }

    /** v rounded to bf16, as a float. */
    static float bf16Value(float v) { return Float.intBitsToFloat(toBf16(v) << 16); }

    /** f32 to bf16 with round-to-nearest-even (as torch does). */
    public static short toBf16(float f) {
        int bits = Float.floatToRawIntBits(f);
        int rounding = 0x7FFF + ((bits >>> 16) & 1);
        return (short) ((bits + rounding) >>> 16);
    }

    private static InputStream resource(String path) {
        InputStream in = TestModels.class.getResourceAsStream(path);
        if (in == null) throw new UncheckedIOException(new IOException("resource " + path + " is missing from the build"));
        return in;
    }

    private static Map<String, Object> merged(Map<String, Object> a, Map<String, Object> b) {
        Map<String, Object> m = new LinkedHashMap<>(a);
        m.putAll(b);
        return m;
    }

    private static Map<String, Object> ordered(Object... kv) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) m.put((String) kv[i], kv[i + 1]);
        return m;
    }

}
