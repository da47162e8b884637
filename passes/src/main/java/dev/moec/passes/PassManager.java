package dev.moec.passes;

import dev.moec.ir.Graph;
import dev.moec.ir.Printer;
import dev.moec.ir.Verifier;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import java.util.function.Supplier;

/**
 * Runs a pipeline given as a comma-separated string of pass names, verifying the graph after every pass
 * and recording each pass's time and changed flag. {@link #PASSES} is the pass list: every pass moec has,
 * under its pipeline name.
 */
public final class PassManager {
    public static final Map<String, Supplier<Pass>> PASSES = new LinkedHashMap<>();
    static {
        PASSES.put("canonicalize", Canonicalize::new);
        PASSES.put("cse", Cse::new);
        PASSES.put("fold", Fold::new);
        PASSES.put("dce", Dce::new);
        PASSES.put("fuse-add-rms-norm", FuseAddRmsNorm::new);
        PASSES.put("fuse-rope", FuseRope::new);
        PASSES.put("fuse-attention", FuseAttention::new);
        PASSES.put("fuse-moe-gating", FuseMoeGating::new);
        PASSES.put("fuse-moe", FuseMoe::new);
        PASSES.put("fuse-linears", FuseLinears::new);
        PASSES.put("quantize-w8a8", QuantizeW8a8::new);
        PASSES.put("quantize-w4a8", QuantizeW4a8::new);
        PASSES.put("kv-int8", KvInt8::new);
        PASSES.put("kv-bf16", KvBf16::new);
    }

    /** The cleanup passes alone: what a graph needs before any target's kernels. */
    public static final String CLEANUP = "canonicalize,cse,fold,dce";

    /**
     * The default pipeline, with quantization chosen the way users choose it:
     * {@code none}, {@code w8a8} (int8 Linears and experts) or {@code w4a8} (int4 experts, int8 Linears).
     */
    public static String defaultPipeline(String quantization) { return defaultPipeline(quantization, "auto"); }

    /** The same, with the KV cache dtype: {@code auto} (the activations'), {@code bf16}, or {@code int8} (C8). */
    public static String defaultPipeline(String quantization, String kvCacheDtype) {
        String kv = switch (kvCacheDtype) {
            case "auto" -> "";
            case "bf16" -> "kv-bf16,";
            case "int8" -> "kv-int8,";
            default -> throw new IllegalArgumentException("unknown KV cache dtype '" + kvCacheDtype + "' (auto, bf16, int8)");
        };
        String quantize = switch (quantization) {
            case "none" -> "";
            case "w8a8" -> "quantize-w8a8,";
            case "w4a8" -> "quantize-w4a8,quantize-w8a8,";
            default -> throw new IllegalArgumentException("unknown quantization '" + quantization + "' (none, w8a8, w4a8)");
        };
        return "canonicalize,fuse-add-rms-norm,fuse-rope,fuse-attention," + kv + "fuse-moe-gating," + quantize + "fuse-moe," + CLEANUP;
    }

    /** What one pass did: its name, whether it changed the graph, and its time. */
    public record PassRecord(String pass, boolean changed, long nanos) {}

    private final List<Pass> pipeline;
    private final List<PassRecord> records = new ArrayList<>();
    private Consumer<String> printer = s -> {};
    private String printAfter;       // a pass name, "*" for every pass, or null

    public PassManager(String pipeline) {
        this.pipeline = parse(pipeline);
    }

    /** Print the IR after every pass ({@code "*"}) or after each run of the named pass. */
    public PassManager printIrAfter(String passOrStar, Consumer<String> sink) {
        if (passOrStar != null && !passOrStar.equals("*") && !PASSES.containsKey(passOrStar)) {
            throw new IllegalArgumentException("--print-ir-after: unknown pass '" + passOrStar + "' (passes: " + String.join(", ", PASSES.keySet()) + ")");
        }
        this.printAfter = passOrStar;
        this.printer = sink;
        return this;
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
            try {
                Verifier.verify(out);
            } catch (Verifier.VerificationException e) {
                throw new IllegalStateException("pass " + p.name() + " broke the graph: " + e.getMessage(), e);
            }
            if (printAfter != null && (printAfter.equals("*") || printAfter.equals(p.name()))) {
                printer.accept("// ----- IR after " + p.name() + (out != g ? "" : " (unchanged)") + " -----\n" + Printer.print(out));
            }
            g = out;
        }
        return g;
    }

    public List<PassRecord> records() { return List.copyOf(records); }
}
