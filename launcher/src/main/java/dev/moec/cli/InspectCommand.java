package dev.moec.cli;

import dev.moec.frontend.Checkpoint;
import dev.moec.frontend.ModelImport;
import dev.moec.ir.Graph;
import dev.moec.ir.Op;
import dev.moec.ir.ParamCount;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.concurrent.Callable;

/** {@code moec inspect}: what a model is, from its config alone or a checkpoint. */
@Command(name = "inspect", description = "A model (config.json alone, or a checkpoint): parameter counts. An artifact: its graphs, launches, memory plans and weights.")
final class InspectCommand implements Callable<Integer> {
    @picocli.CommandLine.Parameters(arity = "0..1", paramLabel = "ARTIFACT", description = "a compiled artifact directory")
    Path artifact;

    @Option(names = "--config", paramLabel = "FILE", description = "config.json: nothing else is read, so a 671B model needs no download")
    Path config;

    @Option(names = "--model", paramLabel = "DIR", description = "checkpoint directory")
    Path model;

    @Override
    public Integer call() {
        int given = (artifact != null ? 1 : 0) + (model != null ? 1 : 0) + (config != null ? 1 : 0);
        if (given != 1) throw new IllegalArgumentException("give exactly one of ARTIFACT, --model and --config");
        if (artifact != null) return inspectArtifact();
        Graph main;
        Optional<Graph> mtp;
        if (config != null) {
            main = ModelImport.stepGraphFromConfig(config);
            mtp = ModelImport.mtpGraphFromConfig(config);
        } else {
            try (Checkpoint ckpt = Checkpoint.open(model)) {
                main = ModelImport.stepGraph(ckpt);
                mtp = ModelImport.mtpGraph(ckpt);
            }
        }
        ParamCount c = ParamCount.of(main);
        System.out.println("model:       " + main.name() + " (" + (config != null ? config : model) + ")");
        System.out.printf(Locale.ROOT, "parameters:  %s total, %s active per token%n", human(c.total()), human(c.active()));
        System.out.printf(Locale.ROOT, "             %,d total, %,d active%n", c.total(), c.active());
        System.out.printf(Locale.ROOT, "  routed experts   %s (%.1f%% of the total)%n", human(c.routedExperts()), 100.0 * c.routedExperts() / c.total());
        System.out.printf(Locale.ROOT, "  embedding, head  %s%n", human(c.embeddings()));
        mtp.ifPresent(g -> {
            ParamCount m = ParamCount.of(g);
            System.out.printf(Locale.ROOT, "MTP layer:   %s total, %s active (%,d / %,d; shares nothing with the main count above)%n",
                    human(m.total()), human(m.active()), m.total(), m.active());
        });
        Map<String, Integer> ops = new TreeMap<>();
        for (var n : main.nodes()) ops.merge(n.op().text(), 1, Integer::sum);
        System.out.println("step graph:  " + main.nodes().size() + " nodes, " + main.params().size() + " parameters; "
                + ops.getOrDefault(Op.MOE_EXPERTS.text(), 0) + " MoE blocks");
        return 0;
    }

    private int inspectArtifact() {
        try (dev.moec.capture.Artifact a = dev.moec.capture.Artifact.open(artifact)) {
            var m = a.manifest();
            System.out.println("artifact:    " + artifact + " (format " + m.format() + " v" + m.formatVersion() + ", " + m.compiler() + ")");
            System.out.println("model:       " + m.model().name() + " (" + m.model().modelType() + "), target " + m.target());
            System.out.println("pipeline:    " + m.pipeline());
            long perBlock = 0;                                  // bytes of one block across every paged cache and its scales
            for (var b : a.prefillGraph().buffers()) {
                if (b.role() != dev.moec.backend.KernelGraph.Role.STATE || !b.type().shape().dim(0).equals(dev.moec.ir.Dim.sym(dev.moec.ir.StepAbi.NB))) continue;
                perBlock += b.type().bind(dev.moec.ir.StepAbi.stateBindings(1, m.kvBlockSize(), m.kvBlockSize(), 1)).bytes();
            }
            System.out.println("kv cache:    paged, blocks of " + m.kvBlockSize() + " positions, " + bytes(perBlock) + " per block over all layers");
            for (var g : m.graphs()) {
                var kg = g.kind().equals("prefill") ? a.prefillGraph() : a.decodeGraphs().get(g.batchSize());
                Map<String, Integer> byKernel = new TreeMap<>();
                for (var l : kg.launches()) byKernel.merge(l.kernel().name().toLowerCase(Locale.ROOT), 1, Integer::sum);
                String memory = g.kind().equals("prefill") ? "memory planned per step (T is dynamic)"
                        : String.format(Locale.ROOT, "planned peak %s (naive %s)", bytes(g.plannedPeakBytes()), bytes(g.naiveBytes()));
                System.out.printf(Locale.ROOT, "graph %-12s %s, %d launches, %s%n", g.name(),
                        g.kind().equals("prefill") ? "T tokens" : g.tokens() + " tokens", kg.launches().size(), memory);
                System.out.println("    " + String.join(", ", byKernel.entrySet().stream().map(e -> e.getKey() + " " + e.getValue()).toList()));
            }
            Map<String, Long> byDtype = new TreeMap<>();
            long total = 0;
            for (var t : m.weights().tensors()) {
                byDtype.merge(dev.moec.ir.TensorType.parse(t.type()).dtype().text(), t.bytes(), Long::sum);
                total += t.bytes();
            }
            System.out.println("weights:     " + m.weights().tensors().size() + " tensors, " + bytes(total) + ": "
                    + String.join(", ", byDtype.entrySet().stream().map(e -> e.getKey() + " " + bytes(e.getValue())).toList()));
        }
        return 0;
    }

    static String bytes(long n) {
        if (n >= 1L << 30) return String.format(Locale.ROOT, "%.2f GiB", n / (double) (1L << 30));
        if (n >= 1L << 20) return String.format(Locale.ROOT, "%.2f MiB", n / (double) (1L << 20));
        if (n >= 1L << 10) return String.format(Locale.ROOT, "%.1f KiB", n / 1024.0);
        return n + " B";
    }

    static String human(long n) {
        if (n >= 1_000_000_000L) return String.format(Locale.ROOT, "%.2f B", n / 1e9);
        if (n >= 1_000_000L) return String.format(Locale.ROOT, "%.2f M", n / 1e6);
        return String.format(Locale.ROOT, "%,d", n);
    }
}
