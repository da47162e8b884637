package dev.moec.frontend.arch;

import dev.moec.frontend.testmodel.TestModels;
import dev.moec.ir.DType;
import dev.moec.ir.Graph;
import dev.moec.ir.TensorType;
import dev.moec.ir.Value;
import dev.moec.ir.interp.Interpreter;
import dev.moec.ir.interp.RefTensor;
import dev.moec.ir.interp.TensorStore;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

/**
 * Each family's MoE block (its own router construction) on hand-set weights whose output is known in
 * closed form. With x = [a, 1, 0, 0], router row e = [r_e, 0, 0, 0] makes the router logits r_e * a; expert
 * e has one live unit (gate g_e, up u_e) and writes d_e * silu(g_e) * u_e to output 0 and twice that to
 * output 3. The expected output is computed here from the family's routing rule, written out again in
 * plain Java: scores (softmax or sigmoid), selection (with bias and group limit), weights (unbiased,
 * renormalized, scaled).
 */
class AnalyticMoeTest {
    static final int H = 4, I = 2;

    @ParameterizedTest
    @ValueSource(strings = {"qwen3_moe", "deepseek_v3", "deepseek_v32", "minimax_m2", "qwen3_next", "qwen3_5_moe"})
    void moeBlockMatchesItsClosedForm(String arch) throws Exception {
        ModelConfig c = new ModelConfig(Path.of(arch + ".json"), TestModels.config(arch, "tiny"));
        StepBuilder.Router r = switch (arch) {
            case "qwen3_moe" -> Qwen3.router(c, "m.");
            case "deepseek_v3", "deepseek_v32" -> DeepSeekV3.router(c, "m.");
            case "minimax_m2" -> MiniMaxM2.router(c, "m.");
            case "qwen3_next" -> Qwen3Next.router(c, false, "m.");
            default -> Qwen3Next.router(c.section("text_config"), true, "m.");
        };
        int e = (int) r.experts(), k = (int) r.topK();
        Random rnd = new Random(arch.hashCode());
        double[] router = new double[e], bias = new double[e], g = new double[e], u = new double[e], d = new double[e];
        for (int j = 0; j < e; j++) {
            router[j] = rnd.nextDouble() * 4 - 2;
            bias[j] = rnd.nextDouble() - 0.5;
            g[j] = rnd.nextDouble() * 2 - 0.5;
            u[j] = rnd.nextDouble() + 0.5;
            d[j] = rnd.nextDouble() * 2 - 1;
        }
        Map<String, float[]> w = new HashMap<>();
        Map<String, TensorType> types = new HashMap<>();
        put(w, types, r.tensor(), new int[]{e, H}, (idx) -> idx[1] == 0 ? router[idx[0]] : 0);
        if (r.biasTensor() != null) put(w, types, r.biasTensor(), new int[]{e}, idx -> bias[idx[0]]);
        for (int j = 0; j < e; j++) {
            int ex = j;
            put(w, types, "m.gate." + j, new int[]{I, H}, idx -> idx[0] == 0 && idx[1] == 1 ? g[ex] : 0);
            put(w, types, "m.up." + j, new int[]{I, H}, idx -> idx[0] == 0 && idx[1] == 1 ? u[ex] : 0);
            put(w, types, "m.down." + j, new int[]{H, I}, idx -> idx[1] == 0 && (idx[0] == 0 || idx[0] == 3) ? d[ex] * (idx[0] == 3 ? 2 : 1) : 0);
        }

        StepBuilder b = new StepBuilder("moe_block", (name, shape) -> types.get(name));
        Value x = b.input("x", TensorType.of(DType.F32, "T", H));
        Value y = b.moe("m.", x, r, StepBuilder.Experts.stacked("m.gate.*", "m.up.*", "m.down.*", I), null);
        Graph graph = b.g.build(List.of(y));

        double[] as = {1.0, -0.7, 2.5};
        float[] xs = new float[as.length * H];
        for (int t = 0; t < as.length; t++) {
            xs[t * H] = (float) as[t];
            xs[t * H + 1] = 1;
        }
        Map<String, RefTensor> in = new HashMap<>();
        in.put("x", RefTensor.f32(new int[]{as.length, H}, xs));
        // The step inputs every StepBuilder declares; the MoE block reads none of them.
        for (String unused : List.of("tokens", "positions", "slots")) in.put(unused, RefTensor.i32(new int[]{as.length}, new int[as.length]));
        in.put("logit_rows", RefTensor.i32(new int[]{1}, new int[1]));
        float[] got = new Interpreter(new MapStore(w, types)).run(graph, in).get(y.name()).f();

        float[] want = new float[as.length * H];
        for (int t = 0; t < as.length; t++) {
            double[] weights = new double[e];
            int[] chosen = route(r, router, bias, as[t], weights);
            double sum = 0;
            for (int s = 0; s < k; s++) {
                int ex = chosen[s];
                sum += weights[s] * d[ex] * (g[ex] / (1 + Math.exp(-g[ex]))) * u[ex];
            }
            want[t * H] = (float) sum;
            want[t * H + 3] = (float) (2 * sum);
        }
        assertArrayEquals(want, got, 1e-5f, arch);
    }

    /** The family's routing for one token, independently of the IR: fills weights[0..k), returns the experts. */
    static int[] route(StepBuilder.Router r, double[] router, double[] bias, double a, double[] weights) {
        int e = (int) r.experts(), k = (int) r.topK();
        double[] scores = new double[e], choice = new double[e];
        if (r.sigmoid()) {
            for (int j = 0; j < e; j++) scores[j] = 1 / (1 + Math.exp(-router[j] * a));
        } else {
            double max = Double.NEGATIVE_INFINITY, z = 0;
            for (int j = 0; j < e; j++) max = Math.max(max, router[j] * a);
            for (int j = 0; j < e; j++) z += Math.exp(router[j] * a - max);
            for (int j = 0; j < e; j++) scores[j] = Math.exp(router[j] * a - max) / z;
        }
        for (int j = 0; j < e; j++) choice[j] = scores[j] + (r.biasTensor() != null ? bias[j] : 0);
        if (r.groups() > 1) {
            int size = (int) (e / r.groups());
            double[] groupScore = new double[(int) r.groups()];
            for (int gr = 0; gr < r.groups(); gr++) {
                double[] m = Arrays.copyOfRange(choice, gr * size, (gr + 1) * size);
                Arrays.sort(m);
                groupScore[gr] = m[size - 1] + m[size - 2];
            }
            Set<Integer> keep = new java.util.HashSet<>();
            for (int i : best(groupScore, (int) r.keepGroups())) keep.add(i);
            for (int j = 0; j < e; j++) if (!keep.contains(j / size)) choice[j] = Double.NEGATIVE_INFINITY;
        }
        int[] chosen = best(choice, k);
        double sum = 0;
        for (int s = 0; s < k; s++) sum += weights[s] = scores[chosen[s]];
        for (int s = 0; s < k; s++) {
            if (r.renorm()) weights[s] /= sum;
            weights[s] *= r.routedScaling();
        }
        return chosen;
    }

    private static int[] best(double[] v, int k) {
        Integer[] order = new Integer[v.length];
        for (int i = 0; i < v.length; i++) order[i] = i;
        Arrays.sort(order, (p, q) -> v[p] != v[q] ? Double.compare(v[q], v[p]) : Integer.compare(p, q));
        int[] out = new int[k];
        for (int i = 0; i < k; i++) out[i] = order[i];
        return out;
    }

    private interface Fill { double at(int[] idx); }

    private static void put(Map<String, float[]> w, Map<String, TensorType> types, String name, int[] shape, Fill fill) {
        int n = (int) RefTensor.volume(shape);
        float[] data = new float[n];
        int[] idx = new int[shape.length];
        for (int flat = 0; flat < n; flat++) {
            int rem = flat;
            for (int i = shape.length - 1; i >= 0; i--) {
                idx[i] = rem % shape[i];
                rem /= shape[i];
            }
            data[flat] = (float) fill.at(idx);
        }
        w.put(name, data);
        types.put(name, TensorType.of(DType.F32, Arrays.stream(shape).boxed().toArray()));
    }

    /** Hand-set weights in memory. */
    record MapStore(Map<String, float[]> data, Map<String, TensorType> types) implements TensorStore {
        @Override public Set<String> names() { return types.keySet(); }
        @Override public TensorType type(String name) { return types.get(name); }
        @Override public float[] readF32(String name) { return data.get(name).clone(); }
        @Override public MemorySegment raw(String name) { throw new IllegalArgumentException("in-memory weights have no stored bytes"); }
    }
}
