package dev.moec.executor.bench;

import dev.moec.executor.cpu.PageMemory;
import dev.moec.executor.cpu.Parallel;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

import jdk.incubator.vector.LongVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Measures the read bandwidth a roofline is drawn against: the threads each sum their slice of an
 * off-heap buffer much larger than the caches. The buffer is {@link PageMemory}, as the weight panels
 * are: on 2 MB pages where the OS gives them, which read faster.
 */
public final class MemoryBandwidth {
    private MemoryBandwidth() {}

    /**
     * A buffer read by the executor's own threads, kept for many reads: each {@link #read} is one sample of
     * the bandwidth, so a benchmark can take one beside every step it times (this shared machine's
     * bandwidth moves from one second to the next, by half at times). The kernels' threads read it because
     * between launches they spin for a while: a separate pool's threads would share the cores with them
     * and read at half the rate.
     */
    public static final class Probe implements AutoCloseable {
        private final Arena arena = Arena.ofShared();
        private final MemorySegment buffer;                                 // [bytes / 8] longs, read-only
        private final long longs;
        private final Parallel threads;
        private long sink;

        public Probe(Parallel threads, long bytes) {
            this.threads = threads;
            this.longs = bytes / Long.BYTES;
            MemorySegment seg = PageMemory.allocate(longs * Long.BYTES, arena);   // the memory the weight panels live in
            for (long k = 0; k < longs; k++) seg.setAtIndex(ValueLayout.JAVA_LONG, k, k);
            this.buffer = seg.asReadOnly();
        }

        /** Bytes per second of one read of the whole buffer, each thread summing its slice. */
        public double read() {
            int n = threads.threads();
            long[] sums = new long[n];
            long t0 = System.nanoTime();
            threads.forEach(n, 1, t -> sums[t] = sum(buffer, longs * t / n, longs * (t + 1) / n));
            double rate = longs * (double) Long.BYTES / ((System.nanoTime() - t0) / 1e9);
            for (long v : sums) sink += v;
            return rate;
        }

        @Override
        public void close() {
            arena.close();
            if (sink == 42) System.out.print("");                         // the sums stay live
        }
    }

    private static final VectorSpecies<Long> LONGS = LongVector.SPECIES_PREFERRED;

    /**
     * The sum of longs [from, to): whole vectors, four in flight, as the kernels load their weights (a
     * loop of single longs read no faster here, but the probe should not be the slower reader).
     */
    private static long sum(MemorySegment seg, long from, long to) {
        int l = LONGS.length();
        LongVector a = LongVector.zero(LONGS), b = a, c = a, d = a;
        long k = from;
        for (; k + 4L * l <= to; k += 4L * l) {
            a = a.add(LongVector.fromMemorySegment(LONGS, seg, k * Long.BYTES, ByteOrder.LITTLE_ENDIAN));
            b = b.add(LongVector.fromMemorySegment(LONGS, seg, (k + l) * Long.BYTES, ByteOrder.LITTLE_ENDIAN));
            c = c.add(LongVector.fromMemorySegment(LONGS, seg, (k + 2L * l) * Long.BYTES, ByteOrder.LITTLE_ENDIAN));
            d = d.add(LongVector.fromMemorySegment(LONGS, seg, (k + 3L * l) * Long.BYTES, ByteOrder.LITTLE_ENDIAN));
        }
        long s = a.add(b).add(c).add(d).reduceLanes(VectorOperators.ADD);
        for (; k < to; k++) s += seg.getAtIndex(ValueLayout.JAVA_LONG, k);
        return s;
    }
}
