package dev.moec.executor;

import dev.moec.ir.Graph;
import dev.moec.ir.StepAbi;
import dev.moec.ir.Value;
import dev.moec.ir.interp.Interpreter;
import dev.moec.ir.interp.RefTensor;
import dev.moec.ir.interp.TensorStore;

import java.util.HashMap;
import java.util.Map;

/** Runs steps with the reference interpreter on the IR graph: the oracle the compiled path is tested against. */
public final class ReferenceModel implements StepModel {
    private final Graph graph;
    private final Interpreter interpreter;
    private final int maxSlots, maxSeqLen, vocab;
    private final Map<String, RefTensor> state = new HashMap<>();
    private final KvBlocks kv;
    private final boolean paged;                        // the graph takes a block table

    /** With the default KV block size of a compiled artifact ({@link StepAbi#DEFAULT_KV_BLOCK_SIZE}). */
    public ReferenceModel(Graph graph, TensorStore store, int maxSlots, int maxSeqLen) {
        this(graph, store, maxSlots, maxSeqLen, StepAbi.DEFAULT_KV_BLOCK_SIZE, 0);
    }

    /** {@code kvBlocks}: the paged cache's blocks in all; 0 gives every slot its full context. */
    public ReferenceModel(Graph graph, TensorStore store, int maxSlots, int maxSeqLen, int kvBlockSize, int kvBlocks) {
        this.graph = graph;
        this.interpreter = new Interpreter(store);
        this.maxSlots = maxSlots;
        this.maxSeqLen = maxSeqLen;
        Value logits = graph.outputs().stream().filter(v -> v.name().equals(StepAbi.LOGITS)).findFirst()
                .orElseThrow(() -> new IllegalArgumentException("graph @" + graph.name() + " has no %logits output"));
        this.vocab = Math.toIntExact(logits.type().shape().last().size());
        this.kv = new KvBlocks(maxSlots, maxSeqLen, kvBlockSize, kvBlocks);
        this.paged = graph.inputs().stream().anyMatch(v -> v.name().equals(StepAbi.BLOCK_TABLE));
        for (Value in : StepAbi.stateInputs(graph)) {
            long[] sizes = in.type().bind(kv.bindings()).shape().sizes();
            int[] shape = java.util.Arrays.stream(sizes).mapToInt(Math::toIntExact).toArray();
            state.put(in.name(), in.type().dtype().isFloating() ? RefTensor.of(in.type().dtype(), shape, new float[(int) RefTensor.volume(shape)])
                    : RefTensor.ofInts(in.type().dtype(), shape, new int[(int) RefTensor.volume(shape)]));
        }
    }

    @Override public int vocabSize() { return vocab; }
    @Override public int maxSlots() { return maxSlots; }
    @Override public int maxSeqLen() { return maxSeqLen; }
    @Override public KvBlocks kvBlocks() { return kv; }

    @Override
    public float[][] step(int[] tokens, int[] positions, int[] slots, int[] logitRows) {
        StepChecks.check(tokens, positions, slots, logitRows, maxSlots, maxSeqLen, vocab);
        kv.prepare(slots, positions);
        Map<String, RefTensor> inputs = new HashMap<>(state);
        if (paged) inputs.put(StepAbi.BLOCK_TABLE, RefTensor.i32(new int[]{maxSlots, kv.blocksPerSequence()}, kv.table().clone()));
        inputs.put(StepAbi.TOKENS, RefTensor.i32(new int[]{tokens.length}, tokens.clone()));
        inputs.put(StepAbi.POSITIONS, RefTensor.i32(new int[]{positions.length}, positions.clone()));
        inputs.put(StepAbi.SLOTS, RefTensor.i32(new int[]{slots.length}, slots.clone()));
        inputs.put(StepAbi.LOGIT_ROWS, RefTensor.i32(new int[]{logitRows.length}, logitRows.clone()));
        Map<String, RefTensor> out = interpreter.run(graph, inputs);
        for (String s : state.keySet()) state.put(s, out.get(StepAbi.next(s)));
        float[] logits = out.get(StepAbi.LOGITS).f();
        float[][] rows = new float[logitRows.length][];
        for (int r = 0; r < rows.length; r++) rows[r] = java.util.Arrays.copyOfRange(logits, r * vocab, (r + 1) * vocab);
        return rows;
    }
}
