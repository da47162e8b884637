package dev.moec.executor.cpu;

import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.RecursiveAction;
import java.util.function.IntConsumer;

/** Splits index ranges over a fork/join pool sized to the executor's thread count. */
public final class Parallel {
    private final ForkJoinPool pool;
    private final int threads;

    public Parallel(int threads) {
        this.threads = Math.max(1, threads);
        this.pool = new ForkJoinPool(this.threads);
    }

    public int threads() { return threads; }

    /** Runs {@code body} for every index in [0, n), in chunks of at least {@code grain}. */
    public void forEach(int n, int grain, IntConsumer body) {
        if (n <= 0) return;
        if (threads == 1 || n <= grain) {
            for (int k = 0; k < n; k++) body.accept(k);
            return;
        }
        int chunks = Math.min(threads * 4, (n + grain - 1) / grain);
        pool.invoke(new Range(0, chunks, n, chunks, body));
    }

    private static final class Range extends RecursiveAction {
        final int lo, hi, n, chunks;
        final IntConsumer body;

        Range(int lo, int hi, int n, int chunks, IntConsumer body) {
            this.lo = lo; this.hi = hi; this.n = n; this.chunks = chunks; this.body = body;
        }

        @Override protected void compute() {
            if (hi - lo > 1) {
                int mid = (lo + hi) >>> 1;
                invokeAll(new Range(lo, mid, n, chunks, body), new Range(mid, hi, n, chunks, body));
                return;
            }
            int from = (int) ((long) n * lo / chunks), to = (int) ((long) n * hi / chunks);
            for (int k = from; k < to; k++) body.accept(k);
        }
    }
}
