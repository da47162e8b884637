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
@Command(name = "inspect", description = "Parameter counts (total and active per token) and graph size of a model, from config.json alone or a checkpoint.")
final class InspectCommand implements Callable<Integer> {
    @Option(names = "--config", paramLabel = "FILE", description = "config.json: nothing else is read, so a 671B model needs no download")
    Path config;

    @Option(names = "--model", paramLabel = "DIR", description = "checkpoint directory")
    Path model;

    @Override
    public Integer call() {
        if ((model == null) == (config == null)) throw new IllegalArgumentException("give exactly one of --model and --config");
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

    static String human(long n) {
        if (n >= 1_000_000_000L) return String.format(Locale.ROOT, "%.2f B", n / 1e9);
        if (n >= 1_000_000L) return String.format(Locale.ROOT, "%.2f M", n / 1e6);
        return String.format(Locale.ROOT, "%,d", n);
    }
}
