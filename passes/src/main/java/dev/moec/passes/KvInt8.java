package dev.moec.passes;

import dev.moec.ir.Attrs;
import dev.moec.ir.DType;
import dev.moec.ir.Graph;
import dev.moec.ir.Node;
import dev.moec.ir.Op;
import dev.moec.ir.StepAbi;
import dev.moec.ir.TensorType;
import dev.moec.ir.Value;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * {@code kv-int8}: the C8 KV cache. The GQA caches that a fused attention reads become int8 with one f32
 * scale per cached (token, head) row, a new state input {@code <cache>.scale} beside each:
 * <pre>
 *   kc' = kv_write(kc, k); vc' = ...; fused_infer_attention(q, kc', vc')
 *     ->  kc', ks' = kv_write_int8(kc: i8, ks, k); ...; fused_infer_attention_int8(q, kc', ks', vc', vs')
 * </pre>
 * Half the cache bytes of bf16 (a quarter of f32), at the cost of int8 rounding of every cached row.
 * MLA latent caches stay as they are (C8 applies to dense attention). Run it after fuse-attention.
 */
public final class KvInt8 implements Pass {
    @Override public String name() { return "kv-int8"; }

    @Override
    public Graph run(Graph g) {
        // 1. A fused attention over two kv_writes of f32 state inputs: the caches to narrow.
        CacheSites sites = CacheSites.find(g);
        if (sites.caches().isEmpty()) return g;
        Set<Node> writes = sites.writes(), attentions = sites.attentions();
        Set<Value> caches = sites.caches();

        // 2. Inputs: each cache as i8, followed by its scale state.
        Map<Value, Value> map = new HashMap<>();
        Map<Value, Value> scaleOf = new LinkedHashMap<>();
        List<Value> newInputs = new ArrayList<>();
        for (Value in : g.inputs()) {
            if (!caches.contains(in)) {
                newInputs.add(in);
                continue;
            }
            Value c8 = new Value(in.name(), in.type().withDType(DType.I8));
            Value scale = new Value(in.name() + ".scale", new TensorType(DType.F32, in.type().shape().dropLast()));
            newInputs.add(c8);
            newInputs.add(scale);
            map.put(in, c8);
            scaleOf.put(in, scale);
        }
        // 3. Nodes: int8 writes and attention; everything else with its operands remapped.
        Map<Value, Value> nextScale = new HashMap<>();          // new cache version -> new scale version
        List<Node> nodes = new ArrayList<>();
        List<Value> scaleOutputs = new ArrayList<>();
        for (Node n : g.nodes()) {
            List<Value> ops = n.operands().stream().map(v -> map.getOrDefault(v, v)).toList();
            if (writes.contains(n)) {
                Value cache = n.operand(0);
                List<Value> operands = List.of(ops.get(0), scaleOf.get(cache), ops.get(1), ops.get(2), ops.get(3), ops.get(4));
                List<TensorType> types = Op.KV_WRITE_INT8.inferTypes(operands.stream().map(Value::type).toList(), Attrs.NONE);
                Value c = new Value(n.result().name(), types.get(0)), s = new Value(StepAbi.next(scaleOf.get(cache).name()), types.get(1));
                nodes.add(new Node(Op.KV_WRITE_INT8, operands, Attrs.NONE, List.of(c, s)));
                map.put(n.result(), c);
                nextScale.put(c, s);
                scaleOutputs.add(s);
            } else if (attentions.contains(n)) {
                List<Value> operands = List.of(ops.get(0), ops.get(1), nextScale.get(ops.get(1)), ops.get(2), nextScale.get(ops.get(2)), ops.get(3), ops.get(4), ops.get(5));
                nodes.add(new Node(Op.FUSED_INFER_ATTENTION_INT8, operands, n.attrs(), n.results()));
            } else {
                nodes.add(ops.equals(n.operands()) ? n : new Node(n.op(), ops, n.attrs(), n.results()));
            }
        }
        // 4. Outputs: the new cache versions, then the new scale versions.
        List<Value> outputs = new ArrayList<>(g.outputs().stream().map(v -> map.getOrDefault(v, v)).toList());
        outputs.addAll(scaleOutputs);
        return new Graph(g.name(), newInputs, g.params(), nodes, outputs);
    }
}
