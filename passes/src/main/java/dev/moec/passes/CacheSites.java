package dev.moec.passes;

import dev.moec.ir.DType;
import dev.moec.ir.Graph;
import dev.moec.ir.Node;
import dev.moec.ir.Op;
import dev.moec.ir.Value;

import java.util.HashSet;
import java.util.Map;
import java.util.Set;

/**
 * The GQA caches a KV-cache pass narrows: each {@code fused_infer_attention} whose k and v operands are
 * {@code kv_write}s of f32 state inputs, with those writes and caches. Shared by kv-int8 and kv-bf16.
 */
record CacheSites(Set<Node> writes, Set<Node> attentions, Set<Value> caches) {
    static CacheSites find(Graph g) {
        Map<Value, Node> producers = g.producers();
        Set<Value> inputs = new HashSet<>(g.inputs());
        Set<Node> writes = new HashSet<>(), attentions = new HashSet<>();
        Set<Value> caches = new HashSet<>();
        for (Node n : g.nodes()) {
            if (n.op() != Op.FUSED_INFER_ATTENTION) continue;
            Node kw = producers.get(n.operand(1)), vw = producers.get(n.operand(2));
            if (kw == null || vw == null || kw.op() != Op.KV_WRITE || vw.op() != Op.KV_WRITE) continue;
            Value kc = kw.operand(0), vc = vw.operand(0);
            if (!inputs.contains(kc) || !inputs.contains(vc) || kc.type().dtype() != DType.F32 || vc.type().dtype() != DType.F32) continue;
            writes.add(kw);
            writes.add(vw);
            attentions.add(n);
            caches.add(kc);
            caches.add(vc);
        }
        return new CacheSites(writes, attentions, caches);
    }
}
