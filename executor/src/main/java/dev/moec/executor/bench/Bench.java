package dev.moec.executor.bench;

import dev.moec.backend.Kernel;
import dev.moec.executor.CompiledModel;

import java.util.Arrays;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * The measurements behind {@code moec bench}: decode steps at a batch size on a captured graph, and
 * prefill of a long prompt. Prompts are seeded random token ids; decoding is greedy ({@link CompiledModel#greedy}, as the server decodes greedy requests).
 */
public final class Bench {
    private Bench() {}

    /**
     * A decode measurement. Times are per step; weight bytes are what a step must read and multiply-accumulates
     * what it must compute (see {@link Roofline}), averaged over the profiled steps. {@code compileMs}: the
     * JIT's compilation time while the timed and profiled steps ran (milliseconds summed over its threads;
     * NaN where the JVM does not count it), time a compiler thread may have taken from the step's threads.
     * {@code allocatedBytesPerStep}: the heap bytes a timed step allocated, over all threads (NaN where the
     * JVM does not count them): a step's garbage, which lands on untouched pages unless the heap is
     * pre-touched (docs/performance-log.md, twelfth session). {@code readAheadBytesPerStep}: the weight
     * bytes the kernels' workers read into their caches while they waited, ahead of the launches that
     * stream them ({@link dev.moec.executor.cpu.Parallel.ReadAhead}), per timed step.
     */
    public record Decode(String graph, int batch, int steps, double medianMs, double meanMs, double weightBytesPerStep,
                         double expertBytesPerStep, double macsPerStep, double vnniMacsPerStep, double dotMacsPerStep, double expertsUsed, double experts, double kernelMsPerStep,
                         double profiledMsPerStep, Map<Kernel, Long> nanosByKernel, double[] stepMs, double[] bandwidths, Roofline.Launches launches,
                         double compileMs, double allocatedBytesPerStep, double readAheadBytesPerStep) {
        public double tokensPerSecond() { return batch * 1000.0 / medianMs; }

        /** The median of the bandwidths read beside the timed steps (bytes per second); NaN without a probe. */
        public double bandwidthMedian() { return bandwidths.length == 0 ? Double.NaN : median(bandwidths); }

        /**
         * Whether the readings beside the timed steps moved by more than {@link #READINGS_MOVED} times from the
         * slowest to the fastest: the machine's memory changed speed during the run, so its timed and profiled
         * steps, which alternate, may have met different machines (on the development machine such runs put
         * the captured step 5 % over its kernels, and steadier ones within 2 %). False without a probe.
         */
        public boolean readingsMoved() {
            if (bandwidths.length == 0) return false;
            double lo = Arrays.stream(bandwidths).min().orElseThrow(), hi = Arrays.stream(bandwidths).max().orElseThrow();
            return hi > READINGS_MOVED * lo;
        }

        /**
         * The fraction of the memory roofline reached: for each timed step, the time its weight bytes take
         * at the bandwidth read right after it, over the step's own time; the median of those. Each step
         * is held to the machine of its own moment, where one reading before and one after all the steps
         * let a step that came in a faster second than both beat its roofline. NaN without a probe.
         */
        public double achievedOfRoofline() {
            if (bandwidths.length == 0) return Double.NaN;
            double[] ratio = new double[stepMs.length];
            for (int s = 0; s < ratio.length; s++) ratio[s] = weightBytesPerStep / bandwidths[s] * 1e3 / stepMs[s];
            return median(ratio);
        }

        /**
         * The fraction of the launch-by-launch bound ({@link Roofline.Launches#ms}) reached at the compute
         * peaks given (per second), each timed step held to the bound at the bandwidth read right after it,
         * as {@link #achievedOfRoofline} does; the median of those. NaN without a probe.
         */
        public double achievedOfLaunchBound(Roofline.Peaks peaks) {
            if (bandwidths.length == 0) return Double.NaN;
            double[] ratio = new double[stepMs.length];
            for (int s = 0; s < ratio.length; s++) ratio[s] = launches.ms(bandwidths[s], peaks) / stepMs[s];
            return median(ratio);
        }
    }

    /** How many times the fastest bandwidth reading of a run may exceed its slowest before the run counts as moving ({@link Decode#readingsMoved}). */
    public static final double READINGS_MOVED = 1.5;

    /** The median of v (the mean of the middle two for an even count). */
    public static double median(double[] v) {
        double[] s = v.clone();
        Arrays.sort(s);
        return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    }

    /** A prefill measurement: one prompt of {@code tokens} tokens, best and mean of the timed runs. */
    public record Prefill(String graph, int tokens, int runs, double bestMs, double meanMs, double kernelMsPerRun, double macsPerRun, double vnniMacsPerRun,
                          Map<Kernel, Long> nanosByKernel) {
        public double tokensPerSecond() { return tokens * 1000.0 / bestMs; }
    }

    /** Context a decode benchmark needs: the prompt, the warm-up and the timed and profiled steps. */
    public static int decodePositions(int promptLen, int warmup, int steps) { return promptLen + warmup + 2 * steps + 1; }

    /**
     * What {@link #warmUp} ran: whole rounds and the decode steps in them, and the JIT's compilation time
     * in its last round (milliseconds, summed over the compiler threads; NaN where the JVM does not count
     * it).
     */
    public record Warmup(int rounds, int steps, double seconds, double lastRoundSeconds, double lastRoundCompileMs) {}

    /**
     * Untimed rounds of {@link #decode}'s whole schedule (a fresh prompt in every slot, the warm-up steps,
     * then timed steps alternating with the bandwidth reading and profiled steps) until {@code seconds}
     * have passed and at least {@code minSteps} decode steps have run, and then on, up to
     * {@code maxSeconds}, while the JIT still compiles, so the steps measured after it run code the JIT
     * has finished compiling. A kernel's own loops are compiled within a few launches, but the code around
     * them (a launch's set-up, a step's replay) is called a few times a step and compiled only after
     * thousands of calls: the first hundred steps ran partly interpreted and took several milliseconds
     * longer (see docs/performance-log.md). Time alone is not enough: in a slow minute ten
     * seconds held 41 batch-8 steps, and the run after them measured attention at 11 ms a step instead of
     * 3.7. The profiled steps and the reading run here too: when they did not, the JIT compiled their code
     * (the launch observer, the roofline's accounting, the probe) during the measured steps, for 0.5-1.5 s
     * on one of the two cores the step's threads spin on, and a step whose thread lost its core waited
     * for it. The JIT counts as still compiling while its compile time in the last round exceeds
     * {@link #QUIET} of the round's time. Each round starts its sequences again at position 0, so the
     * context never grows past the measured steps' and recurrent state starts fresh, as a prompt's does.
     *
     * @param bandwidth the reading {@link #decode} will take after each timed step, or null for none
     */
    public static Warmup warmUp(CompiledModel model, int batch, int promptLen, int warmup, int steps, double seconds, int minSteps, double maxSeconds,
                                long seed, java.util.function.DoubleSupplier bandwidth) {
        check(model, batch, promptLen, warmup, steps);
        if (!(seconds >= 0) || minSteps < 0 || !(maxSeconds >= 0)) {
            throw new IllegalArgumentException("a warm-up takes 0 or more seconds and steps, not " + seconds + " s (at most " + maxSeconds + " s) and " + minSteps + " steps");
        }
        long start = System.nanoTime();
        int rounds = 0, done = 0;
        double lastSeconds = 0, lastCompileMs = Double.NaN;
        while (true) {
            double elapsed = (System.nanoTime() - start) / 1e9;
            boolean owed = elapsed < seconds || done < minSteps;
            boolean compiling = rounds > 0 && !(lastCompileMs <= QUIET * lastSeconds * 1e3) && elapsed < maxSeconds;
            if (!owed && !compiling) break;
            long c0 = compileMillis(), t0 = System.nanoTime();
            measure(model, batch, promptLen, warmup, steps, seed + rounds, bandwidth);
            lastSeconds = (System.nanoTime() - t0) / 1e9;
            lastCompileMs = c0 < 0 ? Double.NaN : compileMillis() - c0;
            done += warmup + 2 * steps;
            rounds++;
        }
        return new Warmup(rounds, done, (System.nanoTime() - start) / 1e9, lastSeconds, lastCompileMs);
    }

    /** The share of a warm-up round's time below which the JIT's compile time in it counts as quiet. */
    public static final double QUIET = 0.01;

    /** The JIT's compilation time so far, in milliseconds summed over its threads, or -1 where the JVM does not count it. */
    public static long compileMillis() {
        java.lang.management.CompilationMXBean jit = java.lang.management.ManagementFactory.getCompilationMXBean();
        return jit != null && jit.isCompilationTimeMonitoringSupported() ? jit.getTotalCompilationTime() : -1;
    }

    /** Heap bytes allocated so far by the live threads, or -1 where the JVM does not count them. */
    public static long allocatedBytes() {
        return java.lang.management.ManagementFactory.getThreadMXBean() instanceof com.sun.management.ThreadMXBean t && t.isThreadAllocatedMemoryEnabled()
                ? t.getTotalThreadAllocatedBytes() : -1;
    }

    private static void check(CompiledModel model, int batch, int promptLen, int warmup, int steps) {
        if (batch < 1 || batch > model.maxSlots()) throw new IllegalArgumentException("batch " + batch + " needs 1.." + model.maxSlots() + " slots");
        if (promptLen < 1 || steps < 1 || warmup < 0) throw new IllegalArgumentException("prompt, steps must be positive");
        int need = decodePositions(promptLen, warmup, steps);
        if (need > model.maxSeqLen()) throw new IllegalArgumentException("the benchmark needs " + need + " positions; the cache holds " + model.maxSeqLen());
    }

    /** A seeded random prompt of {@code promptLen} tokens into each of the first {@code last.length} slots, from position 0; the decode state after it. */
    private static void fill(CompiledModel model, int promptLen, long seed, int[] last, int[] pos, int[] slots, int[] rows) {
        SplittableRandom random = new SplittableRandom(seed);
        for (int b = 0; b < last.length; b++) {
            int[] prompt = random.ints(promptLen, 0, model.vocabSize()).toArray();
            int[] positions = new int[promptLen];
            for (int t = 0; t < promptLen; t++) positions[t] = t;
            int[] slot = new int[promptLen];
            Arrays.fill(slot, b);
            last[b] = model.greedy(prompt, positions, slot, new int[] {promptLen - 1})[0];
            pos[b] = promptLen;
            slots[b] = b;
            rows[b] = b;
        }
    }

    /**
     * Fills {@code batch} slots with a prompt of {@code promptLen} tokens each, runs {@code warmup} untimed
     * decode steps, then {@code steps} timed ones alternating with {@code steps} profiled ones (each launch
     * timed, the routed experts counted).
     */
    public static Decode decode(CompiledModel model, int batch, int promptLen, int warmup, int steps, long seed) {
        return decode(model, batch, promptLen, warmup, steps, seed, null);
    }

    /**
     * {@link #decode}, reading the memory bandwidth with {@code bandwidth} (bytes per second; null for
     * none) right after every timed step, before the profiled one.
     */
    public static Decode decode(CompiledModel model, int batch, int promptLen, int warmup, int steps, long seed, java.util.function.DoubleSupplier bandwidth) {
        check(model, batch, promptLen, warmup, steps);
        long c0 = compileMillis();
        Measured m = measure(model, batch, promptLen, warmup, steps, seed, bandwidth);
        double compileMs = c0 < 0 ? Double.NaN : compileMillis() - c0;
        Roofline roofline = m.roofline();
        long[] sorted = m.times().clone();
        Arrays.sort(sorted);
        double median = sorted[steps / 2] / 1e6, mean = Arrays.stream(m.times()).average().orElse(0) / 1e6;
        double[] stepMs = Arrays.stream(m.times()).mapToDouble(t -> t / 1e6).toArray();
        return new Decode(m.graph(), batch, steps, median, mean, (double) roofline.weightBytes() / steps, (double) roofline.expertBytes() / steps,
                (double) roofline.macs() / steps, (double) roofline.vnniMacs() / steps, (double) roofline.dotMacs() / steps, roofline.expertsUsedPerLaunch(), roofline.expertsPerLaunch(), roofline.kernelNanos() / 1e6 / steps, m.profiledNanos() / 1e6 / steps,
                roofline.nanosByKernel(), stepMs, m.bandwidths(), roofline.launches(steps), compileMs,
                m.allocated() < 0 ? Double.NaN : (double) m.allocated() / steps, (double) m.readAhead() / steps);
    }

    /**
     * What one run of {@link #measure} saw: each timed step's nanoseconds and the bandwidth read after it,
     * the profiled steps' roofline and time, the heap bytes the timed steps allocated (-1: not counted), and
     * the bytes the workers read ahead during them.
     */
    private record Measured(String graph, long[] times, double[] bandwidths, Roofline roofline, long profiledNanos, long allocated, long readAhead) {}

    /**
     * {@link #decode}'s schedule, which {@link #warmUp} runs as it is: a prompt into each slot, the
     * warm-up steps, then timed steps, each followed by the bandwidth reading and a profiled step.
     */
    private static Measured measure(CompiledModel model, int batch, int promptLen, int warmup, int steps, long seed, java.util.function.DoubleSupplier bandwidth) {
        int[] last = new int[batch], pos = new int[batch], slots = new int[batch], rows = new int[batch];
        fill(model, promptLen, seed, last, pos, slots, rows);
        for (int s = 0; s < warmup; s++) step(model, last, pos, slots, rows);
        // Timed and profiled steps alternate, so both see the machine in the same state (its memory
        // bandwidth moves from minute to minute) and the step's time compares with its kernels' own.
        long[] times = new long[steps];
        double[] bandwidths = new double[bandwidth == null ? 0 : steps];
        Roofline roofline = new Roofline();
        long profiled = 0, allocated = 0, readAhead = 0;
        String graph = null;
        try {
            for (int s = 0; s < steps; s++) {
                long a0 = allocatedBytes(), r0 = model.parallel().readAheadBytes(), t0 = System.nanoTime();
                step(model, last, pos, slots, rows);
                times[s] = System.nanoTime() - t0;
                readAhead += model.parallel().readAheadBytes() - r0;
                allocated = a0 < 0 || allocated < 0 ? -1 : allocated + allocatedBytes() - a0;
                if (bandwidth != null) bandwidths[s] = bandwidth.getAsDouble();
                graph = model.lastGraph();
                model.observe(roofline);
                t0 = System.nanoTime();
                step(model, last, pos, slots, rows);
                profiled += System.nanoTime() - t0;
                model.observe(null);
            }
        } finally {
            model.observe(null);
        }
        return new Measured(graph, times, bandwidths, roofline, profiled, allocated, readAhead);
    }

    /** Runs a prompt of {@code tokens} tokens {@code warmup + runs} times into slot 0, timing the last {@code runs}. */
    public static Prefill prefill(CompiledModel model, int tokens, int warmup, int runs, long seed) {
        if (tokens < 1 || runs < 1) throw new IllegalArgumentException("tokens and runs must be positive");
        if (tokens > model.maxSeqLen()) throw new IllegalArgumentException("a prompt of " + tokens + " tokens needs a cache of that many positions; it holds " + model.maxSeqLen());
        int[] prompt = new SplittableRandom(seed).ints(tokens, 0, model.vocabSize()).toArray();
        int[] positions = new int[tokens], slots = new int[tokens];
        for (int t = 0; t < tokens; t++) positions[t] = t;
        double best = Double.MAX_VALUE, total = 0;
        Roofline profile = new Roofline();                                       // kernel times of the timed runs
        try {
            for (int r = 0; r < warmup + runs; r++) {
                if (r == warmup) model.observe(profile);
                long t0 = System.nanoTime();
                model.step(prompt, positions, slots, new int[] {tokens - 1});
                double ms = (System.nanoTime() - t0) / 1e6;
                if (r >= warmup) {
                    best = Math.min(best, ms);
                    total += ms;
                }
            }
        } finally {
            model.observe(null);
        }
        return new Prefill(model.lastGraph(), tokens, runs, best, total / runs, profile.kernelNanos() / 1e6 / runs, (double) profile.macs() / runs,
                (double) profile.vnniMacs() / runs, profile.nanosByKernel());
    }

    private static void step(CompiledModel model, int[] last, int[] pos, int[] slots, int[] rows) {
        int[] next = model.greedy(last.clone(), pos.clone(), slots, rows);
        for (int b = 0; b < last.length; b++) {
            last[b] = next[b];
            pos[b]++;
        }
    }
}
