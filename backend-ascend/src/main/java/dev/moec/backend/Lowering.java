package dev.moec.backend;

import dev.moec.ir.Graph;
import dev.moec.ir.Node;
import dev.moec.ir.Op;
import dev.moec.ir.Param;
import dev.moec.ir.StepAbi;
import dev.moec.ir.Value;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Maps a final IR graph onto a {@link KernelGraph}: one launch per node, reshapes become aliases, a cache
 * update's result aliases the cache it updates (the write is in place), and every node that reads only
 * parameters (a weight transform) becomes a derived weight, computed once at capture instead of launched.
 */
public final class Lowering {
    private Lowering() {}

    /** For an op that returns new state versions: the operand that result {@code r} updates, else null. */
    static Integer stateOperand(Op op, int r) {
        return switch (op) {
            case KV_WRITE -> r == 0 ? 0 : null;
            case KV_WRITE_INT8 -> r;                       // (cache, scale)
            case CAUSAL_CONV1D -> r == 1 ? 2 : null;       // (y, conv state)
            case GATED_DELTA_RULE -> r == 1 ? 5 : null;    // (o, recurrent state)
            default -> null;
        };
    }

    public static KernelGraph lower(Graph g, Target target) {
        List<KernelGraph.Buffer> buffers = new ArrayList<>();
        List<KernelGraph.Launch> launches = new ArrayList<>();
        java.util.Set<Value> state = new java.util.HashSet<>(StepAbi.stateInputs(g));
        for (Value in : g.inputs()) {
            buffers.add(new KernelGraph.Buffer(in.name(), in.type(), state.contains(in) ? KernelGraph.Role.STATE : KernelGraph.Role.INPUT, null));
        }
        Map<Value, String> weightSource = new HashMap<>();
        for (Param p : g.params()) {
            buffers.add(new KernelGraph.Buffer(p.value().name(), target.weightType(p.value().type()), KernelGraph.Role.WEIGHT, p.tensor()));
            weightSource.put(p.value(), p.tensor());
        }
        List<KernelGraph.Derivation> derived = new ArrayList<>();
        for (Node n : g.nodes()) {
            if (n.operands().stream().allMatch(weightSource::containsKey)) {
                List<String> sources = n.operands().stream().map(weightSource::get).toList();
                List<dev.moec.ir.TensorType> types = n.operands().stream().map(o -> target.weightType(o.type())).toList();
                for (int r = 0; r < n.results().size(); r++) {
                    Value v = n.results().get(r);
                    String name = KernelGraph.DERIVED + v.name();
                    derived.add(new KernelGraph.Derivation(name, n.op(), sources, types, n.attrs(), r));
                    buffers.add(new KernelGraph.Buffer(v.name(), target.weightType(v.type()), KernelGraph.Role.WEIGHT, name));
                    weightSource.put(v, name);
                }
                continue;
            }
            if (n.op() == Op.RESHAPE) {
                buffers.add(new KernelGraph.Buffer(n.result().name(), n.result().type(), KernelGraph.Role.ALIAS, n.operand(0).name()));
                continue;
            }
            for (int r = 0; r < n.results().size(); r++) {
                Value v = n.results().get(r);
                // A new state version is written in place over the state it updates.
                Integer updates = stateOperand(n.op(), r);
                buffers.add(new KernelGraph.Buffer(v.name(), v.type(), updates != null ? KernelGraph.Role.ALIAS : KernelGraph.Role.ACTIVATION,
                        updates != null ? n.operand(updates).name() : null));
            }
            launches.add(new KernelGraph.Launch(Kernel.forOp(n.op()), n.operands().stream().map(Value::name).toList(),
                    n.results().stream().map(Value::name).toList(), n.attrs()));
        }
        // Only the weights a launch reads reach the artifact; the inputs of derived weights are read at capture.
        java.util.Set<String> read = new java.util.HashSet<>();
        for (KernelGraph.Launch l : launches) read.addAll(l.inputs());
        for (KernelGraph.Buffer b : buffers) if (b.role() == KernelGraph.Role.ALIAS) read.add(b.source());
        // Weights an NZ-reading kernel takes are stored NZ on targets that want it.
        java.util.Set<String> nz = new java.util.HashSet<>();
        for (KernelGraph.Launch l : launches) {
            for (int i = 0; i < l.inputs().size(); i++) if (target.wantsNz(l.kernel(), i)) nz.add(l.inputs().get(i));
        }
        List<KernelGraph.Buffer> kept = buffers.stream().filter(b -> b.role() != KernelGraph.Role.WEIGHT || read.contains(b.name()))
                .map(b -> b.role() == KernelGraph.Role.WEIGHT && nz.contains(b.name()) ? new KernelGraph.Buffer(b.name(), b.type(), b.role(), b.source(), "nz") : b)
                .toList();
        return new KernelGraph(g.name(), kept, launches, g.outputs().stream().map(Value::name).toList(), derived);
    }
}
