package dev.moec.ir;

import dev.moec.ir.interp.RefTensor;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** Each op's reference semantics on a case small enough to compute by hand. */
class ReferenceSemanticsTest {
    private static final float EPS = 1e-6f;

    private static List<RefTensor> eval(Op op, Attrs a, RefTensor... in) {
        return op.semantics().eval(List.of(in), a);
    }

    private static RefTensor f(int[] shape, float... v) { return RefTensor.f32(shape, v); }
    private static RefTensor i(int[] shape, int... v) { return RefTensor.i32(shape, v); }

    @Test void gatherPicksRows() {
        RefTensor table = f(new int[]{3, 2}, 0, 1, 10, 11, 20, 21);
        RefTensor out = eval(Op.GATHER, Attrs.NONE, table, i(new int[]{2}, 2, 0)).getFirst();
        assertArrayEquals(new float[]{20, 21, 0, 1}, out.f());
        assertArrayEquals(new int[]{2, 2}, out.shape());
    }

    @Test void rmsNormScalesByRootMeanSquare() {
        // x = [3, 4]: mean square 12.5, so x / sqrt(12.5) * w.
        RefTensor out = eval(Op.RMS_NORM, Attrs.of("eps", 0.0), f(new int[]{1, 2}, 3, 4), f(new int[]{2}, 1, 2)).getFirst();
        double r = Math.sqrt(12.5);
        assertArrayEquals(new float[]{(float) (3 / r), (float) (8 / r)}, out.f(), EPS);
    }

    @Test void matmulUsesTheLinearLayout() {
        // x [1,2] = [1, 2]; w [3,2] rows (1,0), (0,1), (1,1) -> [1, 2, 3].
        RefTensor out = eval(Op.MATMUL, Attrs.NONE, f(new int[]{1, 2}, 1, 2), f(new int[]{3, 2}, 1, 0, 0, 1, 1, 1)).getFirst();
        assertArrayEquals(new float[]{1, 2, 3}, out.f(), EPS);
    }

    @Test void ropeRotatesNeoxPairs() {
        // head_dim 2, rotary 2: one pair (x0, x1) rotated by pos * theta^0 = pos radians.
        RefTensor out = eval(Op.ROPE, Attrs.of("theta", 10000.0, "rotary_dim", 2L), f(new int[]{1, 1, 2}, 1, 0), i(new int[]{1}, 1)).getFirst();
        assertArrayEquals(new float[]{(float) Math.cos(1), (float) Math.sin(1)}, out.f(), EPS);
    }

    @Test void softmaxTopkRenorm() {
        RefTensor p = eval(Op.SOFTMAX, Attrs.NONE, f(new int[]{1, 3}, 0, (float) Math.log(2), (float) Math.log(3))).getFirst();
        assertArrayEquals(new float[]{1 / 6f, 2 / 6f, 3 / 6f}, p.f(), EPS);
        List<RefTensor> top = eval(Op.TOPK, Attrs.of("k", 2L), p);
        assertArrayEquals(new int[]{2, 1}, top.get(1).i());
        RefTensor w = eval(Op.RENORM, Attrs.NONE, top.get(0)).getFirst();
        assertArrayEquals(new float[]{0.6f, 0.4f}, w.f(), EPS);
    }

    @Test void topkBreaksTiesTowardsTheLowerIndex() {
        List<RefTensor> top = eval(Op.TOPK, Attrs.of("k", 2L), f(new int[]{1, 3}, 1, 2, 2));
        assertArrayEquals(new int[]{1, 2}, top.get(1).i());
    }

    @Test void kvWriteAndAttentionAreCausal() {
        // One slot, length 2, one kv head of dim 1. Token 0 at position 0 sees only itself.
        RefTensor cache = RefTensor.zerosF32(1, 2, 1, 1);
        RefTensor slots = i(new int[]{2}, 0, 0), pos = i(new int[]{2}, 0, 1);
        RefTensor k = eval(Op.KV_WRITE, Attrs.NONE, cache, f(new int[]{2, 1, 1}, 0, 0), slots, pos).getFirst();
        RefTensor v = eval(Op.KV_WRITE, Attrs.NONE, cache, f(new int[]{2, 1, 1}, 10, 20), slots, pos).getFirst();
        assertArrayEquals(new float[]{0, 0}, cache.f(), "kv_write must not modify its operand");
        RefTensor a = eval(Op.ATTENTION, Attrs.of("scale", 1.0), f(new int[]{2, 1, 1}, 1, 1), k, v, slots, pos).getFirst();
        // Equal scores: token 0 reads v[0] = 10; token 1 averages 10 and 20.
        assertArrayEquals(new float[]{10, 15}, a.f(), EPS);
    }

    @Test void moeExpertsWeighsEachExpertByItsRouterWeight() {
        // hidden 1, inter 1. Expert e: gate = 1, up = e + 1, down = 1 -> y_e(x) = silu(x) * (e + 1) * x.
        RefTensor x = f(new int[]{1, 1}, 2);
        RefTensor gate = f(new int[]{2, 1, 1}, 1, 1), up = f(new int[]{2, 1, 1}, 1, 2), down = f(new int[]{2, 1, 1}, 1, 1);
        RefTensor out = eval(Op.MOE_EXPERTS, Attrs.NONE, x, f(new int[]{1, 2}, 0.25f, 0.75f), i(new int[]{1, 2}, 0, 1), gate, up, down).getFirst();
        double silu2 = 2 / (1 + Math.exp(-2));
        assertEquals(0.25 * silu2 * 2 + 0.75 * silu2 * 4, out.f()[0], 1e-5);
    }

    @Test void elementwiseOps() {
        RefTensor a = f(new int[]{2}, 1, -1), b = f(new int[]{2}, 3, 4);
        assertArrayEquals(new float[]{4, 3}, eval(Op.ADD, Attrs.NONE, a, b).getFirst().f(), EPS);
        assertArrayEquals(new float[]{3, -4}, eval(Op.MUL, Attrs.NONE, a, b).getFirst().f(), EPS);
        assertArrayEquals(new float[]{(float) (1 / (1 + Math.exp(-1))), (float) (-1 / (1 + Math.exp(1)))},
                eval(Op.SILU, Attrs.NONE, a).getFirst().f(), EPS);
    }

    @Test void reshapeKeepsRowMajorOrder() {
        RefTensor out = eval(Op.RESHAPE, Attrs.of("shape", Shape.of(3, 2)), f(new int[]{2, 3}, 1, 2, 3, 4, 5, 6)).getFirst();
        assertArrayEquals(new int[]{3, 2}, out.shape());
        assertArrayEquals(new float[]{1, 2, 3, 4, 5, 6}, out.f());
    }
}
