package dev.moec.passes;

import dev.moec.ir.Graph;
import dev.moec.ir.Verifier;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

/**
 * Runs a pipeline given as a comma-separated string of pass names; verifies the graph after each pass.
 * The pass list: every pass moec has is registered in {@link #PASSES}, under its pipeline name.
 */
public final class PassManager {
    public static final Map<String, Supplier<Pass>> PASSES = new LinkedHashMap<>();
    static {
        PASSES.put("dce", Dce::new);
    }

    /** The pipeline {@code moec compile} runs when none is given. */
    public static final String DEFAULT_PIPELINE = "dce";

    /** What one pass did: its name, whether it changed the graph, and its time. */
    public record PassRecord(String pass, boolean changed, long nanos) {}

    private final List<Pass> pipeline;
    private final List<PassRecord> records = new ArrayList<>();

    public PassManager(String pipeline) {
        this.pipeline = parse(pipeline);
    }

    public static List<Pass> parse(String pipeline) {
        List<Pass> out = new ArrayList<>();
        for (String name : Arrays.stream(pipeline.split(",")).map(String::trim).filter(s -> !s.isEmpty()).toList()) {
            Supplier<Pass> p = PASSES.get(name);
            if (p == null) throw new IllegalArgumentException("unknown pass '" + name + "' (passes: " + String.join(", ", PASSES.keySet()) + ")");
            out.add(p.get());
        }
        return out;
    }

    public Graph run(Graph g) {
        for (Pass p : pipeline) {
            long t0 = System.nanoTime();
            Graph out = p.run(g);
            records.add(new PassRecord(p.name(), out != g, System.nanoTime() - t0));
            Verifier.verify(out);
            g = out;
        }
        return g;
    }

    public List<PassRecord> records() { return List.copyOf(records); }
}
