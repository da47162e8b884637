package dev.moec.passes;

import dev.moec.ir.DType;
import dev.moec.ir.Graph;
import dev.moec.ir.Node;
import dev.moec.ir.Value;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * {@code kv-bf16}: the GQA caches that a fused attention reads are stored in bf16. The ops stay; the cache
 * states and their new versions change type, and {@code kv_write} rounds each row to bf16 as it stores it:
 * <pre>
 *   kc: f32[NB,BS,h,d]; kc' = kv_write(kc, k); fused_infer_attention(q, kc', vc')
 *     ->  kc: bf16[NB,BS,h,d]; kc' = kv_write(kc, k) : bf16[...]; fused_infer_attention(q, kc', vc')
 * </pre>
 * Half the bytes of an f32 cache, for one bf16 rounding of every cached row (the checkpoint's own
 * precision). MLA latent caches stay f32. Run it after fuse-attention.
 */
public final class KvBf16 implements Pass {
    @Override public String name() { return "kv-bf16"; }

    @Override
    public Graph run(Graph g) {
        CacheSites sites = CacheSites.find(g);
        if (sites.caches().isEmpty()) return g;
        Map<Value, Value> map = new HashMap<>();
        List<Value> inputs = new ArrayList<>();
        for (Value in : g.inputs()) {
            Value v = sites.caches().contains(in) ? new Value(in.name(), in.type().withDType(DType.BF16)) : in;
            if (v != in) map.put(in, v);
            inputs.add(v);
        }
        List<Node> nodes = new ArrayList<>();
        for (Node n : g.nodes()) {
            List<Value> ops = n.operands().stream().map(v -> map.getOrDefault(v, v)).toList();
            if (sites.writes().contains(n)) {
                Value r = n.result(), narrowed = new Value(r.name(), r.type().withDType(DType.BF16));
                map.put(r, narrowed);
                nodes.add(new Node(n.op(), ops, n.attrs(), List.of(narrowed)));
            } else {
                nodes.add(ops.equals(n.operands()) ? n : new Node(n.op(), ops, n.attrs(), n.results()));
            }
        }
        return new Graph(g.name(), inputs, g.params(), nodes, g.outputs().stream().map(v -> map.getOrDefault(v, v)).toList());
    }
}
