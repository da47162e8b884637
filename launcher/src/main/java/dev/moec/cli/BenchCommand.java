package dev.moec.cli;

import dev.moec.backend.Kernel;
import dev.moec.executor.CompiledModel;
import dev.moec.ir.StepAbi;
import dev.moec.executor.bench.Bench;
import dev.moec.executor.bench.ComputePeak;
import dev.moec.executor.bench.Roofline;
import dev.moec.executor.bench.MemoryBandwidth;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * {@code moec bench decode|prefill}: throughput of the compiled graphs, and how far a step is from its
 * rooflines: the weight bytes it reads at the memory bandwidth, and its multiply-accumulates at the f32 FMA
 * peak (both measured here, or given).
 */
@Command(name = "bench", description = "Measure decode and prefill throughput of the compiled CPU graphs, against the memory-bandwidth and compute rooflines.",
        subcommands = {BenchCommand.Decode.class, BenchCommand.Prefill.class})
final class BenchCommand {

    /** A rate a roofline is drawn with (bytes or multiply-accumulates per second), and where it came from. */
    record Rate(double perSecond, String source) {}

    /** A compute floor in ms, how the report says it, and the peaks it was drawn at (multiply-accumulates per second; a tile's NaN where no MAC ran on it). */
    record Compute(double ms, String how, Roofline.Peaks peaks) {}

    static class Common {
        @Option(names = "--model", paramLabel = "DIR|ARTIFACT", description = "checkpoint (compiled first, with --quantization and --kv-cache-dtype) or artifact (compiled already; those flags do not apply) (default: the embedded demo model)")
        Path model;

        @Option(names = "--seed", defaultValue = "0", description = "seed of the random prompts (default: ${DEFAULT-VALUE})")
        long seed;

        /** Applies when --model is a checkpoint; an artifact keeps the pipeline it was compiled with. */
        @CommandLine.Mixin Moec.QuantizationOptions quantization;

        @CommandLine.Mixin Moec.ExecutorOptions executor;

        @Option(names = "--compute-peak", paramLabel = "GMAC/s", description = "f32 multiply-accumulates per second for the compute roofline (default: measured here with --threads threads)")
        Double computePeak;

        @Option(names = "--int8-peak", paramLabel = "GMAC/s", description = "int8 multiply-accumulates per second of the VNNI tiles, for the compute roofline of the int8 matmuls that run on them (default: measured here with --threads threads, where they run)")
        Double int8Peak;

        @Option(names = "--bf16-dot-peak", paramLabel = "GMAC/s", description = "bf16 multiply-accumulates per second of the bf16 dot tiles, for the compute roofline of a greedy batch's lm_head, which runs on them (default: measured here with --threads threads, where they run)")
        Double dotPeak;

        int threads() { return executor.threads(); }

        /** The VNNI tiles' int8 ceiling: --int8-peak, or measured with the threads. */
        Rate vnniPeak() throws Exception {
            return peak(int8Peak, "--int8-peak", "the VNNI int8 peak", () -> ComputePeak.measureVnni(threads(), 20_000, 5));
        }

        /** The bf16 dot tiles' ceiling: --bf16-dot-peak, or measured with the threads. */
        Rate dotPeak() throws Exception {
            return peak(dotPeak, "--bf16-dot-peak", "the bf16 dot-product peak", () -> ComputePeak.measureDot(threads(), 20_000, 5));
        }

        /** A compute ceiling in multiply-accumulates per second: {@code given} (GMAC/s, from {@code flag}) where set, else {@code measure}d with the threads. */
        private Rate peak(Double given, String flag, String what, Callable<Double> measure) throws Exception {
            if (given != null) {
                if (!(given > 0)) throw new IllegalArgumentException(flag + " must be positive GMAC/s");
                return new Rate(given * 1e9, "given");
            }
            Moec.progress("measuring " + what + " (" + threads() + " threads)");
            return new Rate(measure.call(), "measured, " + threads() + " threads");
        }

        /**
         * The compute floor of {@code macs} multiply-accumulates of which {@code vnniMacs} run on the VNNI
         * tiles and {@code dotMacs} on the bf16 dot tiles, in ms, and how the report names it: each part at
         * its own peak.
         */
        Compute compute(double macs, double vnniMacs, double dotMacs) throws Exception {
            Rate f32 = computePeak();
            Rate int8 = vnniMacs > 0 ? vnniPeak() : null, dot = dotMacs > 0 ? dotPeak() : null;
            Roofline.Peaks peaks = new Roofline.Peaks(f32.perSecond(), int8 != null ? int8.perSecond() : Double.NaN, dot != null ? dot.perSecond() : Double.NaN);
            double ms = peaks.seconds(macs, vnniMacs, dotMacs) * 1e3;
            if (int8 == null && dot == null) return new Compute(ms, String.format("at the f32 FMA peak of %.1f GMAC/s (%s)", f32.perSecond() / 1e9, f32.source()), peaks);
            String f32Part = String.format("at the f32 FMA peak of %.1f GMAC/s, %s", f32.perSecond() / 1e9, f32.source());
            StringBuilder how = new StringBuilder("(");
            if (int8 != null) how.append(String.format("%.2f GMAC of int8 at the VNNI peak of %.1f GMAC/s, %s; ", vnniMacs / 1e9, int8.perSecond() / 1e9, int8.source()));
            if (dot != null) how.append(String.format("%.2f GMAC of the greedy lm_head at the bf16 dot peak of %.1f GMAC/s, %s; ", dotMacs / 1e9, dot.perSecond() / 1e9, dot.source()));
            return new Compute(ms, how.append("the rest ").append(f32Part).append(")").toString(), peaks);
        }

        /** The compute ceiling in multiply-accumulates per second: --compute-peak, or measured with the threads. */
        Rate computePeak() throws Exception {
            return peak(computePeak, "--compute-peak", "the f32 FMA peak", () -> ComputePeak.measure(threads(), 50_000_000L, 5));
        }

        Models.Loaded load(int batch, int positions) throws Exception {
            return load(model != null ? model : Models.demoModel(), batch, positions);
        }

        Models.Loaded load(Path path, int batch, int positions) throws Exception {
            Models.Loaded loaded = Models.compiled(path, List.of(batch), positions, quantization.pipeline(), StepAbi.DEFAULT_KV_BLOCK_SIZE, executor, Moec::progress);
            if (!(loaded.model() instanceof CompiledModel)) throw new IllegalStateException("not a compiled model");
            return loaded;
        }
    }

    @Command(name = "decode", description = "Decode steps at a batch size on its captured graph: tokens/s, ms per step, weight bytes per step and the roofline.")
    static final class Decode extends Common implements Callable<Integer> {
        @Option(names = "--batch", defaultValue = "1", description = "sequences decoded together (default: ${DEFAULT-VALUE})")
        int batch;

        @Option(names = "--tokens", defaultValue = "32", description = "timed decode steps (default: ${DEFAULT-VALUE})")
        int tokens;

        @Option(names = "--prompt-len", defaultValue = "64", description = "tokens of context per sequence before decoding (default: ${DEFAULT-VALUE})")
        int promptLen;

        @Option(names = "--warmup", defaultValue = "8", description = "untimed decode steps first (default: ${DEFAULT-VALUE})")
        int warmup;

        @Option(names = "--warmup-seconds", defaultValue = "10", paramLabel = "S",
                description = "untimed rounds of the whole schedule (prompt, warm-up, timed and profiled steps) for S seconds first, and for at least "
                        + "--warmup-min-steps decode steps, so the JIT has compiled the step before it is measured; 0 for none (default: ${DEFAULT-VALUE})")
        double warmupSeconds;

        @Option(names = "--warmup-min-steps", defaultValue = "200", paramLabel = "N",
                description = "decode steps the JIT warm-up runs at least, however long they take; --warmup-seconds 0 still turns the warm-up off (default: ${DEFAULT-VALUE})")
        int warmupMinSteps;

        @Option(names = "--warmup-max-seconds", defaultValue = "30", paramLabel = "S",
                description = "past --warmup-seconds and --warmup-min-steps, the warm-up goes on with whole rounds while the JIT still compiles "
                        + "(more than 1 %% of a round's time), until S seconds in all (default: ${DEFAULT-VALUE})")
        double warmupMaxSeconds;

        @Option(names = "--bandwidth", paramLabel = "GB/s", description = "memory read bandwidth for the roofline (default: measured here with --threads threads)")
        Double bandwidth;

        @Option(names = "--versus", paramLabel = "DIR|ARTIFACT", description = "a second model to compare with --model in the same process: rounds of --tokens steps alternate between the two, "
                + "so both see the machine in the same state, and the ratio of each round's medians is reported (no roofline)")
        Path versus;

        @Option(names = "--rounds", defaultValue = "6", description = "rounds of each model with --versus (default: ${DEFAULT-VALUE})")
        int rounds;

        @Override
        public Integer call() throws Exception {
            if (batch < 1 || tokens < 1 || promptLen < 1 || warmup < 0) {
                throw new IllegalArgumentException("need --batch, --tokens and --prompt-len of at least 1 and --warmup of at least 0 (got batch "
                        + batch + ", tokens " + tokens + ", prompt-len " + promptLen + ", warmup " + warmup + ")");
            }
            if (bandwidth != null && !(bandwidth > 0)) throw new IllegalArgumentException("--bandwidth must be positive GB/s");
            if (!(warmupSeconds >= 0)) throw new IllegalArgumentException("--warmup-seconds must be 0 or more, not " + warmupSeconds);
            if (warmupMinSteps < 0) throw new IllegalArgumentException("--warmup-min-steps must be 0 or more, not " + warmupMinSteps);
            if (!(warmupMaxSeconds >= 0)) throw new IllegalArgumentException("--warmup-max-seconds must be 0 or more, not " + warmupMaxSeconds);
            if (versus != null) return compare();
            try (Models.Loaded loaded = load(batch, Bench.decodePositions(promptLen, warmup, tokens))) {
                CompiledModel model = (CompiledModel) loaded.model();
                // Without --bandwidth, the bandwidth is read right after every timed step (it moves with the
                // machine's load from one second to the next), and each step is held to the roofline of its
                // own moment. The warm-up reads it too, so the JIT has compiled the reading before the steps count.
                Bench.Decode d;
                Rate bw;
                double achieved;
                if (bandwidth != null) {
                    warmUp(model, null);
                    Moec.progress(decoding());
                    d = Bench.decode(model, batch, promptLen, warmup, tokens, seed);
                    bw = new Rate(bandwidth * 1e9, "given");
                    achieved = d.weightBytesPerStep() / bw.perSecond() * 1e3 / d.medianMs();
                } else {
                    try (MemoryBandwidth.Probe probe = new MemoryBandwidth.Probe(model.parallel(), PROBE_BYTES)) {
                        warmUp(model, probe::read);
                        for (int r = 0; r < 3; r++) probe.read();           // its loop compiled before the samples count, warm-up or none
                        Moec.progress(decoding() + ", reading " + (PROBE_BYTES >> 20) + " MB after each timed step for the bandwidth");
                        d = Bench.decode(model, batch, promptLen, warmup, tokens, seed, probe::read);
                    }
                    bw = new Rate(d.bandwidthMedian(), String.format("measured, %d threads: the median of %d reads of %d MB, one after each timed step, %.2f to %.2f",
                            threads(), d.bandwidths().length, PROBE_BYTES >> 20, Arrays.stream(d.bandwidths()).min().orElseThrow() / 1e9,
                            Arrays.stream(d.bandwidths()).max().orElseThrow() / 1e9));
                    achieved = d.achievedOfRoofline();
                }
                Compute compute = compute(d.macsPerStep(), d.vnniMacsPerStep(), d.dotMacsPerStep());
                double rooflineMs = d.weightBytesPerStep() / bw.perSecond() * 1e3, computeMs = compute.ms();
                System.out.printf("model        %s (%s)%n", loaded.name(), model.artifact().manifest().pipeline());
                System.out.printf("decode       batch %d on %s (%s), %d threads, %d steps%n", batch, d.graph(),
                        model.capturedReplay() ? "captured" : "not captured", threads(), d.steps());
                System.out.printf("throughput   %.2f tokens/s, %.2f ms per step (median; mean %.2f)%n", d.tokensPerSecond(), d.medianMs(), d.meanMs());
                System.out.printf("weights read %.1f MB per step (routed experts %.1f MB: %.1f of %.0f experts per MoE launch)%n",
                        d.weightBytesPerStep() / 1e6, d.expertBytesPerStep() / 1e6, d.expertsUsed(), d.experts());
                System.out.printf("bandwidth    %.2f GB/s (%s)%n", bw.perSecond() / 1e9, bw.source());
                if (d.readingsMoved()) {
                    System.out.printf("note         the readings moved by more than %.1f times: the machine's memory changed speed during the run, so its timed and profiled steps may have met different machines; compare runs whose readings held still%n",
                            Bench.READINGS_MOVED);
                }
                System.out.printf("roofline     %.2f ms per step; achieved %.1f %% of it%s%n", rooflineMs, 100 * achieved,
                        bandwidth != null ? "" : " (the median over the steps of each step's roofline, at the bandwidth read after it, over its time)");
                System.out.printf("compute      %.2f GMAC per step: %.2f ms %s; achieved %.1f %% of it%n",
                        d.macsPerStep() / 1e9, computeMs, compute.how(), 100 * computeMs / d.medianMs());
                System.out.printf("bound        %s: %.2f ms per step at best, were the step's compute hidden behind its memory traffic as a whole%n",
                        computeMs > rooflineMs ? "compute" : "memory", Math.max(computeMs, rooflineMs));
                double launchMs = d.launches().ms(bw.perSecond(), compute.peaks());
                double ofLaunches = bandwidth != null ? launchMs / d.medianMs() : d.achievedOfLaunchBound(compute.peaks());
                System.out.printf("launch bound %.2f ms per step: launch by launch, the slower of its weight bytes at the bandwidth and its MACs at the peaks, added up (so at most %.1f %% of the roofline); achieved %.1f %% of it%n",
                        launchMs, 100 * rooflineMs / launchMs, 100 * ofLaunches);
                System.out.printf("kernels      %.2f ms per step of their own time (profiled steps: %.2f ms); the %s step is %+.1f %% of that%n",
                        d.kernelMsPerStep(), d.profiledMsPerStep(), model.capturedReplay() ? "captured" : "looped",
                        100 * (d.medianMs() - d.kernelMsPerStep()) / d.kernelMsPerStep());
                System.out.printf("jit          %s during the timed and profiled steps%n", Double.isNaN(d.compileMs()) ? "compile time not counted by this JVM"
                        : String.format("%.0f ms of compilation (summed over the compiler threads; %.1f s of steps)", d.compileMs(), (Arrays.stream(d.stepMs()).sum() + d.profiledMsPerStep() * d.steps()) / 1e3));
                System.out.printf("garbage      %s%n", Double.isNaN(d.allocatedBytesPerStep()) ? "heap allocation not counted by this JVM"
                        : String.format("%.1f KB of heap allocated per timed step (all threads)", d.allocatedBytesPerStep() / 1024));
                System.out.printf("read ahead   %.1f MB per timed step: weight panels the workers read into their caches while they waited, ahead of the launches that stream them%n",
                        d.readAheadBytesPerStep() / 1e6);
                printTopKernels(d.nanosByKernel(), d.steps());
            }
            return 0;
        }

        /**
         * --versus: both models loaded side by side, then rounds of decode steps that alternate between
         * them (the second model first in every other round), so a change of the machine's speed from one
         * minute to the next falls on both. Each round's median step of B over A's is one paired ratio.
         */
        private int compare() throws Exception {
            if (rounds < 1) throw new IllegalArgumentException("--rounds must be at least 1, not " + rounds);
            int positions = Bench.decodePositions(promptLen, warmup, tokens);
            Path first = model != null ? model : Models.demoModel();
            try (Models.Loaded a = load(first, batch, positions); Models.Loaded b = load(versus, batch, positions)) {
                CompiledModel ma = (CompiledModel) a.model(), mb = (CompiledModel) b.model();
                warmUp(ma, null);
                warmUp(mb, null);
                Moec.progress("decoding " + rounds + " rounds of " + tokens + " timed steps at batch " + batch + " on each model, alternating");
                double[] ta = new double[rounds], tb = new double[rounds], ratio = new double[rounds];
                for (int r = 0; r < rounds; r++) {
                    boolean bFirst = r % 2 == 1;
                    if (bFirst) tb[r] = Bench.decode(mb, batch, promptLen, warmup, tokens, seed + r).medianMs();
                    ta[r] = Bench.decode(ma, batch, promptLen, warmup, tokens, seed + r).medianMs();
                    if (!bFirst) tb[r] = Bench.decode(mb, batch, promptLen, warmup, tokens, seed + r).medianMs();
                    ratio[r] = tb[r] / ta[r];
                }
                System.out.printf("model A      %s (%s): %s%n", a.name(), ma.artifact().manifest().pipeline(), first);
                System.out.printf("model B      %s (%s): %s%n", b.name(), mb.artifact().manifest().pipeline(), versus);
                System.out.printf("versus       batch %d, %d threads, %d rounds of %d steps on each, alternating%n", batch, threads(), rounds, tokens);
                System.out.printf("A            %.2f ms per step (median of the rounds' medians; fastest round %.2f)%n", Bench.median(ta), Arrays.stream(ta).min().orElseThrow());
                System.out.printf("B            %.2f ms per step (median of the rounds' medians; fastest round %.2f)%n", Bench.median(tb), Arrays.stream(tb).min().orElseThrow());
                System.out.printf("B / A        %.3f (median of the rounds' ratios; from %.3f to %.3f)%n", Bench.median(ratio),
                        Arrays.stream(ratio).min().orElseThrow(), Arrays.stream(ratio).max().orElseThrow());
            }
            return 0;
        }

        /** What one bandwidth reading reads: far past the caches, a few milliseconds. */
        private static final long PROBE_BYTES = 256L << 20;

        private String decoding() {
            return "decoding " + tokens + " timed steps at batch " + batch + " after a " + promptLen + "-token prompt per sequence and " + warmup + " warm-up steps";
        }

        /**
         * {@link Bench#warmUp} for --warmup-seconds, --warmup-min-steps and --warmup-max-seconds, with a line of
         * progress before and after; {@code bandwidth} the reading the measured steps take, or null.
         */
        private void warmUp(CompiledModel model, java.util.function.DoubleSupplier bandwidth) {
            if (warmupSeconds == 0) return;
            double most = Math.max(warmupSeconds, warmupMaxSeconds);
            Moec.progress(String.format("warming up for %s s and at least %d decode steps, then while the JIT compiles (up to %s s): untimed rounds of the prompt and %d decode steps",
                    seconds(warmupSeconds), warmupMinSteps, seconds(most), warmup + 2 * tokens));
            Bench.Warmup w = Bench.warmUp(model, batch, promptLen, warmup, tokens, warmupSeconds, warmupMinSteps, most, seed, bandwidth);
            Moec.progress(String.format("warmed up: %d %s, %d decode steps in %.1f s; the JIT compiled for %s in the last round (%.1f s)", w.rounds(), w.rounds() == 1 ? "round" : "rounds",
                    w.steps(), w.seconds(), Double.isNaN(w.lastRoundCompileMs()) ? "an uncounted time" : String.format("%.0f ms", w.lastRoundCompileMs()), w.lastRoundSeconds()));
        }

        private static String seconds(double s) { return s == Math.rint(s) ? String.valueOf((long) s) : String.valueOf(s); }
    }

    @Command(name = "prefill", description = "Prefill of one prompt: tokens/s.")
    static final class Prefill extends Common implements Callable<Integer> {
        @Option(names = "--tokens", defaultValue = "512", description = "prompt length (default: ${DEFAULT-VALUE})")
        int tokens;

        @Option(names = "--batch", defaultValue = "1", description = "accepted for symmetry with decode; prefill runs one prompt (default: ${DEFAULT-VALUE})")
        int batch;

        @Option(names = "--runs", defaultValue = "3", description = "timed prefills, after one warm-up (default: ${DEFAULT-VALUE})")
        int runs;

        @Override
        public Integer call() throws Exception {
            if (tokens < 1 || runs < 1) throw new IllegalArgumentException("--tokens and --runs must be at least 1");
            if (batch != 1) throw new IllegalArgumentException("moec bench prefill measures one prompt; use --batch 1");
            try (Models.Loaded loaded = load(1, tokens)) {
                CompiledModel model = (CompiledModel) loaded.model();
                Moec.progress("prefilling " + tokens + " tokens, 1 warm-up and " + runs + " timed runs");
                Bench.Prefill p = Bench.prefill(model, tokens, 1, runs, seed);
                System.out.printf("model        %s (%s)%n", loaded.name(), model.artifact().manifest().pipeline());
                System.out.printf("prefill      %d tokens on %s, %d threads, %d runs%n", p.tokens(), p.graph(), threads(), p.runs());
                System.out.printf("throughput   %.1f tokens/s, %.1f ms per prompt (best; mean %.1f)%n", p.tokensPerSecond(), p.bestMs(), p.meanMs());
                Compute compute = compute(p.macsPerRun(), p.vnniMacsPerRun(), 0);
                double computeMs = compute.ms();
                System.out.printf("compute      %.1f GMAC per prompt: %.1f ms %s, at most %.0f tokens/s; achieved %.1f %% of it%n",
                        p.macsPerRun() / 1e9, computeMs, compute.how(), p.tokens() * 1e3 / computeMs, 100 * computeMs / p.bestMs());
                System.out.printf("kernels      %.1f ms per prompt of their own time%n", p.kernelMsPerRun());
                printTopKernels(p.nanosByKernel(), p.runs());
            }
            return 0;
        }
    }

    /** The six kernels that took the most time, per step (or per prompt). */
    private static void printTopKernels(Map<Kernel, Long> nanos, int steps) {
        long total = nanos.values().stream().mapToLong(Long::longValue).sum();
        nanos.entrySet().stream().sorted(Map.Entry.<Kernel, Long>comparingByValue(Comparator.reverseOrder())).limit(6).forEach(e ->
                System.out.printf("  %-26s %8.2f ms each  %5.1f %%%n", e.getKey().name().toLowerCase(), e.getValue() / 1e6 / steps, 100.0 * e.getValue() / total));
    }
}
