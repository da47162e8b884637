package dev.moec.ir.interp;

import dev.moec.ir.DType;
import dev.moec.ir.Graph;
import dev.moec.ir.Param;
import dev.moec.ir.Shape;
import dev.moec.ir.TensorType;

import java.lang.foreign.MemorySegment;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;

/**
 * Seeded random weights for every parameter of a graph, for running IR without a checkpoint
 * ({@code moec ir run}). Floats are N(0, 1/fan_in) (norm vectors 1 + N(0, 0.01)); integers uniform in
 * the dtype's range (i4: -8..7, i8: -127..127). Each tensor's values depend only on the seed and its name.
 */
public final class RandomStore implements TensorStore {
    private final Map<String, TensorType> types = new LinkedHashMap<>();
    private final long seed;

    public RandomStore(Graph graph, long seed) {
        this.seed = seed;
        for (Param p : graph.params()) {
            TensorType t = p.value().type();
            if (!t.shape().isStatic()) throw new IllegalArgumentException("parameter " + p.value() + " " + t + " needs static dims");
            if (!p.stacked()) {
                types.put(p.tensor(), t);
            } else {
                TensorType member = t.withShape(new Shape(t.shape().dims().subList(1, t.rank())));
                for (int e = 0; e < t.shape().dim(0).size(); e++) types.put(p.member(e), member);
            }
        }
    }

    @Override public Set<String> names() { return types.keySet(); }

    @Override public TensorType type(String name) {
        TensorType t = types.get(name);
        if (t == null) throw new IllegalArgumentException("no tensor '" + name + "'");
        return t;
    }

    @Override public float[] readF32(String name) {
        TensorType t = type(name);
        SplittableRandom r = random(name);
        int n = Math.toIntExact(t.shape().elements());
        long[] dims = t.shape().sizes();
        boolean vector = dims.length == 1;
        double std = vector ? 0.1 : 1.0 / Math.sqrt(dims[dims.length - 1]);
        float[] out = new float[n];
        for (int i = 0; i < n; i++) out[i] = Reference.roundTo(t.dtype(), (float) ((vector ? 1 : 0) + std * r.nextGaussian()));
        return out;
    }

    @Override public int[] readInts(String name) {
        TensorType t = type(name);
        SplittableRandom r = random(name);
        int n = Math.toIntExact(t.shape().elements());
        int bound = t.dtype() == DType.I4 ? 8 : 127;
        int[] out = new int[n];
        for (int i = 0; i < n; i++) out[i] = t.dtype() == DType.I4 ? r.nextInt(-8, 8) : r.nextInt(-bound, bound + 1);
        return out;
    }

    @Override public MemorySegment raw(String name) {
        throw new IllegalArgumentException("random weights have no stored bytes (tensor '" + name + "')");
    }

    private SplittableRandom random(String name) { return new SplittableRandom(seed * 0x9E3779B97F4A7C15L ^ name.hashCode()); }
}
