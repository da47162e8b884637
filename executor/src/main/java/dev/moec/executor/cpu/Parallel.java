package dev.moec.executor.cpu;

import java.util.concurrent.atomic.AtomicInteger;
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

    /**
     * One forEach: contiguous ranges of indices taken from a shared counter, each a share of what is left
     * (guided scheduling): the first ranges are large, the last ones {@code grain} indices, so the threads
     * finish within about one index of each other. Ranges of equal size (eight a launch) left a thread
     * waiting for the other's last range at the end of every launch (about 10 µs a decode launch, a
     * whole 19 MB range of the lm_head); guided, a batch-1 step took 3–4 % less and a batch-8 step
     * 6 % less in one in-process A/B of two and 4 % more in the other.
     */
    private static final class Job {
        final int n, threads, grain;
        final IntConsumer body;
        final AtomicInteger next = new AtomicInteger(), done = new AtomicInteger();   // the first index not taken; indices finished
        final AtomicReference<Throwable> failure = new AtomicReference<>();

        Job(int n, int threads, int grain, IntConsumer body) {
            this.n = n;
            this.threads = threads;
            this.grain = grain;
            this.body = body;
        }

        /** Takes ranges and runs them until none is left. */
        void work() {
            while (true) {
                int from, to;
                do {
                    from = next.get();
                    if (from >= n) return;
                    to = Math.min(n, from + Math.max(grain, (n - from) / (2 * threads)));
                } while (!next.compareAndSet(from, to));
                try {
                    if (failure.get() == null) for (int k = from; k < to; k++) body.accept(k);
                } catch (Throwable t) {
                    failure.compareAndSet(null, t);
                } finally {
                    done.addAndGet(to - from);
                }
            }
        }
    }

    public Parallel(int threads) {
        this.threads = Math.max(1, threads);
        this.workers = new Thread[this.threads - 1];
        this.parked = new boolean[workers.length];
        for (int w = 0; w < workers.length; w++) {
            int id = w;
            workers[w] = Thread.ofPlatform().daemon().name("moec-kernel-" + (w + 1)).start(() -> workerLoop(id));
        }
    }

    public int threads() { return threads; }

    /** Runs {@code body} for every index in [0, n), in chunks of at least {@code grain}. */
    public void forEach(int n, int grain, IntConsumer body) {
        if (n <= 0) return;
        if (threads == 1 || n <= grain || inside.get()) {             // nested calls run on the calling worker
            for (int k = 0; k < n; k++) body.accept(k);
            return;
        }
        Job j = new Job(n, threads, Math.max(1, grain), body);
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
            j.work();
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
        long idleSince = System.nanoTime();
        while (!closed) {
            Job j = job;
            if (j != null && j != seen) {
                seen = j;
                j.work();
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

    /** Stops the workers (they are daemons, so an unclosed instance never keeps the JVM alive). */
    @Override
    public void close() {
        closed = true;
        for (Thread w : workers) LockSupport.unpark(w);
    }
}
