package dev.moec.ir;

import dev.moec.ir.interp.RefTensor;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

import java.util.EnumSet;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Each op's reference semantics on a case small enough to compute by hand (the arithmetic is in the
 * comments). The last check holds that every op of the table was exercised here.
 */
class ReferenceSemanticsTest {
    private static final float EPS = 1e-6f;
    private static final Set<Op> COVERED = EnumSet.noneOf(Op.class);
    private static final float E = (float) Math.E;

    private static List<RefTensor> eval(Op op, Attrs a, RefTensor... in) {
        COVERED.add(op);
        List<RefTensor> out = op.semantics().eval(List.of(in), a);
        // The type rule, applied to the concrete operand types, must predict the results' types exactly.
        List<TensorType> predicted = op.inferTypes(java.util.Arrays.stream(in).map(ReferenceSemanticsTest::typeOf).toList(), a);
        assertEquals(predicted, out.stream().map(ReferenceSemanticsTest::typeOf).toList(), op.text() + ": type rule vs semantics");
        return out;
    }

    private static TensorType typeOf(RefTensor t) {
        return new TensorType(t.dtype(), Shape.ofSizes(java.util.Arrays.stream(t.shape()).asLongStream().toArray()));
    }

    private static RefTensor f(int[] shape, float... v) { return RefTensor.f32(shape, v); }
    private static RefTensor i(int[] shape, int... v) { return RefTensor.i32(shape, v); }
    private static RefTensor i8(int[] shape, int... v) { return RefTensor.ofInts(DType.I8, shape, v); }
    private static int[] s(int... dims) { return dims; }

    @AfterAll static void everyOpIsCovered() {
        assertEquals(EnumSet.allOf(Op.class), COVERED, "ops without a hand-computed case");
    }

    // ---- embedding, norms, linear algebra, shapes

    @Test void gatherPicksRows() {
        RefTensor out = eval(Op.GATHER, Attrs.NONE, f(s(3, 2), 0, 1, 10, 11, 20, 21), i(s(2), 2, 0)).getFirst();
        assertArrayEquals(new float[]{20, 21, 0, 1}, out.f());
        assertArrayEquals(s(2, 2), out.shape());
    }

    @Test void rmsNormScalesByRootMeanSquare() {
        // x = [3, 4]: mean square 12.5, so x / sqrt(12.5) * w; with weight_offset 1, * (1 + w).
        double r = Math.sqrt(12.5);
        RefTensor out = eval(Op.RMS_NORM, Attrs.of("eps", 0.0), f(s(1, 2), 3, 4), f(s(2), 1, 2)).getFirst();
        assertArrayEquals(new float[]{(float) (3 / r), (float) (8 / r)}, out.f(), EPS);
        out = eval(Op.RMS_NORM, Attrs.of("eps", 0.0, "weight_offset", 1.0), f(s(1, 2), 3, 4), f(s(2), 0, 1)).getFirst();
        assertArrayEquals(new float[]{(float) (3 / r), (float) (8 / r)}, out.f(), EPS);
    }

    @Test void layerNormCentresAndScales() {
        // [1, 3]: mean 2, variance 1 -> [-1, 1]; * [2, 2] + [1, 0] -> [-1, 2].
        RefTensor out = eval(Op.LAYER_NORM, Attrs.of("eps", 0.0), f(s(1, 2), 1, 3), f(s(2), 2, 2), f(s(2), 1, 0)).getFirst();
        assertArrayEquals(new float[]{-1, 2}, out.f(), EPS);
    }

    @Test void l2NormMakesUnitRows() {
        assertArrayEquals(new float[]{0.6f, 0.8f}, eval(Op.L2_NORM, Attrs.of("eps", 0.0), f(s(1, 2), 3, 4)).getFirst().f(), EPS);
    }

    @Test void matmulUsesTheLinearLayout() {
        // x [1,2] = [1, 2]; w [3,2] rows (1,0), (0,1), (1,1) -> [1, 2, 3].
        RefTensor out = eval(Op.MATMUL, Attrs.NONE, f(s(1, 2), 1, 2), f(s(3, 2), 1, 0, 0, 1, 1, 1)).getFirst();
        assertArrayEquals(new float[]{1, 2, 3}, out.f(), EPS);
    }

    @Test void headMatmulUsesEachHeadsOwnWeight() {
        // head 0: [2] x rows (1), (10) -> [2, 20]; head 1: [3] x rows (-1), (5) -> [-3, 15].
        RefTensor out = eval(Op.HEAD_MATMUL, Attrs.NONE, f(s(1, 2, 1), 2, 3), f(s(2, 2, 1), 1, 10, -1, 5)).getFirst();
        assertArrayEquals(new float[]{2, 20, -3, 15}, out.f(), EPS);
    }

    @Test void reshapeKeepsRowMajorOrder() {
        RefTensor out = eval(Op.RESHAPE, Attrs.of("shape", Shape.of(3, 2)), f(s(2, 3), 1, 2, 3, 4, 5, 6)).getFirst();
        assertArrayEquals(s(3, 2), out.shape());
        assertArrayEquals(new float[]{1, 2, 3, 4, 5, 6}, out.f());
    }

    @Test void castRoundsToNearestEven() {
        // bf16 keeps 7 mantissa bits: 1 + 2^-8 is halfway between 1 and 1 + 2^-7 -> 1 (even);
        // 1 + 3 * 2^-8 is halfway between 1 + 2^-7 and 1 + 2^-6 -> 1 + 2^-6 (even).
        RefTensor out = eval(Op.CAST, Attrs.of("dtype", "bf16"), f(s(2), 1.00390625f, 1.01171875f)).getFirst();
        assertEquals(DType.BF16, out.dtype());
        assertArrayEquals(new float[]{1f, 1.015625f}, out.f());
    }

    @Test void sliceConcatRepeat() {
        RefTensor x = f(s(2, 3), 1, 2, 3, 4, 5, 6);
        assertArrayEquals(new float[]{2, 3, 5, 6}, eval(Op.SLICE, Attrs.of("axis", 1L, "start", 1L, "end", 3L), x).getFirst().f());
        RefTensor c = eval(Op.CONCAT, Attrs.of("axis", -1L), f(s(2, 1), 1, 2), f(s(2, 2), 3, 4, 5, 6)).getFirst();
        assertArrayEquals(new float[]{1, 3, 4, 2, 5, 6}, c.f());
        assertArrayEquals(s(2, 3), c.shape());
        assertArrayEquals(new float[]{7, 7, 8, 8}, eval(Op.REPEAT, Attrs.of("axis", 1L, "times", 2L), f(s(1, 2), 7, 8)).getFirst().f());
    }

    // ---- positions, caches, attention

    @Test void ropeRotatesNeoxPairs() {
        // head_dim 2, rotary 2: one pair (x0, x1) rotated by pos * theta^0 = pos radians.
        RefTensor out = eval(Op.ROPE, Attrs.of("theta", 10000.0, "rotary_dim", 2L), f(s(1, 1, 2), 1, 0), i(s(1), 1)).getFirst();
        assertArrayEquals(new float[]{(float) Math.cos(1), (float) Math.sin(1)}, out.f(), EPS);
    }

    @Test void ropeRotatesInterleavedPairs() {
        // rotary 4, theta 100, interleaved: pair (0,1) at frequency 1, pair (2,3) at 100^(-2/4) = 0.1.
        RefTensor out = eval(Op.ROPE, Attrs.of("theta", 100.0, "rotary_dim", 4L, "interleaved", true), f(s(1, 1, 4), 1, 0, 1, 0), i(s(1), 1)).getFirst();
        assertArrayEquals(new float[]{(float) Math.cos(1), (float) Math.sin(1), (float) Math.cos(0.1), (float) Math.sin(0.1)}, out.f(), EPS);
    }

    @Test void ropeTableWithYarn() {
        // rotary 4, theta 1e4, original 4096, beta 32/1: correction dims 0.65 -> low 0 and 1.41 -> high 2.
        // Pair 0 keeps frequency 1; pair 1 (0.01) is half interpolated: 0.01/40 * 0.5 + 0.01 * 0.5 = 0.005125.
        List<RefTensor> cs = eval(Op.ROPE_COS_SIN, Attrs.of("theta", 10000.0, "rotary_dim", 4L, "yarn_factor", 40.0,
                "yarn_original_max", 4096L, "yarn_beta_fast", 32.0, "yarn_beta_slow", 1.0), i(s(1), 100));
        assertArrayEquals(new float[]{(float) Math.cos(100), (float) Math.cos(0.5125)}, cs.get(0).f(), EPS);
        assertArrayEquals(new float[]{(float) Math.sin(100), (float) Math.sin(0.5125)}, cs.get(1).f(), EPS);
    }

    @Test void applyRotaryUsesTheGivenTable() {
        // cos 0, sin 1 (a quarter turn): (1, 2) -> (1*0 - 2*1, 2*0 + 1*1) = (-2, 1).
        RefTensor out = eval(Op.APPLY_ROTARY, Attrs.of("rotary_dim", 2L), f(s(1, 1, 2), 1, 2), f(s(1, 1), 0), f(s(1, 1), 1)).getFirst();
        assertArrayEquals(new float[]{-2, 1}, out.f(), EPS);
    }

    @Test void kvWriteAndAttentionAreCausal() {
        // One slot, three cache blocks of one position, one kv head of dim 1. The block table puts position 0
        // in block 2 and position 1 in block 0; block 1 is not the slot's. Token 0 at position 0 sees only itself.
        RefTensor cache = RefTensor.zerosF32(3, 1, 1, 1), table = i(s(1, 2), 2, 0);
        RefTensor slots = i(s(2), 0, 0), pos = i(s(2), 0, 1);
        RefTensor k = eval(Op.KV_WRITE, Attrs.NONE, cache, f(s(2, 1, 1), 0, 0), table, slots, pos).getFirst();
        RefTensor v = eval(Op.KV_WRITE, Attrs.NONE, cache, f(s(2, 1, 1), 10, 20), table, slots, pos).getFirst();
        assertArrayEquals(new float[]{0, 0, 0}, cache.f(), "kv_write must not modify its operand");
        assertArrayEquals(new float[]{20, 0, 10}, v.f(), "position 1 in block 0, position 0 in block 2");
        // Equal scores: token 0 reads v[0] = 10; token 1 averages 10 and 20.
        RefTensor a = eval(Op.ATTENTION, Attrs.of("scale", 1.0), f(s(2, 1, 1), 1, 1), k, v, table, slots, pos).getFirst();
        assertArrayEquals(new float[]{10, 15}, a.f(), EPS);
        RefTensor fia = eval(Op.FUSED_INFER_ATTENTION, Attrs.of("num_heads", 1L, "num_kv_heads", 1L, "scale", 1.0, "sparse_mode", 3L,
                "input_layout", "TND"), f(s(2, 1, 1), 1, 1), k, v, table, slots, pos).getFirst();
        assertArrayEquals(a.f(), fia.f());
    }

    @Test void aBf16CacheStoresRowsRoundedToBf16() {
        // bf16 keeps 7 mantissa bits: 1 + 2^-8 is a tie and rounds to even (1), 1 + 3 * 2^-8 to 1 + 2^-6.
        RefTensor cache = RefTensor.of(DType.BF16, s(1, 2, 1, 1), new float[2]), table = i(s(1, 1), 0);
        RefTensor c = eval(Op.KV_WRITE, Attrs.NONE, cache, f(s(2, 1, 1), 1 + 0x1p-8f, 1 + 3 * 0x1p-8f), table, i(s(2), 0, 0), i(s(2), 0, 1)).getFirst();
        assertEquals(DType.BF16, c.dtype());
        assertArrayEquals(new float[]{1, 1 + 0x1p-6f}, c.f());
        // Attention reads the rounded rows: equal scores average them.
        RefTensor a = eval(Op.ATTENTION, Attrs.of("scale", 0.0), f(s(1, 1, 1), 1), c, c, table, i(s(1), 0), i(s(1), 1)).getFirst();
        assertArrayEquals(new float[]{1 + 0x1p-7f}, a.f(), 1e-7f);
    }

    @Test void pagedCachesRefuseUnassignedBlocks() {
        // Position 1 of the slot has no block (-1): writing it, or attending over it, is an error, not a silent read.
        RefTensor cache = RefTensor.zerosF32(2, 1, 1, 1), table = i(s(1, 2), 0, -1);
        var write = assertThrows(IndexOutOfBoundsException.class,
                () -> eval(Op.KV_WRITE, Attrs.NONE, cache, f(s(1, 1, 1), 5), table, i(s(1), 0), i(s(1), 1)));
        assertTrue(write.getMessage().contains("not assigned"), write.getMessage());
        var beyond = assertThrows(IndexOutOfBoundsException.class,
                () -> eval(Op.KV_WRITE, Attrs.NONE, cache, f(s(1, 1, 1), 5), table, i(s(1), 0), i(s(1), 2)));
        assertTrue(beyond.getMessage().contains("outside the block table"), beyond.getMessage());
        assertThrows(IndexOutOfBoundsException.class,
                () -> eval(Op.ATTENTION, Attrs.of("scale", 1.0), f(s(1, 1, 1), 1), cache, cache, table, i(s(1), 0), i(s(1), 1)));
    }

    @Test void int8CacheWritesAndAttends() {
        // One slot, two blocks of one position (position 0 in block 1, position 1 in block 0), one head of dim 2.
        // Token rows k = (2, -1), (0.5, 1); v = (10, 0), (0, 20).
        // k row 0: scale 2/127, q = (127, -64) (-63.5 to even); k row 1: scale 1/127, q = (64, 127) (63.5 to even).
        RefTensor kc = RefTensor.ofInts(DType.I8, s(2, 1, 1, 2), new int[4]), ks = RefTensor.zerosF32(2, 1, 1), table = i(s(1, 2), 1, 0);
        RefTensor slots = i(s(2), 0, 0), pos = i(s(2), 0, 1);
        List<RefTensor> k = eval(Op.KV_WRITE_INT8, Attrs.NONE, kc, ks, f(s(2, 1, 2), 2, -1, 0.5f, 1), table, slots, pos);
        assertArrayEquals(s(64, 127, 127, -64), k.get(0).i());
        assertArrayEquals(new float[]{1 / 127f, 2 / 127f}, k.get(1).f(), EPS);
        List<RefTensor> v = eval(Op.KV_WRITE_INT8, Attrs.NONE, kc, ks, f(s(2, 1, 2), 10, 0, 0, 20), table, slots, pos);
        // Token 0 (position 0) reads only row 0: its value dequantizes exactly to (10, 0).
        RefTensor a = eval(Op.FUSED_INFER_ATTENTION_INT8, Attrs.of("num_heads", 1L, "num_kv_heads", 1L, "scale", 1.0, "sparse_mode", 3L, "input_layout", "TND"),
                f(s(2, 1, 2), 1, 0, 1, 0), k.get(0), k.get(1), v.get(0), v.get(1), table, slots, pos).getFirst();
        assertArrayEquals(new float[]{10, 0}, java.util.Arrays.copyOf(a.f(), 2), 1e-5f);
    }

    @Test void mlaAttentionExpandsTheLatentCache() {
        // w_kv_b rows: k_nope = 2c, v = 3c. Cache rows [c | k_pe]: pos 0 = [1 | 0] (in block 1), pos 1 = [0 | 1] (in block 0).
        // Token at pos 1, q_nope = q_pe = 1: scores 2 and 1, values 3 and 0 -> 3 e^2 / (e^2 + e) = 3e / (e + 1).
        RefTensor qn = f(s(1, 1, 1), 1), qp = f(s(1, 1, 1), 1), cache = f(s(2, 1, 1, 2), 0, 1, 1, 0), w = f(s(2, 1), 2, 3);
        RefTensor table = i(s(1, 2), 1, 0);
        Attrs a = Attrs.of("scale", 1.0, "v_head_dim", 1L);
        RefTensor out = eval(Op.MLA_ATTENTION, a, qn, qp, cache, w, table, i(s(1), 0), i(s(1), 1)).getFirst();
        assertArrayEquals(new float[]{3 * E / (E + 1)}, out.f(), 1e-5f);
        Attrs fia = Attrs.of("num_heads", 1L, "scale", 1.0, "v_head_dim", 1L, "sparse_mode", 3L, "input_layout", "TND");
        assertArrayEquals(out.f(), eval(Op.FUSED_INFER_ATTENTION_MLA, fia, qn, qp, cache, w, table, i(s(1), 0), i(s(1), 1)).getFirst().f());
        assertArrayEquals(new float[]{0}, eval(Op.SPARSE_FLASH_ATTENTION, Attrs.of("num_heads", 1L, "scale", 1.0, "v_head_dim", 1L),
                qn, qp, cache, w, table, i(s(1), 0), i(s(1), 1), i(s(1, 2), 1, -1)).getFirst().f(), EPS);
        // Restricted to position 1 the value is 0; to position 0, 3.
        assertArrayEquals(new float[]{0}, eval(Op.MLA_ATTENTION_SPARSE, a, qn, qp, cache, w, table, i(s(1), 0), i(s(1), 1), i(s(1, 2), 1, -1)).getFirst().f(), EPS);
        assertArrayEquals(new float[]{3}, eval(Op.MLA_ATTENTION_SPARSE, a, qn, qp, cache, w, table, i(s(1), 0), i(s(1), 1), i(s(1, 2), 0, -1)).getFirst().f(), EPS);
    }

    @Test void indexerPicksTheBestEarlierPositions() {
        // keys -1, 2, 1 at positions 0..2 (blocks of two: positions 0, 1 in block 1, position 2 in block 0, whose
        // second row, 9, is no position of the slot); q = 1, weight 1: relu scores 0, 2, 1 -> positions 1, 2, 0, then -1.
        RefTensor out = eval(Op.INDEXER_TOPK, Attrs.of("topk", 4L, "scale", 1.0), f(s(1, 1, 1), 1), f(s(2, 2, 1, 1), 1, 9, -1, 2),
                f(s(1, 1), 1), i(s(1, 2), 1, 0), i(s(1), 0), i(s(1), 2)).getFirst();
        assertArrayEquals(s(1, 2, 0, -1), out.i());
    }

    @Test void hadamardIsTheSylvesterTransform() {
        // H4 [1,2,3,4] = [10, -2, -4, 0].
        assertArrayEquals(new float[]{5, -1, -2, 0}, eval(Op.HADAMARD, Attrs.of("scale", 0.5), f(s(1, 4), 1, 2, 3, 4)).getFirst().f(), EPS);
    }

    @Test void causalConvolutionCarriesItsState() {
        // weights [1, 2, 3] (oldest first), inputs 1, 10, 100 at positions 0..2 of slot 0; the stale state is reset at 0.
        // y = 3, 2 + 30, 1 + 20 + 300; the state keeps [10, 100]; then 1000 at position 3 -> 10 + 200 + 3000.
        RefTensor w = f(s(1, 3), 1, 2, 3);
        List<RefTensor> r = eval(Op.CAUSAL_CONV1D, Attrs.NONE, f(s(3, 1), 1, 10, 100), w, f(s(1, 2, 1), 5, 5), i(s(3), 0, 0, 0), i(s(3), 0, 1, 2));
        assertArrayEquals(new float[]{3, 32, 321}, r.get(0).f(), EPS);
        assertArrayEquals(new float[]{10, 100}, r.get(1).f(), EPS);
        r = eval(Op.CAUSAL_CONV1D, Attrs.NONE, f(s(1, 1), 1000), w, r.get(1), i(s(1), 0), i(s(1), 3));
        assertArrayEquals(new float[]{3210}, r.get(0).f(), EPS);
    }

    @Test void gatedDeltaRuleStepRecurrence() {
        // Dk = Dv = 1. Token 0: S = 0; delta = (2 - 0) * 0.5 = 1; S = 1; o = q S = 1.
        // Token 1: decay 0.5 -> S = 0.5; delta = (4 - 0.5) * 1 = 3.5; S = 4; o = 2 * 4 = 8.
        List<RefTensor> r = eval(Op.GATED_DELTA_RULE, Attrs.NONE, f(s(2, 1, 1), 1, 2), f(s(2, 1, 1), 1, 1), f(s(2, 1, 1), 2, 4),
                f(s(2, 1), 0, (float) Math.log(0.5)), f(s(2, 1), 0.5f, 1), f(s(1, 1, 1, 1), 9), i(s(2), 0, 0), i(s(2), 0, 1));
        assertArrayEquals(new float[]{1, 8}, r.get(0).f(), 1e-5f);
        assertArrayEquals(new float[]{4}, r.get(1).f(), 1e-5f);
    }

    @Test void gatedDeltaRuleChunkedFormEqualsTheStepRecurrence() {
        // Random inputs, two slots: slot 0 prefills 11 tokens from scratch, slot 1 continues 5 tokens from a
        // non-zero state; chunks of 1, 3, 4 and 16 against the step recurrence.
        java.util.Random r = new java.util.Random(3);
        int t = 16, h = 2, dk = 4, dv = 3;
        float[] q = new float[t * h * dk], k = new float[t * h * dk], v = new float[t * h * dv], g = new float[t * h], b = new float[t * h];
        for (int i = 0; i < q.length; i++) { q[i] = (float) r.nextGaussian() * 0.5f; k[i] = (float) r.nextGaussian() * 0.5f; }
        for (int i = 0; i < v.length; i++) v[i] = (float) r.nextGaussian();
        for (int i = 0; i < g.length; i++) { g[i] = (float) -Math.abs(r.nextGaussian()) * 0.3f; b[i] = r.nextFloat(); }
        float[] s0 = new float[2 * h * dk * dv];
        for (int i = 0; i < s0.length; i++) s0[i] = (float) r.nextGaussian();
        int[] slots = new int[t], pos = new int[t];
        for (int i = 0; i < t; i++) {
            slots[i] = i < 11 ? 0 : 1;
            pos[i] = i < 11 ? i : 7 + (i - 11);
        }
        RefTensor[] ops = {f(s(t, h, dk), q), f(s(t, h, dk), k), f(s(t, h, dv), v), f(s(t, h), g), f(s(t, h), b), f(s(2, h, dk, dv), s0), i(s(t), slots), i(s(t), pos)};
        List<RefTensor> step = eval(Op.GATED_DELTA_RULE, Attrs.NONE, ops);
        for (long chunk : new long[]{1, 3, 4, 16}) {
            List<RefTensor> chunked = eval(Op.GATED_DELTA_RULE, Attrs.of("chunk_size", chunk), ops);
            assertArrayEquals(step.get(0).f(), chunked.get(0).f(), 1e-4f, "outputs, chunk " + chunk);
            assertArrayEquals(step.get(1).f(), chunked.get(1).f(), 1e-4f, "state, chunk " + chunk);
        }
    }

    // ---- routing

    @Test void softmaxTopkRenorm() {
        RefTensor p = eval(Op.SOFTMAX, Attrs.NONE, f(s(1, 3), 0, (float) Math.log(2), (float) Math.log(3))).getFirst();
        assertArrayEquals(new float[]{1 / 6f, 2 / 6f, 3 / 6f}, p.f(), EPS);
        List<RefTensor> top = eval(Op.TOPK, Attrs.of("k", 2L), p);
        assertArrayEquals(s(2, 1), top.get(1).i());
        assertArrayEquals(new float[]{0.6f, 0.4f}, eval(Op.RENORM, Attrs.NONE, top.get(0)).getFirst().f(), EPS);
    }

    @Test void topkBreaksTiesTowardsTheLowerIndex() {
        assertArrayEquals(s(1, 2), eval(Op.TOPK, Attrs.of("k", 2L), f(s(1, 3), 1, 2, 2)).get(1).i());
    }

    @Test void groupLimitKeepsTheBestGroups() {
        // [4, 0 | 3, 3]: by max group 0 wins (4 > 3); by top-2 sum group 1 wins (6 > 4).
        float inf = Float.NEGATIVE_INFINITY;
        RefTensor x = f(s(1, 4), 4, 0, 3, 3);
        assertArrayEquals(new float[]{4, 0, inf, inf}, eval(Op.GROUP_LIMIT, Attrs.of("groups", 2L, "keep", 1L, "select", "max"), x).getFirst().f());
        assertArrayEquals(new float[]{inf, inf, 3, 3}, eval(Op.GROUP_LIMIT, Attrs.of("groups", 2L, "keep", 1L, "select", "top2_sum"), x).getFirst().f());
    }

    @Test void takeAlongPicksPerRow() {
        assertArrayEquals(new float[]{30, 10}, eval(Op.TAKE_ALONG, Attrs.NONE, f(s(1, 3), 10, 20, 30), i(s(1, 2), 2, 0)).getFirst().f());
    }

    @Test void moeExpertsWeighsEachExpertByItsRouterWeight() {
        // hidden 1, inter 1. Expert e: gate = 1, up = e + 1, down = 1 -> y_e(x) = silu(x) * (e + 1) * x.
        RefTensor x = f(s(1, 1), 2);
        RefTensor gate = f(s(2, 1, 1), 1, 1), up = f(s(2, 1, 1), 1, 2), down = f(s(2, 1, 1), 1, 1);
        RefTensor out = eval(Op.MOE_EXPERTS, Attrs.NONE, x, f(s(1, 2), 0.25f, 0.75f), i(s(1, 2), 0, 1), gate, up, down).getFirst();
        double silu2 = 2 / (1 + Math.exp(-2));
        assertEquals(0.25 * silu2 * 2 + 0.75 * silu2 * 4, out.f()[0], 1e-5);
    }

    @Test void gatingSoftmaxWithAndWithoutRenorm() {
        RefTensor x = f(s(1, 3), 0, (float) Math.log(2), (float) Math.log(3));
        List<RefTensor> r = eval(Op.MOE_GATING_TOPK_SOFTMAX, Attrs.of("k", 2L, "renorm", true), x);
        assertArrayEquals(s(2, 1), r.get(1).i());
        assertArrayEquals(new float[]{0.6f, 0.4f}, r.get(0).f(), EPS);
        assertArrayEquals(new float[]{0.5f, 1 / 3f}, eval(Op.MOE_GATING_TOPK_SOFTMAX, Attrs.of("k", 2L, "renorm", false), x).get(0).f(), EPS);
    }

    @Test void gatingTopkSelectsWithBiasButWeighsWithoutIt() {
        // sigmoid([0, ln 3, 0, 0]) = [.5, .75, .5, .5]; + bias [.3, 0, 0, 0] = [.8, .75, .5, .5].
        // Group sums (top 2 of 2): 1.55 vs 1.0 -> group 0; top 2 by choice: experts 0, 1.
        // Weights from the unbiased scores [.5, .75] / 1.25 = [.4, .6], times 2.5 = [1, 1.5].
        List<RefTensor> r = eval(Op.MOE_GATING_TOPK, Attrs.of("k", 2L, "groups", 2L, "keep_groups", 1L, "group_select", "top2_sum",
                "norm_type", "sigmoid", "renorm", false, "routed_scaling", 2.5, "eps", 0.0), f(s(1, 4), 0, (float) Math.log(3), 0, 0), f(s(4), 0.3f, 0, 0, 0));
        assertArrayEquals(s(0, 1), r.get(1).i());
        assertArrayEquals(new float[]{1f, 1.5f}, r.get(0).f(), 1e-6f);
    }

    @Test void dispatchGroupedMatmulSwigluCombine() {
        // Experts [[1,0],[2,1],[0,2]]: rows sorted by expert, stable in source order t*K+k:
        // e0: sources 1, 4; e1: 0, 3; e2: 2, 5 -> rows [1,4,0,3,2,5] from tokens [0,2,0,1,1,2].
        List<RefTensor> d = eval(Op.MOE_DISPATCH, Attrs.of("num_experts", 3L), f(s(3, 1), 10, 20, 30), i(s(3, 2), 1, 0, 2, 1, 0, 2));
        assertArrayEquals(new float[]{10, 30, 10, 20, 20, 30}, d.get(0).f());
        assertArrayEquals(s(1, 4, 0, 3, 2, 5), d.get(1).i());
        assertArrayEquals(s(2, 2, 2), d.get(2).i());
        // Quantized: each row is its token's row quantized (one value a row here: q = 127, scale = |x| / 127).
        List<RefTensor> dq = eval(Op.MOE_DISPATCH_QUANT, Attrs.of("num_experts", 3L), f(s(3, 1), 10, -20, 30), i(s(3, 2), 1, 0, 2, 1, 0, 2));
        assertArrayEquals(s(127, 127, 127, -127, -127, 127), dq.get(0).i());
        assertArrayEquals(new float[]{10 / 127f, 30 / 127f, 10 / 127f, 20 / 127f, 20 / 127f, 30 / 127f}, dq.get(1).f());
        assertArrayEquals(s(1, 4, 0, 3, 2, 5), dq.get(2).i());
        assertArrayEquals(s(2, 2, 2), dq.get(3).i());
        // Groups of 1 and 2 rows times 10 and 100; the fourth row is past the groups.
        RefTensor g = eval(Op.GROUPED_MATMUL, Attrs.NONE, f(s(4, 1), 1, 2, 3, 4), f(s(2, 1, 1), 10, 100), i(s(2), 1, 2)).getFirst();
        assertArrayEquals(new float[]{10, 200, 300, 0}, g.f(), EPS);
        // silu(1) * 3.
        assertArrayEquals(new float[]{(float) (3 / (1 + Math.exp(-1)))}, eval(Op.SWIGLU, Attrs.NONE, f(s(1, 2), 1, 3)).getFirst().f(), EPS);
        // swiglu_quant of rows [g0 g1 | u0 u1]: row 0 silu([1, -2]) * [3, 1] -> the larger magnitude is 127, the scale max / 127;
        // row 1 all zero -> scale 0, q 0.
        List<RefTensor> sq = eval(Op.SWIGLU_QUANT, Attrs.NONE, f(s(2, 4), 1, -2, 3, 1, 0, 0, 5, 5));
        float a0 = (float) (1.0 / (1 + Math.exp(-1.0)) * 3.0), a1 = (float) (-2.0 / (1 + Math.exp(2.0)) * 1.0);
        assertArrayEquals(new float[]{a0 / 127f, 0f}, sq.get(1).f(), 1e-9f);
        assertArrayEquals(new int[]{127, (int) Math.rint(a1 / (a0 / 127f)), 0, 0}, sq.get(0).i());
        // Rows [2,0,3,1] with y [1,2,3,4], weights [[.5,.25],[1,2]]: t0 = .5*2 + .25*4 = 2; t1 = 1*1 + 2*3 = 7.
        RefTensor c = eval(Op.MOE_COMBINE, Attrs.NONE, f(s(4, 1), 1, 2, 3, 4), i(s(4), 2, 0, 3, 1), f(s(2, 2), 0.5f, 0.25f, 1, 2)).getFirst();
        assertArrayEquals(new float[]{2, 7}, c.f(), EPS);
    }

    // ---- quantization, fused norms

    @Test void dynamicQuantIsPerRowSymmetric() {
        // max |x| = 1 -> scale 1/127; 0.5*127 = 63.5 rounds to even 64; 0.25*127 = 31.75 -> 32.
        List<RefTensor> q = eval(Op.DYNAMIC_QUANT, Attrs.NONE, f(s(1, 4), 0.5f, -1f, 0.25f, 0f));
        assertEquals(DType.I8, q.get(0).dtype());
        assertArrayEquals(s(64, -127, 32, 0), q.get(0).i());
        assertArrayEquals(new float[]{1 / 127f}, q.get(1).f(), EPS);
    }

    @Test void addRmsNormAndItsQuantizedForm() {
        // [1, 2] + [2, 2] = [3, 4]; rms sqrt(12.5): [0.8485, 1.1314]; quantized: 127 * 0.75 = 95.25 -> 95, 127.
        double r = Math.sqrt(12.5);
        List<RefTensor> n = eval(Op.ADD_RMS_NORM, Attrs.of("eps", 0.0), f(s(1, 2), 1, 2), f(s(1, 2), 2, 2), f(s(2), 1, 1));
        assertArrayEquals(new float[]{(float) (3 / r), (float) (4 / r)}, n.get(0).f(), EPS);
        assertArrayEquals(new float[]{3, 4}, n.get(1).f());
        List<RefTensor> q = eval(Op.ADD_RMS_NORM_DYNAMIC_QUANT, Attrs.of("eps", 0.0), f(s(1, 2), 1, 2), f(s(1, 2), 2, 2), f(s(2), 1, 1));
        assertArrayEquals(s(95, 127), q.get(0).i());
        assertArrayEquals(new float[]{3, 4}, q.get(1).f());
        assertArrayEquals(new float[]{(float) (4 / r) / 127f}, q.get(2).f(), EPS);
    }

    @Test void quantMatmulsAccumulateIntegersThenScale() {
        // [2, -3] . (1, 1) = -1 -> * 0.5 * 2 = -1;  [2, -3] . (4, 0) = 8 -> * 0.5 * 0.25 = 1.
        RefTensor y = eval(Op.QUANT_MATMUL, Attrs.NONE, i8(s(1, 2), 2, -3), f(s(1), 0.5f), i8(s(2, 2), 1, 1, 4, 0), f(s(2), 2, 0.25f)).getFirst();
        assertArrayEquals(new float[]{-1, 1}, y.f(), EPS);
        // Row 0 (expert 0): 2 * 4 * 0.5 * 0.25 = 1; row 1 (expert 1): 3 * -1 * 1 * 2 = -6.
        RefTensor g = eval(Op.GROUPED_QUANT_MATMUL, Attrs.NONE, i8(s(2, 1), 2, 3), f(s(2), 0.5f, 1), i8(s(2, 1, 1), 4, -1),
                f(s(2, 1), 0.25f, 2), i(s(2), 1, 1)).getFirst();
        assertArrayEquals(new float[]{1, -6}, g.f(), EPS);
    }

    @Test void weightQuantIsPerOutputChannel() {
        // Row (1, -0.5, 0.25): scale 1/127 -> 127, -64 (-63.5 to even), 32 (31.75). Row (0, 0, 0): scale 1, zeros.
        List<RefTensor> q = eval(Op.WEIGHT_QUANT, Attrs.of("bits", 8L), f(s(2, 3), 1, -0.5f, 0.25f, 0, 0, 0));
        assertArrayEquals(s(127, -64, 32, 0, 0, 0), q.get(0).i());
        assertArrayEquals(new float[]{1 / 127f, 1}, q.get(1).f(), EPS);
        // int4: scale 1/7 -> 7, -4 (-4.2), 2 (1.75).
        List<RefTensor> q4 = eval(Op.WEIGHT_QUANT, Attrs.of("bits", 4L), f(s(1, 3), 1, -0.6f, 0.25f));
        assertEquals(DType.I4, q4.get(0).dtype());
        assertArrayEquals(s(7, -4, 2), q4.get(0).i());
    }

    @Test void staticW8a8QuantizesPerTensorAndDequantizesPerChannel() {
        // x / 0.5 + 1: [0.2, -1, 100] -> round(1.4) = 1, round(-1) = -1, 201 -> clamped 127.
        RefTensor q = eval(Op.STATIC_QUANT, Attrs.NONE, f(s(1, 3), 0.2f, -1f, 100f), f(s(1), 0.5f), f(s(1), 1f)).getFirst();
        assertArrayEquals(s(1, -1, 127), q.i());
        // ([1, -1, 127] . (1, 1, 0) + bias -3) * 0.5 = -1.5;  ([1, -1, 127] . (0, 0, 1) + 0) * 2 = 254.
        RefTensor y = eval(Op.QUANT_MATMUL_STATIC, Attrs.NONE, q, i8(s(2, 3), 1, 1, 0, 0, 0, 1), i(s(2), -3, 0), f(s(2), 0.5f, 2f)).getFirst();
        assertArrayEquals(new float[]{-1.5f, 254f}, y.f(), EPS);
    }

    @Test void quantizedExpertsQuantizeActivationsPerRow() {
        // hidden 2, inter 1, one expert. x = [1, -0.5] -> q = [127, -64] (-63.5 rounds to even -64), scale 1/127.
        // gate row (2, 0) * 0.5: g = 254 / 127 * 0.5 = 1; up row (0, -2) * 1: u = 128 / 127.
        // a = silu(1) * u, quantized alone: q = 127, scale a / 127. down rows (1), (-1) * 0.25: y = [a/4, -a/4].
        RefTensor out = eval(Op.MOE_EXPERTS_QUANT, Attrs.NONE, f(s(1, 2), 1f, -0.5f), f(s(1, 1), 1f), i(s(1, 1), 0),
                RefTensor.ofInts(DType.I4, s(1, 1, 2), new int[]{2, 0}), f(s(1, 1), 0.5f),
                RefTensor.ofInts(DType.I4, s(1, 1, 2), new int[]{0, -2}), f(s(1, 1), 1f),
                RefTensor.ofInts(DType.I4, s(1, 2, 1), new int[]{1, -1}), f(s(1, 2), 0.25f, 0.25f)).getFirst();
        double act = (1 / (1 + Math.exp(-1))) * (128.0 / 127);
        assertArrayEquals(new float[]{(float) (act / 4), (float) (-act / 4)}, out.f(), 1e-5f);
    }

    // ---- elementwise

    @Test void unaryOps() {
        RefTensor x = f(s(2), -1, 2);
        assertArrayEquals(new float[]{(float) (-1 / (1 + Math.exp(1))), (float) (2 / (1 + Math.exp(-2)))}, eval(Op.SILU, Attrs.NONE, x).getFirst().f(), EPS);
        assertArrayEquals(new float[]{(float) (1 / (1 + Math.exp(1))), (float) (1 / (1 + Math.exp(-2)))}, eval(Op.SIGMOID, Attrs.NONE, x).getFirst().f(), EPS);
        assertArrayEquals(new float[]{(float) Math.log1p(Math.exp(-1)), (float) Math.log1p(Math.exp(2))}, eval(Op.SOFTPLUS, Attrs.NONE, x).getFirst().f(), EPS);
        assertArrayEquals(new float[]{1 / E, E * E}, eval(Op.EXP, Attrs.NONE, x).getFirst().f(), 1e-5f);
        assertArrayEquals(new float[]{1, -2}, eval(Op.NEG, Attrs.NONE, x).getFirst().f());
        assertArrayEquals(new float[]{0, 2}, eval(Op.RELU, Attrs.NONE, x).getFirst().f());
        assertArrayEquals(new float[]{-2.5f, 5}, eval(Op.SCALE, Attrs.of("factor", 2.5), x).getFirst().f());
    }

    @Test void binaryOpsBroadcastFromTheRight() {
        RefTensor a = f(s(2, 2), 1, 2, 3, 4), b = f(s(2), 1, 2);
        assertArrayEquals(new float[]{2, 4, 4, 6}, eval(Op.ADD, Attrs.NONE, a, b).getFirst().f());
        assertArrayEquals(new float[]{0, 0, 2, 2}, eval(Op.SUB, Attrs.NONE, a, b).getFirst().f());
        assertArrayEquals(new float[]{1, 4, 3, 8}, eval(Op.MUL, Attrs.NONE, a, b).getFirst().f());
        assertArrayEquals(new float[]{1, 1, 3, 2}, eval(Op.DIV, Attrs.NONE, a, b).getFirst().f());
        // [2,1] against [2]: the outer product shape [2,2].
        assertArrayEquals(new float[]{2, 3, 3, 4}, eval(Op.ADD, Attrs.NONE, f(s(2, 1), 1, 2), b).getFirst().f());
    }
}
