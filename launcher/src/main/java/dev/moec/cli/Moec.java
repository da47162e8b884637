package dev.moec.cli;

import dev.moec.backend.Target;
import dev.moec.executor.Generator;
import dev.moec.executor.Sampler;
import dev.moec.frontend.Checkpoint;
import dev.moec.frontend.ModelImport;
import dev.moec.frontend.testmodel.TestModels;
import dev.moec.ir.Graph;
import dev.moec.ir.StepAbi;
import dev.moec.passes.PassManager;
import dev.moec.serving.BatchScheduler;
import dev.moec.serving.OpenAiServer;
import dev.moec.serving.TextTokenizer;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;

/** The {@code moec} command. */
@Command(name = "moec", mixinStandardHelpOptions = true, scope = CommandLine.ScopeType.INHERIT, version = "moec 0.1.0",
        description = "Compiles Mixture-of-Experts checkpoints into captured kernel graphs and serves them.",
        subcommands = {Moec.Serve.class, Moec.Compile.class, Moec.Generate.class, Moec.TestModel.class, IrCommand.class, InspectCommand.class, BenchCommand.class})
public final class Moec {
    public static void main(String[] args) {
        System.exit(commandLine().execute(args));
    }

    public static CommandLine commandLine() {
        CommandLine cl = new CommandLine(new Moec());
        // A bad checkpoint or argument is a message, not a stack trace (MOEC_DEBUG=1 shows the trace).
        cl.setExecutionExceptionHandler((e, cmd, parse) -> {
            if (System.getenv("MOEC_DEBUG") != null) e.printStackTrace();
            cmd.getErr().println("moec: " + (e.getMessage() == null ? e.toString() : e.getMessage()));
            return 1;
        });
        return cl;
    }

    static void progress(String line) { System.err.println("[moec] " + line); }

    /** Options shared by the commands that run a model (a picocli mixin). */
    static final class RunOptions {
        @Option(names = "--cuda-graph-bs", arity = "1..*", defaultValue = "1 2 4 8", split = " ",
                description = "decode batch sizes to capture a graph for (default: ${DEFAULT-VALUE})")
        List<Integer> batchSizes;

        @Option(names = "--max-seq-len", defaultValue = "2048", description = "context length of the KV cache (default: ${DEFAULT-VALUE})")
        int maxSeqLen;

        @Option(names = "--kv-block-size", defaultValue = "" + StepAbi.DEFAULT_KV_BLOCK_SIZE, paramLabel = "N",
                description = "positions per block of the paged KV cache when MODEL is a checkpoint; an artifact keeps the size it was compiled with (default: ${DEFAULT-VALUE})")
        int kvBlockSize;

        @CommandLine.Mixin ExecutorOptions executor;
    }

    /** How the CPU executor runs: thread count and captured replay (a mixin of run and bench). */
    static final class ExecutorOptions {
        @Option(names = "--threads", description = "CPU threads for the kernels (default: all cores)")
        Integer threads;

        @Option(names = "--no-capture", description = "replay the decode graphs from a loop instead of their generated straight-line code")
        boolean noCapture;

        @Option(names = "--kv-cache-blocks", defaultValue = "0", paramLabel = "N",
                description = "blocks of the paged KV cache in all; a sequence takes blocks as it grows and gives them back when it ends (default: 0, enough for every slot's full context)")
        int kvCacheBlocks;

        int threads() { return threads != null ? threads : Runtime.getRuntime().availableProcessors(); }

        boolean capture() { return !noCapture; }
    }

    /** The quantization flags that choose the default pass pipeline (a mixin of compile and bench). */
    static final class QuantizationOptions {
        @Option(names = "--quantization", defaultValue = "none", description = "none, w8a8 (int8 Linears and experts) or w4a8 (int4 experts) (default: ${DEFAULT-VALUE})")
        String quantization;

        @Option(names = "--kv-cache-dtype", defaultValue = "auto", description = "auto (the activation dtype, f32 on the CPU), bf16, or int8 (default: ${DEFAULT-VALUE})")
        String kvCacheDtype;

        String pipeline() { return PassManager.defaultPipeline(quantization, kvCacheDtype); }
    }

    @Command(name = "serve", description = "Serve a model over an OpenAI-compatible HTTP API (default: the embedded demo model).")
    static final class Serve implements Callable<Integer> {
        @Parameters(arity = "0..1", paramLabel = "ARTIFACT|DIR", description = "an artifact, or a checkpoint directory to compile first")
        Path model;

        @Option(names = "--host", defaultValue = "127.0.0.1", description = "address to listen on (default: ${DEFAULT-VALUE})")
        String host;

        @Option(names = "--port", defaultValue = "8000", description = "port to listen on (default: ${DEFAULT-VALUE})")
        int port;

        @CommandLine.Mixin RunOptions run;

        @Override
        public Integer call() throws Exception {
            Path path = model != null ? model : Models.demoModel();
            Models.Loaded loaded = Models.compiled(path, run.batchSizes, run.maxSeqLen, run.kvBlockSize, run.executor, Moec::progress);
            TextTokenizer tokenizer = TextTokenizer.load(loaded.tokenizerDir());
            BatchScheduler scheduler = new BatchScheduler(loaded.model());
            OpenAiServer server = OpenAiServer.start(new OpenAiServer.Model(loaded.name(), tokenizer, loaded.eosIds(), scheduler), host, port);
            progress("serving " + loaded.name() + " on http://" + host + ":" + server.port() + "  (GET /health, GET /v1/models, POST /v1/completions)");
            CountDownLatch done = new CountDownLatch(1);
            Runtime.getRuntime().addShutdownHook(new Thread(() -> {
                server.close();
                done.countDown();
            }));
            done.await();
            return 0;
        }
    }

    @Command(name = "compile", description = "Compile a checkpoint into an artifact: one decode graph per batch size, a prefill graph, the weights.")
    static final class Compile implements Callable<Integer> {
        @Option(names = "--model", required = true, paramLabel = "DIR", description = "Hugging Face checkpoint directory")
        Path model;

        @Option(names = {"-o", "--output"}, required = true, paramLabel = "OUT", description = "artifact directory to write")
        Path out;

        @Option(names = "--cuda-graph-bs", arity = "1..*", defaultValue = "1 2 4 8", split = " ",
                description = "decode batch sizes to capture (default: ${DEFAULT-VALUE})")
        List<Integer> batchSizes;

        @Option(names = "--passes", description = "pass pipeline, replacing the default one (see --quantization)")
        String pipeline;

        @CommandLine.Mixin QuantizationOptions quantization;

        @Option(names = "--target", defaultValue = "cpu", description = "cpu (ND weights, runs here) or ascend (NZ weights, operator contracts checked) (default: ${DEFAULT-VALUE})")
        String target;

        @Option(names = "--print-ir-after-all", description = "print the IR after every pass")
        boolean printAfterAll;

        @Option(names = "--print-ir-after", paramLabel = "PASS", description = "print the IR after each run of this pass")
        String printAfter;

        @Option(names = "--speculative-num-draft-tokens", defaultValue = "1", paramLabel = "N",
                description = "tokens a decode step verifies per sequence: each decode graph carries bs x N tokens (default: ${DEFAULT-VALUE}, no speculation)")
        int draftTokens;

        @Option(names = "--kv-block-size", defaultValue = "" + StepAbi.DEFAULT_KV_BLOCK_SIZE, description = "positions per block of the paged KV cache, recorded in the artifact; on --target ascend FIA needs 128..512 in steps of 128 (default: ${DEFAULT-VALUE})")
        int kvBlockSize;

        @Override
        public Integer call() throws Exception {
            if (draftTokens < 1) throw new IllegalArgumentException("--speculative-num-draft-tokens must be at least 1");
            String passes = pipeline != null ? pipeline : quantization.pipeline();
            var options = new ModelCompiler.Options(batchSizes, passes, Target.parse(target), printAfterAll ? "*" : printAfter, draftTokens, kvBlockSize);
            var m = ModelCompiler.compile(model, out, options, Moec::progress);
            System.out.println("compiled " + m.model().name() + " into " + out + ": " + m.graphs().size() + " graphs, "
                    + m.weights().tensors().size() + " weight tensors");
            return 0;
        }
    }

    @Command(name = "generate", description = "Generate a continuation and print its text and token ids.")
    static final class Generate implements Callable<Integer> {
        @Option(names = "--model", paramLabel = "DIR|ARTIFACT", description = "checkpoint or artifact (default: the embedded demo model)")
        Path model;

        @Option(names = "--prompt", description = "prompt text")
        String prompt;

        @Option(names = "--prompt-ids", split = ",", paramLabel = "ID", description = "prompt token ids, comma-separated")
        int[] promptIds;

        @Option(names = "--max-tokens", defaultValue = "16", description = "tokens to generate (default: ${DEFAULT-VALUE})")
        int maxTokens;

        @Option(names = "--temperature", defaultValue = "0", description = "0 is greedy (default: ${DEFAULT-VALUE})")
        double temperature;

        @Option(names = "--seed", defaultValue = "0", description = "sampling seed (default: ${DEFAULT-VALUE})")
        long seed;

        @Option(names = "--reference", description = "run the reference interpreter on the IR instead of the compiled graphs")
        boolean reference;

        @Option(names = "--logits-out", paramLabel = "FILE.npy", description = "write the logits of every step as a float32 [steps, vocab] NumPy array")
        Path logitsOut;

        @Option(names = "--ignore-eos", description = "keep generating past end-of-sequence tokens")
        boolean ignoreEos;

        @CommandLine.Mixin RunOptions run;

        @Override
        public Integer call() throws Exception {
            if ((prompt == null) == (promptIds == null)) throw new IllegalArgumentException("give exactly one of --prompt and --prompt-ids");
            if (maxTokens < 1) throw new IllegalArgumentException("--max-tokens must be at least 1");
            Path path = model != null ? model : Models.demoModel();
            try (Models.Loaded loaded = reference ? Models.reference(path, 1, run.maxSeqLen, run.kvBlockSize, run.executor.kvCacheBlocks)
                    : Models.compiled(path, run.batchSizes, run.maxSeqLen, run.kvBlockSize, run.executor, Moec::progress)) {
                TextTokenizer tokenizer = Files.isRegularFile(loaded.tokenizerDir().resolve("tokenizer.json")) ? TextTokenizer.load(loaded.tokenizerDir()) : null;
                int[] ids = promptIds != null ? promptIds : requireTokenizer(tokenizer).encode(prompt);
                Sampler sampler = temperature == 0 ? Sampler.greedy() : Sampler.temperature(temperature, seed);
                long t0 = System.nanoTime();
                Generator.Result r = Generator.generate(loaded.model(), 0, ids, maxTokens, sampler,
                        ignoreEos ? java.util.Set.of() : loaded.eosIds(), logitsOut != null);
                double seconds = (System.nanoTime() - t0) / 1e9;
                if (tokenizer != null) System.out.println(tokenizer.decode(r.tokens()));
                System.out.println("prompt ids: " + join(ids));
                System.out.println("token ids:  " + join(r.tokens()));
                progress(String.format("%d tokens in %.2f s (%s, finish: %s)", r.tokens().length, seconds, reference ? "reference interpreter" : "compiled", r.finish()));
                if (logitsOut != null) {
                    Npy.writeF32(logitsOut, r.stepLogits());
                    progress("wrote logits [" + r.stepLogits().size() + ", " + loaded.model().vocabSize() + "] to " + logitsOut);
                }
            }
            return 0;
        }

        private static TextTokenizer requireTokenizer(TextTokenizer t) {
            if (t == null) throw new IllegalArgumentException("the model has no tokenizer.json; use --prompt-ids");
            return t;
        }

        private static String join(int[] ids) {
            return String.join(",", Arrays.stream(ids).mapToObj(Integer::toString).toList());
        }
    }

    @Command(name = "testmodel", description = "Write a seeded random checkpoint in exact Hugging Face layout.")
    static final class TestModel implements Callable<Integer> {
        @Option(names = "--arch", required = true, description = "model_type, e.g. qwen3_moe")
        String arch;

        @Option(names = "--preset", defaultValue = "tiny", description = "size preset (default: ${DEFAULT-VALUE})")
        String preset;

        @Option(names = "--seed", defaultValue = "0", description = "weight seed (default: ${DEFAULT-VALUE})")
        long seed;

        @Option(names = {"-o", "--output"}, required = true, paramLabel = "DIR")
        Path out;

        @Option(names = "--format", defaultValue = "bf16", description = "bf16; fp8 (block-FP8 Linear weights with weight_scale_inv); "
                + "w8a8, w8a8_dynamic or w4a8_dynamic (msModelSlim layout with quant_model_description.json) (default: ${DEFAULT-VALUE})")
        String format;

        @Override
        public Integer call() throws Exception {
            TestModels.write(arch, preset, seed, out, TestModels.Format.parse(format), Moec::progress);
            return 0;
        }
    }
}
