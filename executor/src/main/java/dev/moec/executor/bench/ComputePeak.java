package dev.moec.executor.bench;

import dev.moec.executor.cpu.Bf16Tiles;
import dev.moec.executor.cpu.Vnni;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * Measures the compute ceilings a step's multiply-accumulates are drawn against, best of several passes
 * of {@code threads} threads. {@link #measure}: each thread runs twelve independent chains of f32 vector
 * FMAs in registers (more chains than an FMA's latency times its issue width, so the FMA pipes never
 * wait). The f32 FMA is the fastest multiply-accumulate the Vector API offers: it has no int8 or bf16
 * dot-product operation, so its int8 kernels widen to f32 or int32 lanes and run at most at this rate.
 * {@link #measureVnni}: each thread runs the int8 matmul tile the {@link Vnni} kernels run, six rows
 * against a panel in L2, which is how fast the int8 matmuls on those tiles can go. {@link #measureDot}:
 * likewise the bf16 dot tile a greedy step's lm_head runs ({@link Bf16Tiles#dotSums}), eight rows.
 */
public final class ComputePeak {
    private ComputePeak() {}

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final int CHAINS = 12;

    /** Multiply-accumulates per second that {@code threads} threads reach, each running {@code iterations} rounds of the chains. */
    public static double measure(int threads, long iterations, int passes) throws Exception {
        return BestRate.of(threads, passes, (double) threads * iterations * CHAINS * F.length(), t -> () -> chains(iterations));
    }

    /** int8 multiply-accumulates per second that {@code threads} threads reach on the {@link Vnni} tiles, each running {@code calls} of them. */
    public static double measureVnni(int threads, int calls, int passes) throws Exception {
        if (!Vnni.AVAILABLE) throw new IllegalStateException("no VNNI tiles on this machine");
        return BestRate.of(threads, passes, (double) threads * calls * Vnni.benchMacs(), t -> () -> Vnni.bench(calls));
    }

    /** bf16 multiply-accumulates per second that {@code threads} threads reach on the bf16 dot tiles, each running {@code calls} of them. */
    public static double measureDot(int threads, int calls, int passes) throws Exception {
        if (!Bf16Tiles.DOT_AVAILABLE) throw new IllegalStateException("no bf16 dot tiles on this machine");
        return BestRate.of(threads, passes, (double) threads * calls * Bf16Tiles.dotBenchMacs(), t -> () -> Bf16Tiles.dotBench(calls));
    }

    /** Twelve FMA chains a += a * m (m just below one, so the values stay finite), summed at the end. */
    private static float chains(long iterations) {
        FloatVector m = FloatVector.broadcast(F, 0.999999f);
        FloatVector a0 = FloatVector.broadcast(F, 1f), a1 = a0.add(1), a2 = a0.add(2), a3 = a0.add(3), a4 = a0.add(4), a5 = a0.add(5);
        FloatVector a6 = a0.add(6), a7 = a0.add(7), a8 = a0.add(8), a9 = a0.add(9), a10 = a0.add(10), a11 = a0.add(11);
        FloatVector c = FloatVector.broadcast(F, -0.5f);
        for (long i = 0; i < iterations; i++) {
            a0 = a0.fma(m, c); a1 = a1.fma(m, c); a2 = a2.fma(m, c); a3 = a3.fma(m, c);
            a4 = a4.fma(m, c); a5 = a5.fma(m, c); a6 = a6.fma(m, c); a7 = a7.fma(m, c);
            a8 = a8.fma(m, c); a9 = a9.fma(m, c); a10 = a10.fma(m, c); a11 = a11.fma(m, c);
        }
        return a0.add(a1).add(a2).add(a3).add(a4).add(a5).add(a6).add(a7).add(a8).add(a9).add(a10).add(a11).reduceLanes(jdk.incubator.vector.VectorOperators.ADD);
    }
}
