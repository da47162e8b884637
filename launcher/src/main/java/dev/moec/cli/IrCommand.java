package dev.moec.cli;

import dev.moec.frontend.Checkpoint;
import dev.moec.frontend.ModelImport;
import dev.moec.ir.Graph;
import dev.moec.ir.Graphs;
import dev.moec.ir.OpDocs;
import dev.moec.ir.Printer;
import dev.moec.ir.StepAbi;
import dev.moec.ir.Value;
import dev.moec.ir.Verifier;
import dev.moec.ir.interp.Interpreter;
import dev.moec.ir.interp.RandomStore;
import dev.moec.ir.interp.RefTensor;
import dev.moec.ir.interp.TensorStore;
import dev.moec.ir.text.IrParser;
import dev.moec.passes.PassManager;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;

/** {@code moec ir}: read, check, draw, run and dump IR. */
@Command(name = "ir", description = "Work with the IR text form (.mir) and model graphs.",
        subcommands = {IrCommand.Print.class, IrCommand.Verify.class, IrCommand.Dot.class, IrCommand.Run.class,
                IrCommand.Dump.class, IrCommand.Opt.class, IrCommand.Stats.class, IrCommand.Ops.class})
final class IrCommand {
    static Graph read(Path file) throws IOException {
        if (!Files.isRegularFile(file)) throw new IllegalArgumentException(file + ": no such file");
        return IrParser.parse(Files.readString(file), file.toString());
    }

    @Command(name = "print", description = "Parse a .mir file and print it in canonical form.")
    static final class Print implements Callable<Integer> {
        @Parameters(paramLabel = "FILE.mir") Path file;

        @Override public Integer call() throws IOException {
            System.out.print(Printer.print(read(file)));
            return 0;
        }
    }

    @Command(name = "verify", description = "Parse and verify a .mir file; lists every violation (exit 1 if any).")
    static final class Verify implements Callable<Integer> {
        @Parameters(paramLabel = "FILE.mir") Path file;

        @Override public Integer call() throws IOException {
            Graph g = read(file);
            List<Verifier.Violation> v = Verifier.check(g);
            if (v.isEmpty()) {
                System.out.println(file + ": @" + g.name() + " verifies (" + g.nodes().size() + " nodes, " + g.params().size() + " parameters)");
                return 0;
            }
            v.forEach(x -> System.out.println(file + ": " + x));
            return 1;
        }
    }

    @Command(name = "dot", description = "Draw a .mir graph: DOT text (JGraphT), rendered by Graphviz for -o x.svg|png|pdf.")
    static final class Dot implements Callable<Integer> {
        @Parameters(paramLabel = "FILE.mir") Path file;

        @Option(names = {"-o", "--output"}, paramLabel = "OUT", description = "OUT.dot, or OUT.svg/.png/.pdf rendered with Graphviz (default: DOT on stdout)")
        Path out;

        @Override public Integer call() throws IOException, InterruptedException {
            String dot = Graphs.dot(read(file));
            if (out == null) {
                System.out.print(dot);
                return 0;
            }
            String name = out.getFileName().toString();
            String ext = name.contains(".") ? name.substring(name.lastIndexOf('.') + 1).toLowerCase(Locale.ROOT) : "dot";
            if (ext.equals("dot") || ext.equals("gv")) {
                Files.writeString(out, dot);
                return 0;
            }
            if (!List.of("svg", "png", "pdf").contains(ext)) throw new IllegalArgumentException("-o must end in .dot, .svg, .png or .pdf, not ." + ext);
            Process p;
            try {
                p = new ProcessBuilder("dot", "-T" + ext, "-o", out.toString()).redirectErrorStream(true).start();
            } catch (IOException e) {
                throw new IllegalArgumentException("Graphviz's `dot` is not on the PATH (install graphviz), or write -o " + name.replaceAll("\\.[^.]*$", "") + ".dot");
            }
            p.getOutputStream().write(dot.getBytes(StandardCharsets.UTF_8));
            p.getOutputStream().close();
            String log = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            if (p.waitFor() != 0) throw new IllegalStateException("Graphviz failed: " + log.strip());
            System.err.println("[moec] wrote " + out);
            return 0;
        }
    }

    @Command(name = "run", description = "Run a .mir graph on the reference interpreter and print its outputs.")
    static final class Run implements Callable<Integer> {
        @Parameters(paramLabel = "FILE.mir") Path file;

        @Option(names = "--weights", paramLabel = "DIR", description = "checkpoint whose tensors the parameters name (default: seeded random weights)")
        Path weights;

        @Option(names = "--bind", split = ",", paramLabel = "SYM=N", description = "sizes of the symbolic dims, e.g. T=4,R=1,S=1,NB=1,BS=16,MB=1")
        Map<String, Long> bind = new HashMap<>();

        @Option(names = "--input", paramLabel = "NAME=V1,V2,...", description = "values of an input (default: N(0,1) floats, zero integers, and a block table that gives slot s the blocks s*MB .. s*MB+MB-1)")
        Map<String, String> inputs = new HashMap<>();

        @Option(names = "--seed", defaultValue = "0", description = "seed of random inputs and weights (default: ${DEFAULT-VALUE})")
        long seed;

        @Option(names = "--show", defaultValue = "8", description = "values printed per output (default: ${DEFAULT-VALUE})")
        int show;

        @Override public Integer call() throws IOException {
            Graph g = Graphs.bind(Verifier.verify(read(file)), bind);
            Map<String, RefTensor> feed = new HashMap<>();
            SplittableRandom random = new SplittableRandom(seed);
            for (Value in : g.inputs()) {
                if (!in.type().shape().isStatic()) {
                    throw new IllegalArgumentException("input " + in + " is " + in.type() + ": give its sizes with --bind (e.g. --bind T=4)");
                }
                int[] shape = Arrays.stream(in.type().shape().sizes()).mapToInt(Math::toIntExact).toArray();
                int n = (int) RefTensor.volume(shape);
                String given = inputs.remove(in.name());
                String[] parts = given == null ? null : given.split(",");
                if (parts != null && parts.length != n) throw new IllegalArgumentException("--input " + in.name() + " has " + parts.length + " values, " + in.type() + " needs " + n);
                if (in.type().dtype().isFloating()) {
                    float[] v = new float[n];
                    for (int i = 0; i < n; i++) v[i] = parts != null ? Float.parseFloat(parts[i]) : (float) random.nextGaussian();
                    feed.put(in.name(), RefTensor.of(in.type().dtype(), shape, v));
                } else {
                    int[] v = new int[n];
                    boolean table = in.name().equals(StepAbi.BLOCK_TABLE);    // default: each slot's blocks in a row
                    for (int i = 0; i < n; i++) v[i] = parts != null ? Integer.parseInt(parts[i].trim()) : table ? i : 0;
                    feed.put(in.name(), RefTensor.ofInts(in.type().dtype(), shape, v));
                }
            }
            if (!inputs.isEmpty()) throw new IllegalArgumentException("the graph has no input(s) " + inputs.keySet());
            try (Checkpoint ckpt = weights != null ? Checkpoint.open(weights) : null) {
                TensorStore store = ckpt != null ? ckpt : new RandomStore(g, seed);
                Map<String, RefTensor> out = new Interpreter(store).run(g, feed);
                out.forEach((name, t) -> System.out.println("%" + name + " : " + t.dtype() + Arrays.toString(t.shape()) + " = " + summary(t)));
            }
            return 0;
        }

        private String summary(RefTensor t) {
            int n = Math.min(show, t.size());
            StringBuilder sb = new StringBuilder("[");
            double sum = 0, max = 0;
            for (int i = 0; i < t.size(); i++) {
                double v = t.isInt() ? t.i()[i] : t.f()[i];
                sum += v;
                max = Math.max(max, Math.abs(v));
                if (i < n) sb.append(i > 0 ? ", " : "").append(t.isInt() ? Integer.toString(t.i()[i]) : String.format(Locale.ROOT, "%.6g", v));
            }
            if (t.size() > n) sb.append(", ...");
            return sb.append(String.format(Locale.ROOT, "]  (%d values, sum %.6g, max|x| %.6g)", t.size(), sum, max)).toString();
        }
    }

    @Command(name = "dump", description = "Print the IR step graph of a checkpoint, or of a config.json alone.")
    static final class Dump implements Callable<Integer> {
        @Option(names = "--model", paramLabel = "DIR", description = "checkpoint directory")
        Path model;

        @Option(names = "--config", paramLabel = "FILE", description = "config.json alone: weights are typed parameters with no data")
        Path config;

        @Option(names = "--phase", description = "prefill (T tokens, one logit row) or decode (--batch tokens); default: the step graph as compiled")
        String phase;

        @Option(names = "--batch", defaultValue = "1", description = "decode batch size for --phase decode (default: ${DEFAULT-VALUE})")
        int batch;

        @Option(names = "--layers", description = "build only the first N decoder layers")
        Integer layers;

        @Option(names = "--passes", description = "run this pass pipeline first")
        String pipeline;

        @Option(names = "--mtp", description = "the MTP layer's graph instead of the main model's")
        boolean mtp;

        @Override public Integer call() {
            if ((model == null) == (config == null)) throw new IllegalArgumentException("give exactly one of --model and --config");
            int max = layers != null ? layers : Integer.MAX_VALUE;
            Graph g;
            if (model != null) {
                try (Checkpoint ckpt = Checkpoint.open(model)) {
                    g = mtp ? ModelImport.mtpGraph(ckpt).orElseThrow(() -> noMtp(model)) : ModelImport.stepGraph(ckpt, max);
                }
            } else {
                g = mtp ? ModelImport.mtpGraphFromConfig(config).orElseThrow(() -> noMtp(config)) : ModelImport.stepGraphFromConfig(config, max);
            }
            if (pipeline != null) g = new PassManager(pipeline).run(g);
            if (phase != null) {
                g = switch (phase) {
                    case "prefill" -> Graphs.bind(g, Map.of(StepAbi.R, 1L));
                    case "decode" -> Graphs.bind(g, Map.of(StepAbi.T, (long) batch, StepAbi.R, (long) batch));
                    default -> throw new IllegalArgumentException("--phase must be prefill or decode, not " + phase);
                };
            }
            System.out.print(Printer.print(g));
            return 0;
        }
    }

    /** Where a graph comes from: a .mir file, a checkpoint, or a config alone. */
    static final class Source {
        @Parameters(arity = "0..1", paramLabel = "FILE.mir", description = "an IR file")
        Path file;

        @Option(names = "--model", paramLabel = "DIR", description = "a checkpoint's step graph")
        Path model;

        @Option(names = "--config", paramLabel = "FILE", description = "the step graph of a config.json alone")
        Path config;

        Graph load() throws IOException {
            int given = (file != null ? 1 : 0) + (model != null ? 1 : 0) + (config != null ? 1 : 0);
            if (given != 1) throw new IllegalArgumentException("give exactly one of FILE.mir, --model and --config");
            if (file != null) return Verifier.verify(read(file));
            if (config != null) return ModelImport.stepGraphFromConfig(config);
            try (Checkpoint ckpt = Checkpoint.open(model)) {
                return ModelImport.stepGraph(ckpt);
            }
        }
    }

    @Command(name = "opt", description = "Run a pass pipeline and print the result, like mlir-opt.")
    static final class Opt implements Callable<Integer> {
        @picocli.CommandLine.Mixin Source source;

        @Option(names = "--passes", required = true, description = "comma-separated pass names, e.g. fuse-rope,cse,dce")
        String pipeline;

        @Option(names = "--print-ir-after-all", description = "print the IR after every pass")
        boolean all;

        @Option(names = "--print-ir-after", paramLabel = "PASS", description = "print the IR after each run of this pass")
        String after;

        @Option(names = "--timing", description = "report each pass's time and changed flag on standard error")
        boolean timing;

        @Override public Integer call() throws IOException {
            PassManager pm = new PassManager(pipeline);
            if (all || after != null) pm.printIrAfter(all ? "*" : after, System.out::print);
            Graph g = pm.run(source.load());
            if (timing) pm.records().forEach(r -> System.err.printf(Locale.ROOT, "%-20s %-9s %8.2f ms%n", r.pass(), r.changed() ? "changed" : "unchanged", r.nanos() / 1e6));
            if (!all) System.out.print(Printer.print(g));
            return 0;
        }
    }

    @Command(name = "stats", description = "Count a graph's ops by kind (after an optional pass pipeline).")
    static final class Stats implements Callable<Integer> {
        @picocli.CommandLine.Mixin Source source;

        @Option(names = "--passes", description = "run this pipeline first (e.g. the default one: see moec compile)")
        String pipeline;

        @Override public Integer call() throws IOException {
            Graph g = source.load();
            if (pipeline != null) g = new PassManager(pipeline).run(g);
            java.util.Map<String, Integer> counts = new java.util.TreeMap<>();
            for (var n : g.nodes()) counts.merge(n.op().text(), 1, Integer::sum);
            System.out.println("@" + g.name() + ": " + g.nodes().size() + " nodes, " + g.params().size() + " parameters");
            counts.forEach((op, n) -> System.out.printf(Locale.ROOT, "  %-28s %5d%n", op, n));
            return 0;
        }
    }

    static IllegalArgumentException noMtp(Path p) { return new IllegalArgumentException(p + ": this model has no MTP layer"); }

    @Command(name = "ops", description = "List the op table: signatures, semantics, examples.")
    static final class Ops implements Callable<Integer> {
        @Option(names = "--markdown", description = "as the Markdown of docs/ops.md")
        boolean markdown;

        @Override public Integer call() {
            System.out.print(markdown ? OpDocs.markdown() : OpDocs.text());
            return 0;
        }
    }

}
