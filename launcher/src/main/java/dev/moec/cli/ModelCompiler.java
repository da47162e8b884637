package dev.moec.cli;

import com.fasterxml.jackson.databind.JsonNode;
import dev.moec.backend.KernelGraph;
import dev.moec.backend.Lowering;
import dev.moec.backend.Target;
import dev.moec.capture.ArtifactWriter;
import dev.moec.capture.Manifest;
import dev.moec.capture.ModelInfo;
import dev.moec.frontend.Checkpoint;
import dev.moec.frontend.ModelImport;
import dev.moec.ir.Graph;
import dev.moec.ir.StepAbi;
import dev.moec.passes.PassManager;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

/** The whole pipeline: checkpoint → IR → passes → kernel graph → captured artifact. */
public final class ModelCompiler {
    private ModelCompiler() {}

    /** Tokenizer and generation files copied into the artifact when the checkpoint has them. */
    static final List<String> TOKENIZER_FILES = List.of("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
            "generation_config.json", "chat_template.jinja");

    /** {@code printIrAfter}: null, "*" (every pass) or a pass name; the IR goes to standard output. */
    public record Options(List<Integer> batchSizes, String pipeline, Target target, String printIrAfter, int draftTokens, int kvBlockSize) {
        public Options(List<Integer> batchSizes, String pipeline, Target target) {
            this(batchSizes, pipeline, target, null, 1, StepAbi.DEFAULT_KV_BLOCK_SIZE);
        }

        public Options(List<Integer> batchSizes, String pipeline, Target target, String printIrAfter, int draftTokens) {
            this(batchSizes, pipeline, target, printIrAfter, draftTokens, StepAbi.DEFAULT_KV_BLOCK_SIZE);
        }

        public static Options defaults() { return new Options(List.of(1, 2, 4, 8), PassManager.defaultPipeline("none"), Target.CPU); }
    }

    public static Manifest compile(Path checkpointDir, Path out, Options options, Consumer<String> progress) throws IOException {
        try (Checkpoint ckpt = Checkpoint.open(checkpointDir)) {
            progress.accept("importing " + checkpointDir + " (" + ckpt.config().path("model_type").asText() + ", " + ckpt.names().size() + " tensors)");
            Graph graph = ModelImport.stepGraph(ckpt);
            PassManager pm = new PassManager(options.pipeline());
            if (options.printIrAfter() != null) pm.printIrAfter(options.printIrAfter(), System.out::print);
            graph = pm.run(graph);
            for (PassManager.PassRecord r : pm.records()) {
                progress.accept(String.format("pass %-12s %s in %.1f ms", r.pass(), r.changed() ? "changed the graph" : "no change", r.nanos() / 1e6));
            }
            KernelGraph kernels = Lowering.lower(graph, options.target());
            progress.accept("lowered to " + kernels.launches().size() + " kernel launches for target " + options.target().text());
            if (options.target() == Target.CPU) dev.moec.executor.cpu.CpuKernels.checkSupported(kernels);   // refuse before writing
            List<Path> tokenizer = new ArrayList<>();
            for (String f : TOKENIZER_FILES) if (Files.isRegularFile(checkpointDir.resolve(f))) tokenizer.add(checkpointDir.resolve(f));
            ArtifactWriter.Request req = new ArtifactWriter.Request(kernels, ckpt, modelInfo(ckpt), options.batchSizes(), tokenizer,
                    options.pipeline(), options.target(), options.draftTokens(), options.kvBlockSize());
            return ArtifactWriter.write(req, out, progress);
        }
    }

    static ModelInfo modelInfo(Checkpoint ckpt) {
        JsonNode c = dev.moec.frontend.ModelImport.textConfig(ckpt.config());
        List<Integer> eos = new ArrayList<>();
        Path gen = ckpt.dir().resolve("generation_config.json");
        JsonNode eosNode = Files.isRegularFile(gen) ? Checkpoint.readConfig(gen).get("eos_token_id") : null;
        if (eosNode == null || eosNode.isNull()) eosNode = c.get("eos_token_id");
        if (eosNode != null && eosNode.isArray()) eosNode.forEach(n -> eos.add(n.asInt()));
        else if (eosNode != null && eosNode.canConvertToInt()) eos.add(eosNode.asInt());
        Path name = ckpt.dir().toAbsolutePath().normalize().getFileName();
        return new ModelInfo(name == null ? "model" : name.toString(), ckpt.config().path("model_type").asText(), c.path("vocab_size").asInt(),
                eos, c.path("max_position_embeddings").asInt(4096));
    }
}
