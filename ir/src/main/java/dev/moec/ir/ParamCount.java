package dev.moec.ir;

import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Parameter counts of a graph: total, and active per token. Routed expert weights (the stacks a
 * {@code moe_experts} node reads, through slices, reshapes or casts) count toward the active total in
 * proportion k / E; everything else is read for every token. Each stored tensor counts once, however
 * often the graph reads it (a tied embedding is one tensor).
 */
public record ParamCount(long total, long active, long routedExperts, long embeddings) {
    public static ParamCount of(Graph g) {
        Map<Value, Param> params = new HashMap<>();
        for (Param p : g.params()) params.put(p.value(), p);
        Map<Value, Node> producers = g.producers();
        Map<String, Double> activeFraction = new LinkedHashMap<>();
        Set<String> embeddingTensors = new HashSet<>();
        for (Node n : g.nodes()) {
            if (n.op() == Op.MOE_EXPERTS) {
                double k = n.operand(1).type().shape().last().size();
                for (Value w : List.of(n.operand(3), n.operand(4), n.operand(5))) {
                    double e = w.type().shape().dim(0).size();
                    Param p = source(w, params, producers);
                    if (p != null) activeFraction.put(p.tensor(), k / e);
                }
            }
            if (n.op() == Op.GATHER && params.containsKey(n.operand(0))) embeddingTensors.add(params.get(n.operand(0)).tensor());
            if (n.op() == Op.MATMUL && n.result().name().equals(StepAbi.LOGITS) && params.containsKey(n.operand(1))) {
                embeddingTensors.add(params.get(n.operand(1)).tensor());
            }
        }
        long total = 0, routed = 0, embeddings = 0;
        double active = 0;
        Set<String> seen = new HashSet<>();
        for (Param p : g.params()) {
            if (!seen.add(p.tensor())) continue;
            long n = p.value().type().shape().elements();
            total += n;
            Double f = activeFraction.get(p.tensor());
            if (f != null) routed += n;
            if (embeddingTensors.contains(p.tensor())) embeddings += n;
            active += f == null ? n : n * f;
        }
        return new ParamCount(total, Math.round(active), routed, embeddings);
    }

    /** The parameter a value was derived from by slices, reshapes and casts, if any. */
    private static Param source(Value v, Map<Value, Param> params, Map<Value, Node> producers) {
        while (true) {
            Param p = params.get(v);
            if (p != null) return p;
            Node n = producers.get(v);
            if (n == null || !(n.op() == Op.SLICE || n.op() == Op.RESHAPE || n.op() == Op.CAST)) return null;
            v = n.operand(0);
        }
    }
}
