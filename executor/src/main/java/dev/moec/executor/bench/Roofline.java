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
 * It also adds up each kernel's own time, so a step's wall time can be split into kernels and overhead.
 */
public final class Roofline implements CpuGraph.LaunchObserver {
    private static final Set<Kernel> GROUPED = Set.of(Kernel.GROUPED_MATMUL, Kernel.GROUPED_QUANT_MATMUL);
    private static final Set<Kernel> WHOLE_MOE = Set.of(Kernel.MOE_EXPERTS, Kernel.MOE_EXPERTS_QUANT);

    private long weightBytes, expertBytes, kernelNanos;
    private long expertLaunches, expertsUsed, expertsTotal;
    private final Map<Kernel, Long> nanosByKernel = new EnumMap<>(Kernel.class);

    @Override
    public void launched(int index, Kernel kernel, Buf[] in, Buf[] out, long nanos) {
        kernelNanos += nanos;
        nanosByKernel.merge(kernel, nanos, Long::sum);
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
        for (int j = 0; j < in.length; j++) {
            Buf b = in[j];
            if (!b.isWeight()) continue;
            long bytes = b.storedBytes();
            if (kernel == Kernel.EMBEDDING && j == 0) {
                int rows = b.shape()[0];
                weightBytes += bytes / rows * in[1].elements();
            } else if (experts > 0 && b.shape().length >= 2 && b.shape()[0] == experts) {
                long read = bytes / experts * used;
                weightBytes += read;
                expertBytes += read;
            } else {
                weightBytes += bytes;
            }
        }
    }

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
