package dev.moec.executor.cpu;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicIntegerArray;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ParallelTest {
    @Test void everyIndexRunsExactlyOnceAcrossManyLaunches() {
        try (Parallel par = new Parallel(3)) {
            for (int n : new int[] {0, 1, 2, 7, 64, 1000}) {
                for (int launch = 0; launch < 200; launch++) {
                    AtomicIntegerArray seen = new AtomicIntegerArray(Math.max(n, 1));
                    par.forEach(n, 1, seen::incrementAndGet);
                    for (int i = 0; i < n; i++) assertEquals(1, seen.get(i), "n " + n + " index " + i);
                }
            }
        }
    }

    /** A thread takes contiguous ranges of at least the grain (only the range that ends the loop may be shorter). */
    @Test void rangesHoldAtLeastTheGrain() {
        try (Parallel par = new Parallel(3)) {
            for (int n : new int[] {9, 100, 1000}) {
                for (int launch = 0; launch < 50; launch++) {
                    long[] thread = new long[n];
                    par.forEach(n, 8, i -> thread[i] = Thread.currentThread().threadId());
                    for (int start = 0; start < n; ) {
                        int end = start;
                        while (end < n && thread[end] == thread[start]) end++;
                        assertTrue(end - start >= 8 || end == n, "n " + n + ": indices " + start + ".." + (end - 1) + " on one thread");
                        start = end;
                    }
                }
            }
        }
    }

    @Test void everyIndexRunsExactlyOnceInRuns() {
        try (Parallel par = new Parallel(3)) {
            for (int n : new int[] {0, 1, 2, 7, 64, 1000}) {
                for (int grain : new int[] {1, 4}) {
                    for (int launch = 0; launch < 200; launch++) {
                        AtomicIntegerArray seen = new AtomicIntegerArray(Math.max(n, 1));
                        par.forEachInRuns(n, grain, seen::incrementAndGet);
                        for (int i = 0; i < n; i++) assertEquals(1, seen.get(i), "n " + n + " grain " + grain + " index " + i);
                    }
                }
            }
        }
    }

    /**
     * In runs (two threads, grain 1), each thread runs consecutive indices of its own range in increasing
     * order, then consecutive indices from the back of the other's in decreasing order: in the order a
     * thread ran them, its indices step by +1 and then, after one jump, by -1.
     */
    @Test void inRunsEachThreadReadsItsRangeFrontToBackThenHelpsFromTheOthersBack() {
        try (Parallel par = new Parallel(2)) {
            int n = 1000;
            for (int launch = 0; launch < 50; launch++) {
                Map<Long, List<Integer>> ran = new ConcurrentHashMap<>();
                par.forEachInRuns(n, 1, i -> ran.computeIfAbsent(Thread.currentThread().threadId(), t -> new ArrayList<>()).add(i));
                int total = 0;
                for (List<Integer> seq : ran.values()) {
                    total += seq.size();
                    int p = 0;
                    while (p + 1 < seq.size() && seq.get(p + 1) == seq.get(p) + 1) p++;
                    for (int q = p + 1; q + 1 < seq.size(); q++) assertEquals(seq.get(q) - 1, (int) seq.get(q + 1), "a thread's indices in the order it ran them: " + seq);
                }
                assertEquals(n, total);
            }
        }
    }

    @Test void aNestedLoopRunsInsideItsTask() {
        try (Parallel par = new Parallel(2)) {
            AtomicIntegerArray seen = new AtomicIntegerArray(8 * 8);
            par.forEach(8, 1, i -> par.forEach(8, 1, j -> seen.incrementAndGet(i * 8 + j)));
            for (int i = 0; i < 64; i++) assertEquals(1, seen.get(i));
        }
    }

    @Test void aFailureInAnyTaskReachesTheCallerAsItself() {
        try (Parallel par = new Parallel(2)) {
            IndexOutOfBoundsException thrown = new IndexOutOfBoundsException("block -1 is not assigned");
            var e = assertThrows(IndexOutOfBoundsException.class, () -> par.forEach(100, 1, i -> {
                if (i == 77) throw thrown;
            }));
            assertSame(thrown, e);
            AtomicIntegerArray seen = new AtomicIntegerArray(10);                 // and the pool still works after it
            par.forEach(10, 1, seen::incrementAndGet);
            for (int i = 0; i < 10; i++) assertEquals(1, seen.get(i));
        }
    }

    @Test void idleWorkersParkAndWakeForTheNextLaunch() throws InterruptedException {
        try (Parallel par = new Parallel(2)) {
            par.forEach(16, 1, i -> {});
            Thread.sleep(Parallel.SPIN_NANOS / 1_000_000 + 50);                   // past the spin: the worker parks
            AtomicIntegerArray seen = new AtomicIntegerArray(16);
            par.forEach(16, 1, seen::incrementAndGet);
            for (int i = 0; i < 16; i++) assertEquals(1, seen.get(i));
        }
    }

    /**
     * A worker reads each posted set of ranges once, while it has no job, and counts what it read; a job
     * posted meanwhile still runs every index once; a pool of one thread has no worker and reads nothing.
     */
    @Test void anIdleWorkerReadsThePostedRangesOnceAndStillRunsEveryJob() throws InterruptedException {
        try (java.lang.foreign.Arena arena = java.lang.foreign.Arena.ofShared(); Parallel par = new Parallel(2); Parallel alone = new Parallel(1)) {
            java.lang.foreign.MemorySegment memory = arena.allocate(64L << 20, 64);
            Parallel.ReadAhead some = new Parallel.ReadAhead(memory, new long[][] {{0, 100_000, 500_000, 600_032}});
            par.forEach(16, 1, i -> {});                                         // the worker spins (a parked one reads nothing until its next job)
            par.readAhead(some);
            waitFor(par, 200_032);
            Thread.sleep(20);
            assertEquals(200_032, par.readAheadBytes(), "the same ranges are read once");
            par.readAhead(new Parallel.ReadAhead(memory, new long[][] {{0, 64L << 20}}));  // a long read, with jobs posted during it
            for (int launch = 0; launch < 50; launch++) {
                AtomicIntegerArray seen = new AtomicIntegerArray(64);
                par.forEachInRuns(64, 1, seen::incrementAndGet);
                for (int i = 0; i < 64; i++) assertEquals(1, seen.get(i));
            }
            waitFor(par, 200_032 + (64L << 20));
            par.forEach(16, 1, i -> {});
            par.readAhead(some);                                                 // posted anew: read again
            waitFor(par, 2 * 200_032 + (64L << 20));
            par.readAhead(null);
            alone.readAhead(some);
            assertEquals(0, alone.readAheadBytes());
        }
    }

    private static void waitFor(Parallel par, long bytes) throws InterruptedException {
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (par.readAheadBytes() < bytes && System.nanoTime() < deadline) Thread.sleep(1);
        assertEquals(bytes, par.readAheadBytes());
    }
}
