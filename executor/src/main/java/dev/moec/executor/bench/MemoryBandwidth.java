package dev.moec.executor.bench;

import dev.moec.executor.cpu.PageMemory;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Measures the read bandwidth a roofline is drawn against: {@code threads} threads each sum their slice
 * of an off-heap buffer much larger than the caches, best of several passes. The buffer is
 * {@link PageMemory}, as the weight panels are: on 2 MB pages where the OS gives them, which read faster.
 */
public final class MemoryBandwidth {
    private MemoryBandwidth() {}

    /** Bytes per second read by {@code threads} threads from a buffer of {@code bytes}. */
    public static double measure(int threads, long bytes, int passes) throws Exception {
        long longs = bytes / Long.BYTES;
        try (Arena arena = Arena.ofShared()) {
            MemorySegment seg = PageMemory.allocate(longs * Long.BYTES, arena);     // the memory the weight panels live in
            for (long k = 0; k < longs; k++) seg.setAtIndex(ValueLayout.JAVA_LONG, k, k);
            MemorySegment view = seg.asReadOnly();
            return BestRate.of(threads, passes, bytes, t -> () -> sum(view, longs * t / threads, longs * (t + 1) / threads));
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
