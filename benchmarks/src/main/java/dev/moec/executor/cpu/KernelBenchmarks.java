package dev.moec.executor.cpu;

import dev.moec.backend.Kernel;
import dev.moec.ir.Attrs;
import dev.moec.ir.DType;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * JMH benchmarks of the CPU kernels at the reference benchmark model's sizes (hidden 1024, 16 / 4 heads
 * of 128, 64 experts top-8 of 256): matmul and grouped matmul in bf16 and int8, attention for decode
 * and prefill, and the whole MoE chain. Each launches the kernel through {@link CpuKernels#launch} on
 * buffers bound the way a captured graph binds them (weights in off-heap memory, read in place). Lives
 * in the executor's package to build those buffers. Run with {@code tools/jmh.sh} (arguments go to JMH).
 * The forks pre-touch their heap as the {@code moec} launcher does, so a kernel's garbage never lands on
 * an untouched page (docs/performance-log.md, twelfth session).
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED", "-XX:+AlwaysPreTouch"})
public class KernelBenchmarks {
    static final int HIDDEN = 1024, HEADS = 16, KV_HEADS = 4, HEAD_DIM = 128, EXPERTS = 64, TOP_K = 8, MOE_INTER = 256;

    /** Buffers shared by the benchmarks; sizes by parameter. */
    @State(Scope.Benchmark)
    public static class Kernels {
        @Param({"2"}) public int threads;

        Arena arena;
        CpuKernels k;
        Parallel par;
        SplittableRandom random;

        /** Called first by each state's setup (JMH orders a superclass's and a subclass's setups freely). */
        void setUp() {
            arena = Arena.ofShared();
            par = new Parallel(threads);
            k = new CpuKernels(par);
            random = new SplittableRandom(7);
        }

        @TearDown(Level.Trial) public void tearDown() { arena.close(); }

        Buf f32(String name, int... shape) {
            Buf b = new Buf(name, DType.F32, shape, new float[count(shape)], null, null);
            for (int j = 0; j < b.f.length; j++) b.f[j] = (float) random.nextGaussian();
            return b;
        }

        Buf ints(String name, int bound, int... shape) {
            Buf b = new Buf(name, DType.I32, shape, null, new int[count(shape)], null);
            for (int j = 0; j < b.i.length; j++) b.i[j] = random.nextInt(bound);
            return b;
        }

        /** A weight in off-heap memory, bf16 or int8, as a loaded model binds it: the artifact's row-major bytes and their copy in panels ({@link WeightPanels}, on {@link PageMemory}). */
        Buf weight(String name, DType type, int... shape) {
            long n = count(shape);
            MemorySegment seg = arena.allocate(n * (type == DType.BF16 ? 2 : 1), 64);
            for (long j = 0; j < n; j++) {
                if (type == DType.BF16) {
                    seg.setAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), j,
                            (short) (Float.floatToIntBits((float) random.nextGaussian() * 0.05f) >>> 16));
                } else {
                    seg.set(ValueLayout.JAVA_BYTE, j, (byte) random.nextInt(-127, 128));
                }
            }
            Buf b = new Buf(name, type, shape, null, null, seg);
            return b.withPanels(WeightPanels.pack(seg, type, shape.length == 3 ? shape[0] : 1, shape[shape.length - 2], shape[shape.length - 1],
                    Vnni.AVAILABLE, size -> PageMemory.allocate(size, arena), par), Vnni.AVAILABLE);
        }

        static DType weightType(String dtype) { return dtype.equals("int8") ? DType.I8 : DType.BF16; }

        static int count(int... shape) {
            int n = 1;
            for (int d : shape) n *= d;
            return n;
        }
    }

    /**
     * q_proj of the bench model: [tokens, 1024] x [2048, 1024]^T (matmul, or quant_matmul for int8); with
     * {@code -p outputs=151936}, the lm_head, whose weights do not fit in the caches; with
     * {@code -p inputs=2048 -p outputs=1024}, o_proj. With {@code -p copies=64}, each launch reads the next of
     * 64 copies of the weight (128 MB for q_proj in int8, past the caches), so every launch starts its
     * weights cold from memory, as each of a decode step's launches does.
     */
    @State(Scope.Benchmark)
    public static class Matmul extends Kernels {
        @Param({"1", "8", "512"}) public int tokens;
        @Param({"bf16", "int8"}) public String dtype;
        @Param({"2048"}) public int outputs;
        @Param({"1024"}) public int inputs;
        @Param({"1"}) public int copies;
        Buf x, xq, xs, ws, out;
        Buf[] w;                                           // copies of [outputs, inputs]
        int next;

        @Setup(Level.Trial) public void bind() {
            setUp();
            x = f32("x", tokens, inputs);
            xq = ints("xq", 255, tokens, inputs);
            for (int j = 0; j < xq.i.length; j++) xq.i[j] -= 127;
            xs = f32("xs", tokens);
            w = new Buf[copies];
            for (int c = 0; c < copies; c++) w[c] = weight("w" + c, weightType(dtype), outputs, inputs);
            ws = f32("ws", outputs);
            out = f32("out", tokens, outputs);
        }
    }

    @Benchmark public float matmul(Matmul s) {
        Buf w = s.w[s.next];
        s.next = (s.next + 1) % s.copies;
        if (w.dtype == DType.BF16) s.k.launch(Kernel.MATMUL, new Buf[] {s.x, w}, new Buf[] {s.out}, Attrs.of());
        else s.k.launch(Kernel.QUANT_MATMUL, new Buf[] {s.xq, s.xs, w, s.ws}, new Buf[] {s.out}, Attrs.of());
        return s.out.f[0];
    }

    /**
     * The experts' projections over tokens x top-8 rows and 64 experts: gate_up [512, 1024], or with
     * {@code -p projection=down} down [1024, 256].
     */
    @State(Scope.Benchmark)
    public static class Grouped extends Kernels {
        @Param({"1", "8", "512"}) public int tokens;
        @Param({"bf16", "int8"}) public String dtype;
        @Param({"gate_up"}) public String projection;
        Buf x, xq, xs, w, ws, counts, out;

        @Setup(Level.Trial) public void bind() {
            setUp();
            int rows = tokens * TOP_K;
            boolean down = projection.equals("down");
            int in = down ? MOE_INTER : HIDDEN, outputs = down ? HIDDEN : 2 * MOE_INTER;
            x = f32("x", rows, in);
            xq = ints("xq", 255, rows, in);
            for (int j = 0; j < xq.i.length; j++) xq.i[j] -= 127;
            xs = f32("xs", rows);
            w = weight("w", weightType(dtype), EXPERTS, outputs, in);
            ws = f32("ws", EXPERTS, outputs);
            counts = new Buf("counts", DType.I32, new int[] {EXPERTS}, null, new int[EXPERTS], null);
            for (int t = 0; t < tokens; t++) {                  // each token picks top-8 distinct experts
                int[] picked = random.ints(0, EXPERTS).distinct().limit(TOP_K).toArray();
                for (int e : picked) counts.i[e]++;
            }
            out = f32("out", rows, outputs);
        }
    }

    @Benchmark public float groupedMatmul(Grouped s) {
        if (s.w.dtype == DType.BF16) s.k.launch(Kernel.GROUPED_MATMUL, new Buf[] {s.x, s.w, s.counts}, new Buf[] {s.out}, Attrs.of());
        else s.k.launch(Kernel.GROUPED_QUANT_MATMUL, new Buf[] {s.xq, s.xs, s.w, s.ws, s.counts}, new Buf[] {s.out}, Attrs.of());
        return s.out.f[0];
    }

    /**
     * Fused attention over a paged f32 cache of {@code context} positions per sequence, in blocks of
     * {@value #KV_BLOCK}: decode is {@code tokens} sequences at the last position each; prefill is one
     * sequence of {@code context} tokens, causal ({@code tokens} unused).
     */
    @State(Scope.Benchmark)
    public static class Attention extends Kernels {
        static final int KV_BLOCK = 128;
        @Param({"decode", "prefill"}) public String phase;
        @Param({"8"}) public int tokens;
        @Param({"512"}) public int context;
        Buf q, kc, vc, table, slots, positions, out;

        @Setup(Level.Trial) public void bind() {
            setUp();
            boolean decode = phase.equals("decode");
            int rows = decode ? tokens : context, seqs = decode ? tokens : 1, perSeq = (context + KV_BLOCK - 1) / KV_BLOCK;
            q = f32("q", rows, HEADS, HEAD_DIM);
            kc = f32("k_cache", seqs * perSeq, KV_BLOCK, KV_HEADS, HEAD_DIM);
            vc = f32("v_cache", seqs * perSeq, KV_BLOCK, KV_HEADS, HEAD_DIM);
            table = new Buf("block_table", DType.I32, new int[] {seqs, perSeq}, null, new int[seqs * perSeq], null);
            for (int b = 0; b < seqs * perSeq; b++) table.i[b] = b;
            slots = new Buf("slots", DType.I32, new int[] {rows}, null, new int[rows], null);
            positions = new Buf("positions", DType.I32, new int[] {rows}, null, new int[rows], null);
            for (int t = 0; t < rows; t++) {
                slots.i[t] = decode ? t : 0;
                positions.i[t] = decode ? context - 1 : t;
            }
            out = f32("out", rows, HEADS, HEAD_DIM);
        }
    }

    @Benchmark public float attention(Attention s) {
        s.k.launch(Kernel.FUSED_INFER_ATTENTION, new Buf[] {s.q, s.kc, s.vc, s.table, s.slots, s.positions}, new Buf[] {s.out},
                Attrs.of("scale", 1.0 / Math.sqrt(HEAD_DIM)));
        return s.out.f[0];
    }

    /** The whole bf16 MoE chain of one layer: gating top-8 softmax, dispatch, gate_up, SwiGLU, down, combine. */
    @State(Scope.Benchmark)
    public static class MoeChain extends Kernels {
        @Param({"1", "8"}) public int tokens;
        Buf x, router, logits, weights, experts, rowsX, rows, counts, gateUp, wGateUp, act, wDown, down, out;

        @Setup(Level.Trial) public void bind() {
            setUp();
            int n = tokens * TOP_K;
            x = f32("x", tokens, HIDDEN);
            router = weight("router", DType.BF16, EXPERTS, HIDDEN);
            logits = f32("logits", tokens, EXPERTS);
            weights = f32("weights", tokens, TOP_K);
            experts = new Buf("experts", DType.I32, new int[] {tokens, TOP_K}, null, new int[n], null);
            rowsX = f32("rows_x", n, HIDDEN);
            rows = new Buf("rows", DType.I32, new int[] {n}, null, new int[n], null);
            counts = new Buf("counts", DType.I32, new int[] {EXPERTS}, null, new int[EXPERTS], null);
            wGateUp = weight("w_gate_up", DType.BF16, EXPERTS, 2 * MOE_INTER, HIDDEN);
            gateUp = f32("gate_up", n, 2 * MOE_INTER);
            act = f32("act", n, MOE_INTER);
            wDown = weight("w_down", DType.BF16, EXPERTS, HIDDEN, MOE_INTER);
            down = f32("down", n, HIDDEN);
            out = f32("out", tokens, HIDDEN);
        }
    }

    @Benchmark public float moeChain(MoeChain s) {
        CpuKernels k = s.k;
        k.launch(Kernel.MATMUL, new Buf[] {s.x, s.router}, new Buf[] {s.logits}, Attrs.of());
        k.launch(Kernel.MOE_GATING_TOPK_SOFTMAX, new Buf[] {s.logits}, new Buf[] {s.weights, s.experts}, Attrs.of("k", (long) TOP_K, "renorm", true));
        k.launch(Kernel.MOE_DISPATCH, new Buf[] {s.x, s.experts}, new Buf[] {s.rowsX, s.rows, s.counts}, Attrs.of("num_experts", (long) EXPERTS));
        k.launch(Kernel.GROUPED_MATMUL, new Buf[] {s.rowsX, s.wGateUp, s.counts}, new Buf[] {s.gateUp}, Attrs.of());
        k.launch(Kernel.SWIGLU, new Buf[] {s.gateUp}, new Buf[] {s.act}, Attrs.of());
        k.launch(Kernel.GROUPED_MATMUL, new Buf[] {s.act, s.wDown, s.counts}, new Buf[] {s.down}, Attrs.of());
        k.launch(Kernel.MOE_COMBINE, new Buf[] {s.down, s.rows, s.weights}, new Buf[] {s.out}, Attrs.of());
        return s.out.f[0];
    }

    /**
     * MoE combine alone: each token's eight expert rows weighted and added, from rows in the order a
     * dispatch sorts them (by expert), as after a prompt's or a decode step's down projection.
     */
    @State(Scope.Benchmark)
    public static class Combine extends Kernels {
        @Param({"1", "8", "512"}) public int tokens;
        Buf down, rows, weights, out;

        @Setup(Level.Trial) public void bind() {
            setUp();
            int n = tokens * TOP_K;
            Buf x = f32("x", tokens, HIDDEN), logits = f32("logits", tokens, EXPERTS);
            Buf experts = new Buf("experts", DType.I32, new int[] {tokens, TOP_K}, null, new int[n], null);
            Buf counts = new Buf("counts", DType.I32, new int[] {EXPERTS}, null, new int[EXPERTS], null);
            weights = f32("weights", tokens, TOP_K);
            rows = new Buf("rows", DType.I32, new int[] {n}, null, new int[n], null);
            k.launch(Kernel.MOE_GATING_TOPK_SOFTMAX, new Buf[] {logits}, new Buf[] {weights, experts}, Attrs.of("k", (long) TOP_K, "renorm", true));
            k.launch(Kernel.MOE_DISPATCH, new Buf[] {x, experts}, new Buf[] {f32("rows_x", n, HIDDEN), rows, counts}, Attrs.of("num_experts", (long) EXPERTS));
            down = f32("down", n, HIDDEN);
            out = f32("out", tokens, HIDDEN);
        }
    }

    @Benchmark public float moeCombine(Combine s) {
        s.k.launch(Kernel.MOE_COMBINE, new Buf[] {s.down, s.rows, s.weights}, new Buf[] {s.out}, Attrs.of());
        return s.out.f[0];
    }
}
