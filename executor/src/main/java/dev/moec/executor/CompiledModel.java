package dev.moec.executor;

import dev.moec.backend.KernelGraph;
import dev.moec.capture.Artifact;
import dev.moec.executor.cpu.CpuGraph;
import dev.moec.executor.cpu.CpuKernels;
import dev.moec.executor.cpu.Parallel;
import dev.moec.executor.cpu.WeightPanels;
import dev.moec.ir.StepAbi;
import dev.moec.ir.TensorType;

import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * Runs an artifact on the CPU. The decode graphs are bound at load, one per captured batch size; a step
 * that asks logits for every token (a decode step: one token per sequence, or a sequence's verified
 * draft tokens with speculation) runs on the smallest captured graph with enough tokens, its extra rows
 * padded (slot -1). Any other step (a prompt, or more tokens than the largest capture) runs the prefill
 * graph bound to its size. The KV caches are paged in blocks of the artifact's {@code kv_block_size};
 * {@link KvBlocks} hands them out as sequences grow.
 */
public final class CompiledModel implements StepModel {
    private final Artifact artifact;
    private final int maxSlots, maxSeqLen, vocab;
    private final Parallel par;                                                 // the kernels' threads
    private final CpuKernels kernels;
    private final WeightPanels panels;                                          // the matmul weights' CPU layout, made at load
    private final Map<String, Object> state = new LinkedHashMap<>();      // per state buffer: see CpuGraph.allocateState
    private final TreeMap<Integer, CpuGraph> decode = new TreeMap<>();            // by tokens per step
    private final TreeMap<Integer, Integer> batchOf = new TreeMap<>();           // tokens per step -> batch size
    private final Map<String, Long> cacheBindings;
    private final KvBlocks kv;
    private final boolean paged;                                                 // the graphs take a block table
    private String lastGraph = "none";
    private CpuGraph prefill;                                                    // the last prompt's graph, bound at its sizes
    private int prefillTokens, prefillRows;                                      // those sizes
    private CpuGraph.LaunchObserver observer;                                    // null: launches run untimed

    public CompiledModel(Artifact artifact, int maxSlots, int maxSeqLen, int threads) {
        this(artifact, maxSlots, maxSeqLen, threads, true);
    }

    /**
     * {@code capture}: generate each decode graph's straight-line replay at load (the default); false
     * replays the same launches from a loop ({@code --no-capture}), to measure the difference.
     */
    public CompiledModel(Artifact artifact, int maxSlots, int maxSeqLen, int threads, boolean capture) {
        this(artifact, maxSlots, maxSeqLen, threads, capture, 0);
    }

    /** {@code kvBlocks}: the paged cache's blocks in all ({@code --kv-cache-blocks}); 0 gives every slot its full context. */
    public CompiledModel(Artifact artifact, int maxSlots, int maxSeqLen, int threads, boolean capture, int kvBlocks) {
        if (!artifact.manifest().target().equals("cpu")) {
            throw new IllegalArgumentException(artifact.dir() + " was compiled for --target " + artifact.manifest().target()
                    + " (NZ weights for an NPU); the CPU executor runs --target cpu artifacts");
        }
        this.artifact = artifact;
        this.maxSlots = maxSlots;
        this.maxSeqLen = Math.min(maxSeqLen, artifact.manifest().model().maxPositions());
        this.par = new Parallel(threads);
        this.kernels = new CpuKernels(par);
        this.panels = new WeightPanels(par);
        this.kv = new KvBlocks(maxSlots, this.maxSeqLen, artifact.manifest().kvBlockSize(), kvBlocks);
        this.cacheBindings = kv.bindings();
        KernelGraph prefill = artifact.prefillGraph();
        this.paged = prefill.buffers().stream().anyMatch(b -> b.name().equals(StepAbi.BLOCK_TABLE));
        for (KernelGraph.Buffer b : prefill.buffers()) {
            if (b.role() == KernelGraph.Role.STATE) {
                state.put(b.name(), CpuGraph.allocateState(b.type().bind(cacheBindings)));
            }
        }
        panels.prepare(prefill, artifact);                                     // every matmul weight, before the first step
        this.vocab = Math.toIntExact(prefill.buffer(StepAbi.LOGITS).type().shape().last().size());
        artifact.decodeGraphs().forEach((bs, g) -> {
            int tokens = artifact.decodeTokens(bs);
            CpuGraph bound = new CpuGraph(g, cacheBindings, artifact, state, panels);
            decode.put(tokens, capture ? bound.capture() : bound);
            batchOf.put(tokens, bs);
        });
    }

    public Artifact artifact() { return artifact; }

    /** The threads the kernels run on (a benchmark's bandwidth probe reads with them, not beside them). */
    public Parallel parallel() { return par; }

    /** The matmul weights copied into the CPU's panel layout at load. */
    public WeightPanels weightPanels() { return panels; }

    /** Every later step reports its launches to {@code observer} (null stops it): how {@code moec bench} profiles. */
    public void observe(CpuGraph.LaunchObserver observer) { this.observer = observer; }

    public Set<Integer> capturedBatchSizes() { return new java.util.TreeSet<>(batchOf.values()); }

    /** Bytes each captured decode graph's activations take, by batch size: its memory plan's slots (see {@link CpuGraph}). */
    public Map<Integer, Long> decodeActivationBytes() {
        Map<Integer, Long> out = new TreeMap<>();
        decode.forEach((tokens, g) -> out.put(batchOf.get(tokens), g.activationBytes()));
        return out;
    }

    /** Whether the decode graphs replay as generated straight-line code (false with {@code --no-capture}). */
    public boolean capturedReplay() { return decode.values().stream().allMatch(CpuGraph::isCaptured); }

    @Override public int vocabSize() { return vocab; }
    @Override public int maxSlots() { return maxSlots; }
    @Override public int maxSeqLen() { return maxSeqLen; }
    @Override public String lastGraph() { return lastGraph; }
    @Override public KvBlocks kvBlocks() { return kv; }

    @Override
    public float[][] step(int[] tokens, int[] positions, int[] slots, int[] logitRows) {
        Step step = prepare(tokens, positions, slots, logitRows);
        step.graph().run(kernels, step.inputs(), observer);
        float[][] out = new float[logitRows.length][];
        for (int r = 0; r < out.length; r++) out[r] = step.graph().row(StepAbi.LOGITS, step.rows()[r], vocab);
        return out;
    }

    /**
     * {@link #step}, but each row's argmax (its first largest logit) in place of the logits: no copy of
     * them (at batch 8, 4.9 MB a step into new arrays took 0.6–0.8 ms, and the scalar argmax of the copies
     * 0.7 ms more), and where the graph's lm_head runs as a {@link CpuGraph#greedy greedy head}, not every
     * logit's f32 sum either.
     */
    @Override
    public int[] greedy(int[] tokens, int[] positions, int[] slots, int[] logitRows) {
        Step step = prepare(tokens, positions, slots, logitRows);
        return step.graph().greedy(kernels, step.inputs(), observer, StepAbi.LOGITS, vocab, step.rows());
    }

    /**
     * A step's graph and its inputs; {@code rows[r]}: the row of the graph's logits that holds the r-th
     * row asked for (a decode graph holds a row per token, a prompt's one per logit row asked for).
     */
    private record Step(CpuGraph graph, Map<String, int[]> inputs, int[] rows) {}

    /** Picks a step's graph: a captured decode graph where every token's logits are asked for, else a prompt's. */
    private Step prepare(int[] tokens, int[] positions, int[] slots, int[] logitRows) {
        StepChecks.check(tokens, positions, slots, logitRows, maxSlots, maxSeqLen, vocab);
        kv.prepare(slots, positions);
        int n = tokens.length;
        Map.Entry<Integer, CpuGraph> captured = allRows(logitRows, n) ? decode.ceilingEntry(n) : null;
        CpuGraph graph;
        Map<String, int[]> inputs = new HashMap<>();
        int[] rows;
        if (captured != null) {
            int bs = captured.getKey();
            graph = captured.getValue();
            inputs.put(StepAbi.TOKENS, pad(tokens, bs, 0));
            inputs.put(StepAbi.POSITIONS, pad(positions, bs, 0));
            inputs.put(StepAbi.SLOTS, pad(slots, bs, -1));
            inputs.put(StepAbi.LOGIT_ROWS, java.util.stream.IntStream.range(0, bs).toArray());
            rows = logitRows.clone();
        } else {
            graph = prefillGraph(n, logitRows.length);
            inputs.put(StepAbi.TOKENS, tokens);
            inputs.put(StepAbi.POSITIONS, positions);
            inputs.put(StepAbi.SLOTS, slots);
            inputs.put(StepAbi.LOGIT_ROWS, logitRows);
            rows = java.util.stream.IntStream.range(0, logitRows.length).toArray();
        }
        if (paged) inputs.put(StepAbi.BLOCK_TABLE, kv.table());
        lastGraph = graph.name();
        return new Step(graph, inputs, rows);
    }

    /**
     * The prefill graph bound for {@code tokens} tokens and {@code rows} logit rows: the last prompt's
     * again where its sizes were the same, else a new one, which replaces it. Binding plans the
     * activations' memory and allocates them (55 MB at 512 tokens of the bench model): a prompt spent
     * 34–38 ms outside its kernels while each bound its own graph, 5 since. A graph is run again as a
     * captured decode graph is, its inputs copied in; the kept one holds its activations until a prompt
     * of another size replaces it.
     */
    private CpuGraph prefillGraph(int tokens, int rows) {
        if (prefill == null || prefillTokens != tokens || prefillRows != rows) {
            prefill = null;                                                      // its arrays can go before the new ones are made
            prefill = new CpuGraph(artifact.prefillGraph(), bindings(tokens, rows), artifact, state, panels);
            prefillTokens = tokens;
            prefillRows = rows;
        }
        return prefill;
    }

    private Map<String, Long> bindings(int tokens, int rows) {
        Map<String, Long> b = new HashMap<>(cacheBindings);
        b.put(StepAbi.T, (long) tokens);
        b.put(StepAbi.R, (long) rows);
        return b;
    }

    /** Logits for every token, in order: what a decode graph computes. */
    private static boolean allRows(int[] logitRows, int tokens) {
        if (logitRows.length != tokens) return false;
        for (int r = 0; r < logitRows.length; r++) if (logitRows[r] != r) return false;
        return true;
    }

    private static int[] pad(int[] a, int n, int fill) {
        int[] out = java.util.Arrays.copyOf(a, n);
        java.util.Arrays.fill(out, a.length, n, fill);
        return out;
    }

    @Override public void close() {
        kernels.close();
        artifact.close();
    }
}
