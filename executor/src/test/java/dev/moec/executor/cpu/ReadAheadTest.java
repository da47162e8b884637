package dev.moec.executor.cpu;

import dev.moec.backend.Kernel;
import dev.moec.ir.DType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What the workers read ahead of a streaming launch ({@link CpuKernels#readAheadOf}) is the front of what
 * they then stream: each worker's first {@link CpuKernels#READ_AHEAD_BYTES} of panels in the order its own
 * run of tasks takes them, then, for the first worker, the first {@link CpuKernels#READ_AHEAD_CALLERS} of
 * the calling thread's run. The tasks are recorded as the kernels' own cut hands them to the threads
 * ({@link CpuKernels#forEachStreamedBlock}, which a decode step's matmuls call, and
 * {@link CpuKernels#forEachStreamedGroupBlock}, the grouped matmuls' cut), and their bytes are found from
 * the panel layout ({@link WeightPanels#panelBytes}).
 */
class ReadAheadTest {
    private static final String WORKER = "moec-kernel-1";

    @ParameterizedTest(name = "{0} {1} x {2}")
    @CsvSource({
            "MATMUL, 4096, 512",                 // bf16: 16 tasks of 8 panels, the worker's run past the cap
            "QUANT_MATMUL, 2048, 1024",          // the q_proj's shape
            "QUANT_MATMUL, 512, 1024",           // a k_proj's: each run under the caps
            "QUANT_MATMUL, 1000, 256",           // a partial last panel
    })
    void eachWorkerReadsTheFrontOfItsRunThenTheCallersFront(Kernel kernel, int n, int k) {
        DType type = kernel == Kernel.MATMUL ? DType.BF16 : DType.I8;
        boolean vnni = type == DType.I8 && Vnni.AVAILABLE;
        try (Arena arena = Arena.ofConfined(); Parallel par = new Parallel(2); CpuKernels kernels = new CpuKernels(par)) {
            Buf w = paneled("w", type, vnni, arena, 1, n, k);
            Buf[] in = kernel == Kernel.MATMUL
                    ? new Buf[] {floats("x", 1, k), w}
                    : new Buf[] {ints("x", DType.I8, 1, k), floats("xs", 1), w, floats("ws", n)};
            Parallel.ReadAhead ahead = kernels.readAheadOf(kernel, in);
            assertSame(w.panels, ahead.memory());

            Map<String, List<long[]>> ran = recorded(body -> kernels.forEachStreamedBlock(n, k, type, (o0, o1) -> body.run(0, o0, o1, bytes(type, vnni, k, n, 0, o0, o1))));
            assertArrayEquals(expected(ran, n), ahead.ranges()[0]);
        }
    }

    @Test
    void aGroupedMatmulsReadAheadFollowsItsCounts() {
        int experts = 8, n = 512, k = 1024, rows = 7;
        boolean vnni = Vnni.AVAILABLE;
        try (Arena arena = Arena.ofConfined(); Parallel par = new Parallel(2); CpuKernels kernels = new CpuKernels(par)) {
            Buf w = paneled("w", DType.I8, vnni, arena, experts, n, k);
            Buf counts = new Buf("counts", DType.I32, new int[] {experts}, null, new int[] {2, 0, 1, 0, 2, 1, 0, 1}, null);
            Buf x = ints("x", DType.I8, rows, k);
            Buf[] in = {x, floats("xs", rows), w, floats("ws", experts, n), counts};
            Parallel.ReadAhead ahead = kernels.readAheadOf(Kernel.GROUPED_QUANT_MATMUL, in);

            int[] group = {0, -1, 1, -1, 2, 3, -1, 4};              // each expert's place among those with rows
            Map<String, List<long[]>> ran = recorded(body -> kernels.forEachStreamedGroupBlock(x, w, counts, DType.I8, floats("out", rows, n),
                    (expert, from, count, o0, o1) -> body.run(group[expert], o0, o1, bytes(DType.I8, vnni, k, n, expert, o0, o1))));
            assertArrayEquals(expected(ran, n), ahead.ranges()[0]);

            counts.i[4] = 0;                                         // another routing: other experts, other bytes
            counts.i[6] = 2;
            assertTrue(!Arrays.equals(ahead.ranges()[0], kernels.readAheadOf(Kernel.GROUPED_QUANT_MATMUL, in).ranges()[0]));
        }
    }

    @Test
    void nothingIsReadAheadOfAPromptsMatmulOrWithOneThread() {
        try (Arena arena = Arena.ofConfined(); Parallel two = new Parallel(2); CpuKernels kernels = new CpuKernels(two);
             Parallel one = new Parallel(1); CpuKernels alone = new CpuKernels(one)) {
            Buf w = paneled("w", DType.BF16, false, arena, 1, 256, 128);
            assertNull(kernels.readAheadOf(Kernel.MATMUL, new Buf[] {floats("x", CpuKernels.PANEL_ROWS, 128), w}));
            assertNull(alone.readAheadOf(Kernel.MATMUL, new Buf[] {floats("x", 1, 128), w}));
            assertNull(kernels.readAheadOf(Kernel.RMS_NORM, new Buf[] {floats("x", 1, 128), floats("g", 128)}));
        }
    }

    /** What a recorded launch's task reports: its group, its channels [o0, o1) and their bytes. */
    private interface Task { void run(int group, int o0, int o1, long[] bytes); }

    /**
     * The tasks of a launch by the thread that ran them, in the order each ran them. Each task takes a
     * while, so both threads take part; a launch that one thread ran alone (the other not yet awake on a
     * busy machine) is run again.
     */
    private static Map<String, List<long[]>> recorded(java.util.function.Consumer<Task> launch) {
        for (int attempt = 0; ; attempt++) {
            Map<String, List<long[]>> ran = new ConcurrentHashMap<>();
            launch.accept((group, o0, o1, bytes) -> {
                ran.computeIfAbsent(Thread.currentThread().getName(), t -> java.util.Collections.synchronizedList(new ArrayList<>()))
                        .add(new long[] {group, o0, o1, bytes[0], bytes[1]});
                long until = System.nanoTime() + 300_000;
                while (System.nanoTime() < until) Thread.onSpinWait();
            });
            if (ran.size() == 2 || attempt == 20) return ran;
        }
    }

    /**
     * The worker's expected ranges: the front of its own run, then the front of the calling thread's, each
     * joined and capped. With two threads the worker's run starts at the first task it ran (its run's
     * front) and goes to the launch's end, the calling thread's is everything before; which thread ran a
     * task later on depends on who finished first (a thread done with its run takes from the other's back).
     */
    private static long[] expected(Map<String, List<long[]>> ran, int n) {
        List<long[]> worker = ran.get(WORKER), all = new ArrayList<>();
        assertTrue(worker != null && ran.size() == 2, "both threads ran tasks: " + ran.keySet());
        ran.values().forEach(all::addAll);
        int block = 0;                                              // channels of a whole task: the most any task took
        for (long[] t : all) block = (int) Math.max(block, t[2] - t[1]);
        int size = block, blocks = Math.ceilDiv(n, block);
        all.sort(java.util.Comparator.comparingLong(t -> index(t, size, blocks)));
        long first = index(worker.getFirst(), size, blocks);
        List<long[]> own = all.stream().filter(t -> index(t, size, blocks) >= first).toList();
        List<long[]> callers = all.stream().filter(t -> index(t, size, blocks) < first).toList();
        List<Long> out = new ArrayList<>();
        front(own, CpuKernels.READ_AHEAD_BYTES, out);
        front(callers, CpuKernels.READ_AHEAD_CALLERS, out);
        return out.stream().mapToLong(Long::longValue).toArray();
    }

    /** A task's place in the launch's order: group by group, blocks of {@code block} channels in order. */
    private static long index(long[] task, int block, int blocks) { return task[0] * blocks + task[1] / block; }

    /** The first {@code cap} bytes of {@code tasks} in order, touching ranges joined, appended to {@code out} as from, to pairs. */
    private static void front(List<long[]> tasks, long cap, List<Long> out) {
        int start = out.size();
        for (long[] task : tasks) {
            long from = task[3], take = Math.min(task[4] - from, cap);
            if (take <= 0) break;
            cap -= take;
            if (out.size() > start && out.getLast() == from) out.set(out.size() - 1, from + take);
            else {
                out.add(from);
                out.add(from + take);
            }
        }
    }

    /** The bytes of matrix {@code matrix}'s panels that hold output channels [o0, o1), from the layout's sizes alone. */
    private static long[] bytes(DType type, boolean vnni, int k, int n, int matrix, int o0, int o1) {
        int width = vnni ? Vnni.WIDTH : Simd.panelWidth(type);
        long panel = WeightPanels.panelBytes(type, 1, width, k, vnni), matrixBytes = WeightPanels.panelBytes(type, 1, n, k, vnni);
        return new long[] {matrix * matrixBytes + (o0 / width) * panel, matrix * matrixBytes + Math.ceilDiv(o1, width) * panel};
    }

    /** A weight of {@code matrices} x rows x cols with its panels (zeros: only the layout matters here). */
    private static Buf paneled(String name, DType type, boolean vnni, Arena arena, int matrices, int rows, int cols) {
        int[] shape = matrices == 1 ? new int[] {rows, cols} : new int[] {matrices, rows, cols};
        MemorySegment raw = arena.allocate((long) matrices * rows * cols * type.bytes(1));
        MemorySegment panels = arena.allocate(WeightPanels.panelBytes(type, matrices, rows, cols, vnni), 64);
        return new Buf(name, type, shape, null, null, raw).withPanels(panels, vnni);
    }

    private static Buf floats(String name, int... shape) {
        return new Buf(name, DType.F32, shape, new float[Arrays.stream(shape).reduce(1, (a, b) -> a * b)], null, null);
    }

    private static Buf ints(String name, DType type, int... shape) {
        return new Buf(name, type, shape, null, new int[Arrays.stream(shape).reduce(1, (a, b) -> a * b)], null);
    }
}
