package dev.moec.executor.cpu;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;
import java.util.function.IntConsumer;

/**
 * Splits index ranges over the executor's threads: the calling thread and {@code threads - 1} workers.
 * A decode step is hundreds of kernel launches of tens of microseconds each, so the workers spin between
 * launches instead of parking: waking a parked thread takes tens of microseconds on a virtual machine (a
 * cross-CPU interrupt), about as long as the kernel itself, and a fork/join pool pays it on every launch.
 * A worker that has seen no job for {@link #SPIN_NANOS} parks, and the next job unparks it.
 */
public final class Parallel implements AutoCloseable {
    /** How long an idle worker spins before it parks: a few steps' worth of gaps between launches. */
    static final long SPIN_NANOS = 20_000_000L;

    private final int threads;
    private final Thread[] workers;
    private volatile Job job;                                   // the running job, or the last one
    private volatile boolean closed;
    private final boolean[] parked;                             // guarded by itself
    private final ThreadLocal<Boolean> inside = ThreadLocal.withInitial(() -> false);
    private volatile ReadAhead readAhead;                      // what an idle worker reads, or null
    private volatile int readAheadSink;                        // keeps the reads
    private final AtomicLongArray readAheadBytes;              // worker w's bytes read ahead so far at w * Job.PAD, written by it alone

    /**
     * Memory the workers read into their caches while they wait for their next job: worker w (thread w + 1)
     * reads {@code ranges[w]}, pairs of byte offsets {from, to, from, to, ...} of {@code memory}, in order,
     * one load a 64-byte line, and looks for a job after every {@link #READ_AHEAD_CHUNK}. A decode step
     * posts, at each launch that streams weights, the front of what each worker will stream in the next
     * such launch ({@link CpuKernels#readAheadOf}), so the time a worker would spin (while the calling
     * thread runs the small kernels between two matmuls, or finishes its part of a launch) moves bytes the
     * next launch then finds in cache. A posted set is read once; posting it again reads it again. A worker
     * parked after {@link #SPIN_NANOS} without a job reads nothing until its next job.
     */
    public record ReadAhead(MemorySegment memory, long[][] ranges) {}

    /** Bytes a worker reads ahead between two looks at the job: 4 KB, a few hundred nanoseconds. */
    static final long READ_AHEAD_CHUNK = 4096;

    /**
     * One loop over [0, n), in one of two schedules.
     *
     * <p>Guided ({@link #forEach}): one range, from whose front every thread takes a share of what is left
     * (at least the grain), so the first takes are large and the last ones a grain each, and the threads
     * finish within about one take of each other. Takes of equal size (eight a launch) left a thread
     * waiting for the other's last one at the end of every launch (about 10 µs a decode launch, a whole
     * 19 MB take of the lm_head); guided, a batch-1 step took 3–4 % less and a batch-8 step 6 % less in
     * one in-process A/B of two and 4 % more in the other.
     *
     * <p>In runs ({@link #forEachInRuns}): one contiguous range a thread (each at least the grain), which
     * the thread takes from its front, a grain at a time; a thread whose range is done takes from the back
     * of the others', a grain at a time, so the threads still finish within about a grain of each other.
     * Each thread then reads one run of memory front to back, where guided takes lie apart and each jump
     * starts a new stream for the hardware prefetcher. A harness of 64 int8 decode matmuls of 3 MB at one
     * row (the stream tiles alone), alternating with a 256 MB read by the same threads: where that read
     * gave 45–55 GB/s, the guided launches streamed at 41–42 GB/s and launches in two runs at 48–49, as
     * fast as one launch over all 64 weights; where it gave 30–35 GB/s, at 92 and 95 % of the read. In
     * the model, old and new executors in one process, rounds alternating: a batch-1 step's experts 3.95
     * -> 3.58 ms (every round of 14 faster), a batch-8 step 0.95 times as long (two runs of 8 rounds). A
     * prompt's launches stay guided: in runs, a 512-token prompt took 5 % longer in-process.
     *
     * <p>A thread adds what it ran to {@link #done} once, at its end: counted per take, the count moved
     * between the cores' caches every few microseconds, and a batch-1 step in runs took 6.5 % longer.
     */
    private static final class Job {
        /** Padding between the ranges' states, in longs: two cache lines, so each thread's takes stay in its own. */
        private static final int PAD = 16;

        final int n, threads, grain, ranges;
        final boolean inRuns;
        final IntConsumer body;
        final AtomicLongArray state;                            // range r at r * PAD: its front (high int) and back (low int)
        final AtomicInteger done = new AtomicInteger();         // indices finished
        final AtomicReference<Throwable> failure = new AtomicReference<>();

        Job(int n, int threads, int grain, boolean inRuns, IntConsumer body) {
            this.n = n;
            this.threads = threads;
            this.grain = grain;
            this.inRuns = inRuns;
            this.ranges = inRuns ? Math.max(1, Math.min(threads, n / grain)) : 1;
            this.body = body;
            this.state = new AtomicLongArray(ranges * PAD);
            for (int r = 0; r < ranges; r++) state.set(r * PAD, pack((int) ((long) n * r / ranges), (int) ((long) n * (r + 1) / ranges)));
        }

        private static long pack(int front, int back) { return (long) front << 32 | (back & 0xFFFFFFFFL); }

        /**
         * Takes indices from range r, from its front or its back, and returns the first and the end packed,
         * or -1 when the range is empty: guided, a share of what is left; in runs, {@code grain} indices,
         * or all that are left where fewer than two grains are.
         */
        private long take(int r, boolean front) {
            while (true) {
                long s = state.get(r * PAD);
                int from = (int) (s >>> 32), to = (int) s, left = to - from;
                if (left <= 0) return -1;
                int count = !inRuns ? Math.min(left, Math.max(grain, left / (2 * threads))) : left < 2 * grain ? left : grain;
                long next = front ? pack(from + count, to) : pack(from, to - count);
                if (state.compareAndSet(r * PAD, s, next)) return front ? pack(from, from + count) : pack(to - count, to);
            }
        }

        /**
         * Runs thread {@code self}'s range (guided: the one range), then what is left of the others', until
         * nothing is left; adds what it ran to {@link #done} once, at the end.
         */
        void work(int self) {
            int ran = 0, own = inRuns ? self : 0;                       // guided: every thread takes from the one range's front
            try {
                if (own < ranges) {
                    for (long t; (t = take(own, true)) >= 0; ) ran += run(t);
                }
                for (int i = 1; i <= ranges; i++) {
                    int r = (own + i) % ranges;
                    if (r == own && own < ranges) continue;
                    for (long t; (t = take(r, false)) >= 0; ) ran += run(t);
                }
            } finally {
                done.addAndGet(ran);
            }
        }

        /** Runs the indices taken (the first and the end, packed); returns how many, a failure or not. */
        private int run(long taken) {
            int from = (int) (taken >>> 32), to = (int) taken;
            try {
                if (failure.get() == null) for (int k = from; k < to; k++) body.accept(k);
            } catch (Throwable t) {
                failure.compareAndSet(null, t);
            }
            return to - from;
        }
    }

    public Parallel(int threads) {
        this.threads = Math.max(1, threads);
        this.workers = new Thread[this.threads - 1];
        this.parked = new boolean[workers.length];
        this.readAheadBytes = new AtomicLongArray(Math.max(1, workers.length) * Job.PAD);
        for (int w = 0; w < workers.length; w++) {
            int id = w;
            workers[w] = Thread.ofPlatform().daemon().name("moec-kernel-" + (w + 1)).start(() -> workerLoop(id));
        }
    }

    public int threads() { return threads; }

    /** What idle workers read from now on ({@link ReadAhead}); null: nothing. */
    public void readAhead(ReadAhead r) { readAhead = r; }

    /** Bytes the workers have read ahead so far, all of them together. */
    public long readAheadBytes() {
        long sum = 0;
        for (int w = 0; w < workers.length; w++) sum += readAheadBytes.getAcquire(w * Job.PAD);
        return sum;
    }

    /** Runs {@code body} for every index in [0, n), in chunks of at least {@code grain}, guided (see {@link Job}). */
    public void forEach(int n, int grain, IntConsumer body) { run(n, grain, false, body); }

    /**
     * Runs {@code body} for every index in [0, n), in chunks of at least {@code grain}, each thread over one
     * contiguous run of indices front to back before it helps the others from their backs (see
     * {@link Job}): for launches that stream memory in index order, a decode step's matmuls.
     */
    public void forEachInRuns(int n, int grain, IntConsumer body) { run(n, grain, true, body); }

    private void run(int n, int grain, boolean inRuns, IntConsumer body) {
        if (n <= 0) return;
        if (threads == 1 || n <= grain || inside.get()) {             // nested calls run on the calling worker
            for (int k = 0; k < n; k++) body.accept(k);
            return;
        }
        Job j = new Job(n, threads, Math.max(1, grain), inRuns, body);
        job = j;
        synchronized (parked) {
            for (int w = 0; w < workers.length; w++) {
                if (parked[w]) {
                    parked[w] = false;
                    LockSupport.unpark(workers[w]);
                }
            }
        }
        inside.set(true);
        try {
            j.work(0);
        } finally {
            inside.set(false);
        }
        while (j.done.get() < n) Thread.onSpinWait();
        Throwable t = j.failure.get();
        if (t instanceof RuntimeException e) throw e;
        if (t instanceof Error e) throw e;
        if (t != null) throw new IllegalStateException(t);
    }

    private void workerLoop(int id) {
        inside.set(true);
        Job seen = null;
        ReadAhead ahead = null;
        long[] ranges = new long[0];
        int next = 0;
        long at = 0, end = 0;
        int sink = 0;
        long idleSince = System.nanoTime();
        while (!closed) {
            Job j = job;
            if (j != null && j != seen) {
                seen = j;
                j.work(id + 1);
                idleSince = System.nanoTime();
                continue;
            }
            ReadAhead r = readAhead;
            if (r != ahead) {
                ahead = r;
                ranges = r != null && id < r.ranges().length ? r.ranges()[id] : new long[0];
                next = 0;
                at = end = 0;
            }
            if (at >= end && next < ranges.length) {
                at = ranges[next];
                end = ranges[next + 1];
                next += 2;
            }
            if (at < end) {
                long stop = Math.min(end, at + READ_AHEAD_CHUNK);
                try {
                    sink += touch(ahead.memory(), at, stop);
                } catch (RuntimeException gone) {                      // its memory freed, or confined to another thread: read no more of it
                    at = end;
                    next = ranges.length;
                    continue;
                }
                readAheadBytes.setRelease(id * Job.PAD, readAheadBytes.getPlain(id * Job.PAD) + stop - at);
                at = stop;
                if (at >= end) readAheadSink = sink;
                idleSince = System.nanoTime();
                continue;
            }
            if (System.nanoTime() - idleSince < SPIN_NANOS) {
                Thread.onSpinWait();
                continue;
            }
            synchronized (parked) {
                if (job != seen || closed) continue;                   // a job arrived meanwhile
                parked[id] = true;
            }
            LockSupport.park(this);
            synchronized (parked) {
                parked[id] = false;
            }
            idleSince = System.nanoTime();
        }
    }

    /** One byte of every 64-byte line of [from, to), summed, four loads in flight at a time. */
    private static int touch(MemorySegment m, long from, long to) {
        int s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        long a = from;
        for (; a + 192 < to; a += 256) {
            s0 += m.get(ValueLayout.JAVA_BYTE, a);
            s1 += m.get(ValueLayout.JAVA_BYTE, a + 64);
            s2 += m.get(ValueLayout.JAVA_BYTE, a + 128);
            s3 += m.get(ValueLayout.JAVA_BYTE, a + 192);
        }
        for (; a < to; a += 64) s0 += m.get(ValueLayout.JAVA_BYTE, a);
        return s0 + s1 + s2 + s3;
    }

    /** Stops the workers (they are daemons, so an unclosed instance never keeps the JVM alive). */
    @Override
    public void close() {
        closed = true;
        for (Thread w : workers) LockSupport.unpark(w);
    }
}
