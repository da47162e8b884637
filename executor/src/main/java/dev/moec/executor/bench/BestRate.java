package dev.moec.executor.bench;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.IntFunction;

/**
 * The best rate {@code threads} threads reach over several passes of the same work: how
 * {@link ComputePeak} measures the machine's compute ceiling.
 */
final class BestRate {
    private BestRate() {}

    /**
     * Units per second of the fastest of {@code passes} passes, each running {@code work.apply(t)} on
     * thread t and counting {@code unitsPerPass} in all; the work's results are kept alive so the JIT
     * cannot drop it.
     */
    static double of(int threads, int passes, double unitsPerPass, IntFunction<Callable<? extends Number>> work) throws Exception {
        try (ExecutorService pool = Executors.newFixedThreadPool(threads)) {
            double best = 0, sink = 0;
            for (int p = 0; p < passes; p++) {
                List<Future<? extends Number>> parts = new ArrayList<>();
                long t0 = System.nanoTime();
                for (int t = 0; t < threads; t++) parts.add(pool.submit(work.apply(t)));
                for (Future<? extends Number> f : parts) sink += f.get().doubleValue();
                best = Math.max(best, unitsPerPass / ((System.nanoTime() - t0) / 1e9));
            }
            if (sink == 42) System.out.print("");
            return best;
        }
    }
}
