package dev.moec.tests;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.moec.executor.ReferenceModel;
import dev.moec.executor.StepModel;
import dev.moec.frontend.Checkpoint;
import dev.moec.frontend.ModelImport;
import dev.moec.ir.Attrs;
import dev.moec.ir.Graph;
import dev.moec.ir.Node;
import dev.moec.ir.Op;
import dev.moec.ir.ParamCount;
import dev.moec.ir.Shape;
import dev.moec.ir.TensorType;
import dev.moec.ir.Value;
import dev.moec.ir.Verifier;
import dev.moec.ir.interp.TensorStore;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.MemorySegment;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every family, at the model level, on the reference interpreter: the real configs import with the
 * published sizes; the tiny checkpoints carry the real tensor names and shapes; batched prefill equals
 * token-by-token decode; an MoE whose experts are all equal equals its dense twin; the chunked gated
 * delta rule equals the step recurrence inside a whole model. (Each family's MoE block against a closed
 * form is {@code AnalyticMoeTest} in the frontend.)
 */
class FamiliesTest {
    static final String[] FAMILIES = {"qwen3", "qwen3_moe", "deepseek_v3", "deepseek_v32", "minimax_m2", "qwen3_next", "qwen3_5_moe"};
    static final int[] PROMPT = {3, 17, 101, 7, 42, 250, 9, 64, 5, 12};

    // ---- real configs --------------------------------------------------------------------------------

    /** Published sizes (total / active per token, billions) from each model's card; our counts include embeddings. */
    @ParameterizedTest(name = "{0}")
    @CsvSource({
            "qwen3-32b.json,          32.8, 32.8, 0.02",
            "qwen3-30b-a3b.json,      30.5, 3.3,  0.03",
            "qwen3-235b-a22b.json,    235,  22,   0.03",
            "deepseek-v3.json,        671,  37,   0.03",
            "deepseek-v3.2.json,      671,  37,   0.04",
            "minimax-m2.5.json,       230,  10,   0.11",
            "qwen3-next-80b-a3b.json, 80,   3.9,  0.02"})
    void realConfigsImportWithThePublishedSizes(String file, double totalB, double activeB, double tolerance) throws Exception {
        Path config = resource("/fixtures/configs/" + file);
        Graph g = ModelImport.stepGraphFromConfig(config);
        assertTrue(Verifier.check(g).isEmpty());
        ModelImport.mtpGraphFromConfig(config).ifPresent(m -> assertTrue(Verifier.check(m).isEmpty()));
        ParamCount c = ParamCount.of(g);
        assertEquals(totalB, c.total() / 1e9, totalB * tolerance, file + " total");
        assertEquals(activeB, c.active() / 1e9, activeB * tolerance, file + " active");
    }

    // ---- tensor names ---------------------------------------------------------------------------------

    @ParameterizedTest
    @ValueSource(strings = {"qwen3", "qwen3_moe", "deepseek_v3", "deepseek_v32", "minimax_m2", "qwen3_next", "qwen3_5_moe"})
    void tinyCheckpointsCarryTheRealTensorNamesAndShapes(String arch) throws Exception {
        String fixture = arch.equals("deepseek_v32") ? "deepseek_v3" : arch;
        JsonNode config = new ObjectMapper().readTree(Fixtures.tinyCheckpoint(arch).resolve("config.json").toFile());
        JsonNode text = ModelImport.textConfig(config);
        Map<String, Long> sym = symbols(arch, text);
        List<String> skip = switch (arch) {
            case "deepseek_v3" -> List.of("weight_scale_inv", "indexer.");
            case "deepseek_v32", "minimax_m2" -> List.of("weight_scale_inv");
            case "qwen3_5_moe" -> List.of("experts.{e}.gate_proj");      // the FP8 release's per-expert layout
            default -> List.of();
        };
        Map<Pattern, Shape> patterns = new LinkedHashMap<>();
        Pattern line = Pattern.compile("^(\\S+)\\s+\\[([^\\]]*)\\]");
        String mtpLayer = Long.toString(text.path("num_hidden_layers").asLong());
        for (String l : read("/fixtures/" + fixture + "/tensor-names.txt").lines().toList()) {
            if (l.isBlank() || l.startsWith("#") || Character.isWhitespace(l.charAt(0))) continue;   // comments, continuations
            String name = l.split("\\s+")[0].replace("model.layers.61.", "model.layers." + mtpLayer + ".");
            if (skip.stream().anyMatch(name::contains)) continue;
            String regex = Pattern.quote(name).replace("{L}", "\\E\\d+\\Q").replace("{e}", "\\E\\d+\\Q");
            if (name.endsWith(".*")) regex = Pattern.quote(name.substring(0, name.length() - 1)) + ".*";
            Matcher m = line.matcher(l);
            patterns.put(Pattern.compile(regex), m.find() ? shape(m.group(2), sym) : null);
        }
        if (arch.equals("qwen3_5_moe")) {
            // The fixture expects Qwen3.5's MTP layer to follow Qwen3-Next's layout ("NOT verified"); moec writes it so.
            patterns.put(Pattern.compile("mtp\\..*"), null);
        }
        Map<String, Shape> actual = new TreeMap<>();
        try (Checkpoint c = Checkpoint.open(Fixtures.tinyCheckpoint(arch))) {
            for (String n : c.names()) actual.put(n, c.type(n).shape());
        }
        Set<String> unknown = new TreeSet<>();
        for (var e : actual.entrySet()) {
            List<Pattern> hits = patterns.keySet().stream().filter(p -> p.matcher(e.getKey()).matches()).toList();
            if (hits.isEmpty()) unknown.add(e.getKey());
            for (Pattern p : hits) {
                Shape want = patterns.get(p);
                if (want != null && !p.pattern().endsWith(".*")) assertEquals(want, e.getValue(), e.getKey() + " (pattern " + p + ")");
            }
        }
        assertEquals(Set.of(), unknown, "tensors the real checkpoint does not have");
        for (Pattern p : patterns.keySet()) {
            assertTrue(actual.keySet().stream().anyMatch(n -> p.matcher(n).matches()), "no tensor for the real pattern " + p);
        }
    }

    /** The fixture files' shape symbols, from the tiny config. */
    private static Map<String, Long> symbols(String arch, JsonNode c) {
        Map<String, Long> s = new HashMap<>();
        s.put("H", c.path("hidden_size").asLong());
        s.put("V", c.path("vocab_size").asLong());
        s.put("nH", c.path("num_attention_heads").asLong());
        s.put("nKV", c.path("num_key_value_heads").asLong());
        s.put("hd", c.path("head_dim").asLong());
        s.put("Im", c.path("moe_intermediate_size").asLong());
        s.put("E", c.path(c.has("n_routed_experts") ? "n_routed_experts" : c.has("num_local_experts") ? "num_local_experts" : "num_experts").asLong());
        switch (arch) {
            case "deepseek_v3", "deepseek_v32" -> {
                s.putAll(Map.of("qr", c.path("q_lora_rank").asLong(), "kvr", c.path("kv_lora_rank").asLong(), "dn", c.path("qk_nope_head_dim").asLong(),
                        "dr", c.path("qk_rope_head_dim").asLong(), "dv", c.path("v_head_dim").asLong(), "Id", c.path("intermediate_size").asLong(),
                        "S", c.path("n_shared_experts").asLong(), "nI", c.path("index_n_heads").asLong(), "dI", c.path("index_head_dim").asLong()));
                s.put("dq", s.get("dn") + s.get("dr"));
            }
            case "qwen3_next", "qwen3_5_moe" -> {
                s.putAll(Map.of("nK", c.path("linear_num_key_heads").asLong(), "nV", c.path("linear_num_value_heads").asLong(),
                        "dk", c.path("linear_key_head_dim").asLong(), "dv", c.path("linear_value_head_dim").asLong(),
                        "K", c.path("linear_conv_kernel_dim").asLong(), "Is", c.path("shared_expert_intermediate_size").asLong()));
                s.put("key_dim", s.get("nK") * s.get("dk"));
                s.put("value_dim", s.get("nV") * s.get("dv"));
                s.put("conv_dim", 2 * s.get("key_dim") + s.get("value_dim"));
            }
            default -> s.put("I", c.path("intermediate_size").asLong());
        }
        return s;
    }

    /**
     * A shape formula such as {@code nH*dq, qr} or {@code 2*key_dim+2*value_dim, H}; null when a symbol is
     * unknown, or when the formula is all numbers (the real model's sizes, which a tiny model does not keep).
     */
    private static Shape shape(String formula, Map<String, Long> sym) {
        if (!formula.matches(".*[A-Za-z].*")) return null;
        List<Long> dims = new ArrayList<>();
        for (String term : formula.split(",")) {
            long sum = 0;
            for (String product : term.trim().split("\\+")) {
                long p = 1;
                for (String f : product.trim().split("\\*")) {
                    f = f.trim();
                    if (f.matches("\\d+")) p *= Long.parseLong(f);
                    else if (sym.containsKey(f)) p *= sym.get(f);
                    else return null;
                }
                sum += p;
            }
            dims.add(sum);
        }
        return Shape.ofSizes(dims.stream().mapToLong(Long::longValue).toArray());
    }

    // ---- differential tests ---------------------------------------------------------------------------

    @ParameterizedTest
    @ValueSource(strings = {"qwen3", "qwen3_moe", "deepseek_v3", "deepseek_v32", "minimax_m2", "qwen3_next", "qwen3_5_moe"})
    void batchedPrefillMatchesTokenByToken(String arch) {
        try (Checkpoint c = Checkpoint.open(Fixtures.tinyCheckpoint(arch))) {
            StepModel m = new ReferenceModel(ModelImport.stepGraph(c), c, 2, 16);
            float[] whole = prefill(m, 0), stepwise = null;
            for (int i = 0; i < PROMPT.length; i++) stepwise = m.step(new int[]{PROMPT[i]}, new int[]{i}, new int[]{1}, new int[]{0})[0];
            float diff = Fixtures.maxAbsDiff(whole, stepwise);
            assertTrue(diff <= CompiledVsReferenceTest.TOLERANCE, arch + ": max |batched - stepwise| = " + diff);
        }
    }

    /**
     * All experts set equal to expert 0: the MoE must then equal its dense twin, expert 0 as a plain SwiGLU
     * MLP times the routing weights' sum (1 when renormalized, times routed_scaling_factor).
     */
    @ParameterizedTest
    @ValueSource(strings = {"qwen3_moe", "deepseek_v3", "deepseek_v32", "minimax_m2", "qwen3_next", "qwen3_5_moe"})
    void equalExpertsMatchTheDenseTwin(String arch) throws Exception {
        try (Checkpoint c = Checkpoint.open(Fixtures.tinyCheckpoint(arch))) {
            JsonNode text = ModelImport.textConfig(c.config());
            double scaling = text.path("routed_scaling_factor").asDouble(1.0);
            Graph moe = ModelImport.stepGraph(c);
            TensorStore equal = new EqualExperts(c, moe);
            Graph twin = denseTwin(moe, scaling);
            float[] a = prefill(new ReferenceModel(moe, equal, 1, 16), 0), b = prefill(new ReferenceModel(twin, equal, 1, 16), 0);
            float diff = Fixtures.maxAbsDiff(a, b);
            assertTrue(diff <= 1e-3f, arch + ": max |moe - dense twin| = " + diff);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"qwen3_next", "qwen3_5_moe"})
    void chunkedDeltaRuleMatchesTheStepRecurrenceInTheWholeModel(String arch) {
        try (Checkpoint c = Checkpoint.open(Fixtures.tinyCheckpoint(arch))) {
            Graph step = ModelImport.stepGraph(c);
            List<Node> nodes = new ArrayList<>();
            int rewritten = 0;
            for (Node n : step.nodes()) {
                if (n.op() == Op.GATED_DELTA_RULE) {
                    n = new Node(n.op(), n.operands(), Attrs.of("chunk_size", 4L), n.results());
                    rewritten++;
                }
                nodes.add(n);
            }
            assertEquals(3, rewritten);
            Graph chunked = Verifier.verify(step.withNodes(nodes, step.params()));
            float diff = Fixtures.maxAbsDiff(prefill(new ReferenceModel(step, c, 1, 16), 0), prefill(new ReferenceModel(chunked, c, 1, 16), 0));
            assertTrue(diff <= 1e-3f, arch + ": max |step - chunked| = " + diff);
        }
    }

    /**
     * The compiled artifact (full default pipeline, CPU target) against the reference interpreter on the
     * unoptimized graph: last-position logits within 2e-3, and 6 greedy tokens identical.
     */
    @ParameterizedTest
    @ValueSource(strings = {"qwen3", "qwen3_moe", "deepseek_v3", "deepseek_v32", "minimax_m2", "qwen3_next", "qwen3_5_moe"})
    void compiledArtifactsMatchTheReference(String arch) {
        Path artifact = Fixtures.compile(Fixtures.tinyCheckpoint(arch), List.of(1, 2));
        try (Checkpoint c = Checkpoint.open(Fixtures.tinyCheckpoint(arch));
             dev.moec.executor.CompiledModel compiled = new dev.moec.executor.CompiledModel(dev.moec.capture.Artifact.open(artifact), 1, 16, 2)) {
            StepModel reference = new ReferenceModel(ModelImport.stepGraph(c), c, 1, 16);
            float diff = Fixtures.maxAbsDiff(prefill(compiled, 0), prefill(reference, 0));
            assertTrue(diff <= CompiledVsReferenceTest.TOLERANCE, arch + ": max |compiled - reference| = " + diff);
            int[] a = dev.moec.executor.Generator.generate(compiled, 0, new int[]{5, 6, 7}, 6, dev.moec.executor.Sampler.greedy(), Set.of(), false).tokens();
            int[] b = dev.moec.executor.Generator.generate(reference, 0, new int[]{5, 6, 7}, 6, dev.moec.executor.Sampler.greedy(), Set.of(), false).tokens();
            org.junit.jupiter.api.Assertions.assertArrayEquals(b, a, arch + ": greedy tokens");
        } finally {
            deleteTree(artifact);
        }
    }

    private static void deleteTree(Path dir) {
        try (var s = java.nio.file.Files.walk(dir)) {
            s.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    private static float[] prefill(StepModel m, int slot) { return Fixtures.prefill(m, slot, PROMPT); }

    /** The graph with each moe_experts node replaced by expert 0 as a dense SwiGLU MLP, times {@code scaling}. */
    static Graph denseTwin(Graph g, double scaling) {
        List<Node> nodes = new ArrayList<>();
        for (Node n : g.nodes()) {
            if (n.op() != Op.MOE_EXPERTS) {
                nodes.add(n);
                continue;
            }
            String p = n.result().name() + ".twin.";
            Value x = n.operand(0);
            Value gate = first(nodes, p + "gate", n.operand(3)), up = first(nodes, p + "up", n.operand(4)), down = first(nodes, p + "down", n.operand(5));
            Value gv = add(nodes, Op.MATMUL, p + "g", Attrs.NONE, x, gate);
            Value uv = add(nodes, Op.MATMUL, p + "u", Attrs.NONE, x, up);
            Value act = add(nodes, Op.MUL, p + "act", Attrs.NONE, add(nodes, Op.SILU, p + "silu", Attrs.NONE, gv), uv);
            Value y = add(nodes, Op.MATMUL, p + "y", Attrs.NONE, act, down);
            nodes.add(new Node(Op.SCALE, List.of(y), Attrs.of("factor", scaling), List.of(n.result())));
        }
        return Verifier.verify(g.withNodes(nodes, g.params()));
    }

    /** Expert 0 of a stack [E, A, B] as [A, B]. */
    private static Value first(List<Node> nodes, String name, Value stack) {
        long[] s = stack.type().shape().sizes();
        Value one = add(nodes, Op.SLICE, name + "_0", Attrs.of("axis", 0L, "start", 0L, "end", 1L), stack);
        return add(nodes, Op.RESHAPE, name, Attrs.of("shape", Shape.ofSizes(s[1], s[2])), one);
    }

    private static Value add(List<Node> nodes, Op op, String name, Attrs attrs, Value... operands) {
        TensorType t = op.inferTypes(List.of(operands).stream().map(Value::type).toList(), attrs).getFirst();
        Value v = new Value(name, t);
        nodes.add(new Node(op, List.of(operands), attrs, List.of(v)));
        return v;
    }

    /** The checkpoint, except that every expert of every stack reads expert 0's weights. */
    static final class EqualExperts implements TensorStore {
        private final Checkpoint c;
        private final Map<String, String> alias = new HashMap<>();
        private final Set<String> fused = new java.util.HashSet<>();

        EqualExperts(Checkpoint c, Graph g) {
            this.c = c;
            for (var p : g.params()) {
                if (p.stacked()) for (int e = 0; e < p.value().type().shape().dim(0).size(); e++) alias.put(p.member(e), p.member(0));
                else if (p.tensor().endsWith("experts.gate_up_proj") || p.tensor().endsWith("experts.down_proj")) fused.add(p.tensor());
            }
        }

        @Override public Set<String> names() { return c.names(); }
        @Override public TensorType type(String name) { return c.type(name); }
        @Override public MemorySegment raw(String name) { return c.raw(alias.getOrDefault(name, name)); }

        @Override public float[] readF32(String name) {
            float[] v = c.readF32(alias.getOrDefault(name, name));
            if (fused.contains(name)) {       // a fused [E, A, B] tensor: copy expert 0's block to all
                int per = v.length / (int) c.type(name).shape().dim(0).size();
                for (int e = 1; e < v.length / per; e++) System.arraycopy(v, 0, v, e * per, per);
            }
            return v;
        }
    }

    private static String read(String resource) throws IOException {
        try (InputStream in = FamiliesTest.class.getResourceAsStream(resource)) {
            if (in == null) throw new IOException("missing test resource " + resource);
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
    }

    private static Path resource(String name) throws URISyntaxException {
        return Path.of(FamiliesTest.class.getResource(name).toURI());
    }
}
