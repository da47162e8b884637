package dev.moec.executor.bench;

import dev.moec.backend.Kernel;
import dev.moec.executor.cpu.Buf;
import dev.moec.executor.cpu.CpuGraph;

import java.util.EnumMap;
import java.util.Map;
import java.util.Set;

/**
 * Watches the launches of steps and adds up what a memory-bound step must read: every weight a launch
 * reads, as stored in the artifact (bf16, int8, int4), except that
 * <ul>
 *   <li>an embedding lookup reads only the rows of its tokens, and</li>
 *   <li>an expert kernel reads only the experts its tokens were routed to (the non-empty groups of a
 *       grouped matmul, the distinct expert ids of a whole-MoE kernel): stacked weights and scales
 *       [E, ...] count {@code used / E} of their bytes.</li>
 * </ul>
 * It also adds up each kernel's own time, so a step's wall time can be split into kernels and overhead,
 * and the multiply-accumulates of the launches that do nearly all of a step's arithmetic (see {@link #macs}):
 * a step is bound by the slower of its bytes at the memory bandwidth and its multiply-accumulates at the
 * compute peaks ({@link ComputePeak}: the VNNI tiles' for the int8 matmuls that run on them, the bf16 dot
 * tiles' for a greedy step's lm_head where it runs on them ({@link #headLaunched}), the f32 FMA's for the
 * rest). That bound lets a step's compute hide behind its memory traffic as a whole; the
 * launches run one after another, so it also keeps each launch's bytes and multiply-accumulates
 * ({@link #launches}), from which {@link Launches#ms} adds up a bound launch by launch.
 */
public final class Roofline implements CpuGraph.LaunchObserver {
    private static final Set<Kernel> GROUPED = Set.of(Kernel.GROUPED_MATMUL, Kernel.GROUPED_QUANT_MATMUL);
    private static final Set<Kernel> WHOLE_MOE = Set.of(Kernel.MOE_EXPERTS, Kernel.MOE_EXPERTS_QUANT);

    private long weightBytes, expertBytes, kernelNanos, macs, vnniMacs, dotMacs;
    private long expertLaunches, expertsUsed, expertsTotal;
    private final Map<Kernel, Long> nanosByKernel = new EnumMap<>(Kernel.class);
    private long[] launchBytes = new long[0], launchMacs = new long[0], launchVnniMacs = new long[0], launchDotMacs = new long[0];   // [launch index], summed over the steps

    @Override
    public void launched(int index, Kernel kernel, Buf[] in, Buf[] out, long nanos) {
        add(index, kernel, in, nanos, false);
    }

    /** A greedy step's lm_head: its multiply-accumulates ran on the bf16 dot tiles. */
    @Override
    public void headLaunched(int index, Kernel kernel, Buf[] in, Buf[] out, long nanos) {
        add(index, kernel, in, nanos, true);
    }

    private void add(int index, Kernel kernel, Buf[] in, long nanos, boolean dot) {
        kernelNanos += nanos;
        nanosByKernel.merge(kernel, nanos, Long::sum);
        long m = macs(kernel, in);
        boolean vnni = onVnniTiles(kernel, in);
        macs += m;
        if (vnni) vnniMacs += m;
        if (dot) dotMacs += m;
        int experts = 0, used = 0;
        if (GROUPED.contains(kernel)) {
            int[] counts = in[in.length - 1].ints();
            experts = counts.length;
            for (int c : counts) if (c > 0) used++;
        } else if (WHOLE_MOE.contains(kernel)) {
            int[] ids = in[2].ints();
            experts = in[3].shape()[0];
            used = (int) java.util.Arrays.stream(ids).distinct().count();
        }
        if (experts > 0) {
            expertLaunches++;
            expertsUsed += used;
            expertsTotal += experts;
        }
        long read = 0;
        for (int j = 0; j < in.length; j++) {
            Buf b = in[j];
            if (!b.isWeight()) continue;
            long bytes = b.storedBytes();
            if (kernel == Kernel.EMBEDDING && j == 0) {
                int rows = b.shape()[0];
                read += bytes / rows * in[1].elements();
            } else if (experts > 0 && b.shape().length >= 2 && b.shape()[0] == experts) {
                long routed = bytes / experts * used;
                read += routed;
                expertBytes += routed;
            } else {
                read += bytes;
            }
        }
        weightBytes += read;
        if (index >= launchBytes.length) {
            int n = Math.max(index + 1, 2 * launchBytes.length);
            launchBytes = java.util.Arrays.copyOf(launchBytes, n);
            launchMacs = java.util.Arrays.copyOf(launchMacs, n);
            launchVnniMacs = java.util.Arrays.copyOf(launchVnniMacs, n);
            launchDotMacs = java.util.Arrays.copyOf(launchDotMacs, n);
        }
        launchBytes[index] += read;
        launchMacs[index] += m;
        if (vnni) launchVnniMacs[index] += m;
        if (dot) launchDotMacs[index] += m;
    }

    /**
     * The compute peaks a step's multiply-accumulates are drawn against, per second: the f32 FMA's, the
     * VNNI tiles' (int8) and the bf16 dot tiles' (NaN where no multiply-accumulate ran on those tiles).
     */
    public record Peaks(double f32, double vnni, double dot) {
        /** Seconds {@code macs} multiply-accumulates take, {@code vnniMacs} and {@code dotMacs} of them on those tiles, each part at its peak. */
        public double seconds(double macs, double vnniMacs, double dotMacs) {
            return (macs - vnniMacs - dotMacs) / f32 + (vnniMacs > 0 ? vnniMacs / vnni : 0) + (dotMacs > 0 ? dotMacs / dot : 0);
        }
    }

    /**
     * What each launch of a step must read and compute, per step: weight bytes (as {@link #weightBytes}
     * counts them), all its multiply-accumulates, and those of them on the VNNI tiles and on the bf16 dot
     * tiles, by launch index.
     */
    public record Launches(double[] bytes, double[] macs, double[] vnniMacs, double[] dotMacs) {
        /**
         * The launch-by-launch bound of a step in ms: each launch at the slower of its bytes at
         * {@code bandwidth} (bytes/s) and its multiply-accumulates at the {@code peaks}, added up. A
         * launch that is compute-bound (a batch's lm_head) leaves the memory idle while it runs, and the
         * next launch cannot start before it ends; no schedule of these launches is faster.
         */
        public double ms(double bandwidth, Peaks peaks) {
            double s = 0;
            for (int i = 0; i < bytes.length; i++) s += Math.max(bytes[i] / bandwidth, peaks.seconds(macs[i], vnniMacs[i], dotMacs[i]));
            return s * 1e3;
        }
    }

    /** {@link Launches} per step, over {@code steps} observed steps. */
    public Launches launches(int steps) {
        int n = launchBytes.length;
        while (n > 0 && launchBytes[n - 1] == 0 && launchMacs[n - 1] == 0) n--;
        double[] bytes = new double[n], all = new double[n], vnni = new double[n], dot = new double[n];
        for (int i = 0; i < n; i++) {
            bytes[i] = (double) launchBytes[i] / steps;
            all[i] = (double) launchMacs[i] / steps;
            vnni[i] = (double) launchVnniMacs[i] / steps;
            dot[i] = (double) launchDotMacs[i] / steps;
        }
        return new Launches(bytes, all, vnni, dot);
    }

    /**
     * Multiply-accumulates of one launch: the matmuls (rows x output channels x inner dim; a grouped matmul
     * only its routed rows), the unfused experts (three projections per routed (token, expert)), and
     * attention (each token's query heads against its positions 0..p, scores and values; MLA in its
     * absorbed form). The other kernels are elementwise or per-row and count nothing.
     */
    public static long macs(Kernel kernel, Buf[] in) {
        return switch (kernel) {
            case MATMUL, HEAD_MATMUL -> (long) in[0].elements() * in[1].shape()[in[1].shape().length - 2];
            case QUANT_MATMUL -> (long) in[0].elements() * in[2].shape()[0];
            case QUANT_MATMUL_STATIC -> (long) in[0].elements() * in[1].shape()[0];
            case GROUPED_MATMUL, GROUPED_QUANT_MATMUL -> {
                int[] w = in[kernel == Kernel.GROUPED_MATMUL ? 1 : 2].shape(), x = in[0].shape();
                long rows = Math.min(java.util.Arrays.stream(in[in.length - 1].ints()).asLongStream().map(c -> Math.max(c, 0)).sum(), x[0]);
                yield rows * w[1] * w[2];
            }
            case MOE_EXPERTS, MOE_EXPERTS_QUANT -> {
                int[] x = in[0].shape(), gate = in[3].shape();
                yield (long) x[0] * in[1].shape()[1] * 3 * x[1] * gate[1];
            }
            case ATTENTION, FUSED_INFER_ATTENTION, FUSED_INFER_ATTENTION_INT8 -> {
                boolean int8 = kernel == Kernel.FUSED_INFER_ATTENTION_INT8;
                int[] q = in[0].shape(), v = in[int8 ? 3 : 2].shape();
                yield attended(in[int8 ? 6 : 4], in[int8 ? 7 : 5], Integer.MAX_VALUE) * q[1] * (q[2] + v[3]);
            }
            case FUSED_INFER_ATTENTION_MLA, MLA_ATTENTION, SPARSE_FLASH_ATTENTION, MLA_ATTENTION_SPARSE -> {
                int[] qn = in[0].shape(), qp = in[1].shape(), w = in[3].shape();
                int heads = qn[1], dn = qn[2], dr = qp[2], c = w[1], v = w[0] / heads - dn;
                boolean sparse = in.length > 7;
                long keys = attended(in[5], in[6], sparse ? in[7].shape()[1] : Integer.MAX_VALUE);
                yield (long) qn[0] * heads * (dn + v) * c + keys * heads * (2L * c + dr);
            }
            default -> 0;
        };
    }

    /** Whether a launch's multiply-accumulates run on the {@link dev.moec.executor.cpu.Vnni} tiles: an int8 matmul whose weight panels are in their layout. */
    public static boolean onVnniTiles(Kernel kernel, Buf[] in) {
        return (kernel == Kernel.QUANT_MATMUL || kernel == Kernel.GROUPED_QUANT_MATMUL) && in[2].onVnniTiles();
    }

    /** Positions the tokens attend to: each live token (slot >= 0) its positions 0..p, at most {@code limit}. */
    private static long attended(Buf slots, Buf positions, int limit) {
        int[] s = slots.ints(), p = positions.ints();
        long n = 0;
        for (int t = 0; t < s.length; t++) if (s[t] >= 0) n += Math.min(limit, p[t] + 1L);
        return n;
    }

    /** Multiply-accumulates so far, over all observed steps (see {@link #macs(Kernel, Buf[])}). */
    public long macs() { return macs; }

    /** Of {@link #macs()}, those run on the VNNI tiles ({@link #onVnniTiles}). */
    public long vnniMacs() { return vnniMacs; }

    /** Of {@link #macs()}, those run on the bf16 dot tiles (a greedy step's lm_head: {@link #headLaunched}). */
    public long dotMacs() { return dotMacs; }

    /** Weight bytes read so far, over all observed steps. */
    public long weightBytes() { return weightBytes; }
    /** Of {@link #weightBytes()}, the bytes of routed experts. */
    public long expertBytes() { return expertBytes; }
    /** Sum of the kernels' own times. */
    public long kernelNanos() { return kernelNanos; }
    public Map<Kernel, Long> nanosByKernel() { return Map.copyOf(nanosByKernel); }
    /** Average experts used per expert launch, and of how many. */
    public double expertsUsedPerLaunch() { return expertLaunches == 0 ? 0 : (double) expertsUsed / expertLaunches; }
    public double expertsPerLaunch() { return expertLaunches == 0 ? 0 : (double) expertsTotal / expertLaunches; }
}
