package dev.moec.capture;

import dev.moec.backend.KernelGraph;
import org.jgrapht.Graph;
import org.jgrapht.alg.color.GreedyColoring;
import org.jgrapht.alg.interfaces.VertexColoringAlgorithm;
import org.jgrapht.graph.DefaultEdge;
import org.jgrapht.graph.SimpleGraph;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The static memory plan of a graph whose sizes are all bound (a captured decode graph): each activation
 * buffer is live from the launch that writes it to the last launch that reads it (or an alias of it;
 * graph outputs to the end). Buffers whose lifetimes overlap interfere; a colouring of the interference
 * graph (JGraphT, largest buffers first) puts non-interfering buffers in one slot, a slot is as large as
 * its largest buffer, and the slots are laid end to end. Weights and state are not planned: they persist,
 * and cache writes update state in place (their results alias it).
 */
public record MemoryPlan(Map<String, Long> offsets, Map<String, Long> sizes, Map<String, int[]> lifetimes, long peakBytes, long naiveBytes) {

    public static MemoryPlan of(KernelGraph g) {
        return of(g, b -> true, b -> b.type().bytes());
    }

    /**
     * The plan of the activations and inputs that {@code planned} selects, each taking {@code bytes} (an
     * executor that stores elements wider than their dtype plans with its own sizes; one that keeps two
     * kinds of storage plans each kind on its own).
     */
    public static MemoryPlan of(KernelGraph g, java.util.function.Predicate<KernelGraph.Buffer> planned, java.util.function.ToLongFunction<KernelGraph.Buffer> bytes) {
        // 1. Root of every buffer (aliases share their source's memory) and activation sizes.
        Map<String, KernelGraph.Buffer> byName = new HashMap<>();
        for (KernelGraph.Buffer b : g.buffers()) byName.put(b.name(), b);
        Map<String, Long> sizes = new LinkedHashMap<>();
        for (KernelGraph.Buffer b : g.buffers()) {
            boolean activation = b.role() == KernelGraph.Role.ACTIVATION || b.role() == KernelGraph.Role.INPUT;
            if (activation && planned.test(b)) sizes.put(b.name(), bytes.applyAsLong(b));
        }
        // 2. Lifetimes in launch indices: inputs from -1, outputs to the end.
        Map<String, int[]> life = new LinkedHashMap<>();
        for (String n : sizes.keySet()) life.put(n, new int[]{byName.get(n).role() == KernelGraph.Role.INPUT ? -1 : Integer.MAX_VALUE, -1});
        List<KernelGraph.Launch> launches = g.launches();
        for (int i = 0; i < launches.size(); i++) {
            for (String o : launches.get(i).outputs()) touch(life, root(o, byName), i, true);
            for (String in : launches.get(i).inputs()) touch(life, root(in, byName), i, false);
        }
        for (String o : g.outputs()) touch(life, root(o, byName), launches.size(), false);
        life.values().forEach(l -> { if (l[0] == Integer.MAX_VALUE) l[0] = l[1]; if (l[1] < l[0]) l[1] = l[0]; });
        // 3. Interference graph and its colouring, largest buffers first.
        Graph<String, DefaultEdge> interference = new SimpleGraph<>(DefaultEdge.class);
        sizes.keySet().forEach(interference::addVertex);
        List<String> names = new ArrayList<>(sizes.keySet());
        for (int a = 0; a < names.size(); a++) {
            for (int b = a + 1; b < names.size(); b++) {
                int[] p = life.get(names.get(a)), q = life.get(names.get(b));
                if (p[0] <= q[1] && q[0] <= p[1]) interference.addEdge(names.get(a), names.get(b));
            }
        }
        names.sort(Comparator.comparingLong((String n) -> -sizes.get(n)).thenComparing(n -> n));
        VertexColoringAlgorithm.Coloring<String> coloring = new GreedyColoring<>(interference) {
            @Override protected Iterable<String> getVertexOrdering() { return names; }
        }.getColoring();
        // 4. Slots: one per colour, as large as its largest member, laid out in colour order.
        Map<Integer, Long> slot = new java.util.TreeMap<>();
        coloring.getColors().forEach((n, c) -> slot.merge(c, sizes.get(n), Math::max));
        Map<Integer, Long> slotOffset = new HashMap<>();
        long peak = 0;
        for (var e : slot.entrySet()) {
            slotOffset.put(e.getKey(), peak);
            peak += e.getValue();
        }
        Map<String, Long> offsets = new LinkedHashMap<>();
        for (String n : sizes.keySet()) offsets.put(n, slotOffset.get(coloring.getColors().get(n)));
        long naive = sizes.values().stream().mapToLong(Long::longValue).sum();
        return new MemoryPlan(offsets, sizes, life, peak, naive);
    }

    private static String root(String name, Map<String, KernelGraph.Buffer> byName) {
        KernelGraph.Buffer b = byName.get(name);
        while (b != null && b.role() == KernelGraph.Role.ALIAS) b = byName.get(b.source());
        return b == null ? name : b.name();
    }

    private static void touch(Map<String, int[]> life, String buffer, int at, boolean write) {
        int[] l = life.get(buffer);
        if (l == null) return;                               // weights and state are not planned
        if (write) l[0] = Math.min(l[0], at);
        l[1] = Math.max(l[1], at);
    }
}
