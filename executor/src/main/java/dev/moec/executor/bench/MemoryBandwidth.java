package dev.moec.executor.bench;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * Measures the read bandwidth a roofline is drawn against: {@code threads} threads each sum their slice
 * of an off-heap buffer much larger than the caches, best of several passes.
 */
public final class MemoryBandwidth {
    private MemoryBandwidth() {}

    /** Bytes per second read by {@code threads} threads from a buffer of {@code bytes}. */
    public static double measure(int threads, long bytes, int passes) throws Exception {
        long longs = bytes / Long.BYTES;
        try (Arena arena = Arena.ofShared(); ExecutorService pool = Executors.newFixedThreadPool(threads)) {
            MemorySegment seg = arena.allocate(longs * Long.BYTES, 64);
            for (long k = 0; k < longs; k++) seg.setAtIndex(ValueLayout.JAVA_LONG, k, k);
            MemorySegment view = seg.asReadOnly();
            double best = 0;
            long sink = 0;
            for (int p = 0; p < passes; p++) {
                List<Future<Long>> parts = new ArrayList<>();
                long t0 = System.nanoTime();
                for (int t = 0; t < threads; t++) {
                    long from = longs * t / threads, to = longs * (t + 1) / threads;
                    parts.add(pool.submit(() -> sum(view, from, to)));
                }
                for (Future<Long> f : parts) sink += f.get();
                double seconds = (System.nanoTime() - t0) / 1e9;
                best = Math.max(best, bytes / seconds);
            }
            if (sink == 42) System.out.print("");                            // keeps the sums alive
            return best;
        }
    }

    private static long sum(MemorySegment seg, long from, long to) {
        long a = 0, b = 0, c = 0, d = 0;
        long k = from;
        for (; k + 4 <= to; k += 4) {
            a += seg.getAtIndex(ValueLayout.JAVA_LONG, k);
            b += seg.getAtIndex(ValueLayout.JAVA_LONG, k + 1);
            c += seg.getAtIndex(ValueLayout.JAVA_LONG, k + 2);
            d += seg.getAtIndex(ValueLayout.JAVA_LONG, k + 3);
        }
        for (; k < to; k++) a += seg.getAtIndex(ValueLayout.JAVA_LONG, k);
        return a + b + c + d;
    }
}
