package dev.moec.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The moec command as a user runs it. */
class CliTest {
    @TempDir Path dir;

    static Path demo() { return Paths.get(System.getProperty("moec.home", "..")).resolve("models/pydocs-moe-tiny").toAbsolutePath().normalize(); }

    /** A command's exit code, its standard output, picocli's error text, and the {@code [moec]} progress lines it wrote to standard error. */
    record Run(int exit, String out, String err, String progress) {}

    private static Run run(String... args) {
        PrintStream saved = System.out, savedErr = System.err;
        ByteArrayOutputStream out = new ByteArrayOutputStream(), progress = new ByteArrayOutputStream();
        StringWriter err = new StringWriter();
        try {
            System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
            System.setErr(new PrintStream(progress, true, StandardCharsets.UTF_8));
            CommandLine cl = Moec.commandLine();
            cl.setErr(new PrintWriter(err, true));
            int exit = cl.execute(args);
            return new Run(exit, out.toString(StandardCharsets.UTF_8), err.toString(), progress.toString(StandardCharsets.UTF_8));
        } finally {
            System.setOut(saved);
            System.setErr(savedErr);
            savedErr.print(progress.toString(StandardCharsets.UTF_8));   // still in the test's log
        }
    }

    @Test void generateWritesEveryStepsLogitsAsNpy() throws IOException {
        Path npy = dir.resolve("logits.npy");
        Run r = run("generate", "--model", demo().toString(), "--prompt-ids", "542,448,1201", "--max-tokens", "4",
                "--cuda-graph-bs", "1", "--logits-out", npy.toString());
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.out().contains("token ids:  46,10,10,542"), r.out());
        byte[] b = Files.readAllBytes(npy);
        assertEquals((byte) 0x93, b[0]);
        assertEquals("NUMPY", new String(b, 1, 5, StandardCharsets.US_ASCII));
        int headerLen = ByteBuffer.wrap(b, 8, 2).order(ByteOrder.LITTLE_ENDIAN).getShort();
        String header = new String(b, 10, headerLen, StandardCharsets.US_ASCII);
        assertTrue(header.contains("'descr': '<f4'") && header.contains("'shape': (4, 8192)"), header);
        assertEquals(0, (10 + headerLen) % 64);
        assertEquals(10 + headerLen + 4L * 4 * 8192, b.length);
        // Row 0 is the prefill's last logits: its argmax is the first generated id, 46.
        ByteBuffer data = ByteBuffer.wrap(b, 10 + headerLen, 4 * 8192).order(ByteOrder.LITTLE_ENDIAN);
        int best = 0;
        float bestValue = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < 8192; i++) {
            float v = data.getFloat();
            if (v > bestValue) { bestValue = v; best = i; }
        }
        assertEquals(46, best);
    }

    @Test void referenceAndTextPromptsWork() {
        Run r = run("generate", "--model", demo().toString(), "--prompt", "The Python interpreter", "--max-tokens", "16", "--reference");
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.out().contains("prompt ids: 542,448,1201"), r.out());
        assertTrue(r.out().contains("token ids:  46,10,10,542,843,741,385,434,517,292,320,517,292,320,517,349"), r.out());
    }

    @Test void irDumpPrintsTheStepGraph() {
        Run r = run("ir", "dump", "--model", demo().toString());
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.out().startsWith("graph @qwen3_moe("), r.out());
        assertTrue(r.out().contains("= moe_experts(") && r.out().contains("param \"model.layers.3.mlp.experts.*.down_proj.weight\" : bf16[16,192,192]"));
    }

    @Test void irPrintVerifyAndRunAMirFile() throws IOException {
        Path mir = dir.resolve("demo.mir");
        Run dump = run("ir", "dump", "--model", demo().toString(), "--layers", "1");
        assertEquals(0, dump.exit(), dump.err());
        Files.writeString(mir, dump.out());
        Run print = run("ir", "print", mir.toString());
        assertEquals(dump.out(), print.out(), "print(parse(t)) must be t");
        Run verify = run("ir", "verify", mir.toString());
        assertEquals(0, verify.exit());
        assertTrue(verify.out().contains("verifies"), verify.out());
        // Running the one-layer graph on the demo weights: the logits of the README prompt's last token.
        Run r = run("ir", "run", mir.toString(), "--weights", demo().toString(), "--bind", "T=3,R=1,S=1,NB=2,BS=2,MB=2",
                "--input", "tokens=542,448,1201", "--input", "positions=0,1,2", "--input", "logit_rows=2");
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.out().startsWith("%logits : f32[1, 8192] = ["), r.out());
        Run unbound = run("ir", "run", mir.toString());
        assertEquals(1, unbound.exit());
        assertTrue(unbound.err().contains("--bind"), unbound.err());
    }

    @Test void irVerifyReportsViolationsAndParseErrorsWithPositions() throws IOException {
        Path bad = dir.resolve("bad.mir");
        Files.writeString(bad, "graph @g(\n    %x: f32[T,4],\n) {\n  %w = param \"w\" : bf16[8,5]\n  %y = matmul(%x, %w) : f32[T,8]\n  return %y\n}\n");
        Run v = run("ir", "verify", bad.toString());
        assertEquals(1, v.exit());
        assertTrue(v.out().contains("[matmul.contraction] %y = matmul(%x, %w) : f32[T,8]"), v.out());
        Files.writeString(bad, "graph @g(\n    %x f32[T,4],\n) {\n  return %x\n}\n");
        Run p = run("ir", "print", bad.toString());
        assertEquals(1, p.exit());
        assertTrue(p.err().contains("bad.mir:2:8: missing ':' at 'f32'"), p.err());
    }

    @Test void irDotWritesDotAndRendersWithGraphviz() throws IOException {
        Path mir = dir.resolve("demo.mir");
        Files.writeString(mir, run("ir", "dump", "--model", demo().toString(), "--layers", "1").out());
        Run dot = run("ir", "dot", mir.toString());
        assertEquals(0, dot.exit(), dot.err());
        assertTrue(dot.out().startsWith("strict digraph \"qwen3_moe\"") || dot.out().startsWith("digraph \"qwen3_moe\""), dot.out().lines().findFirst().orElse(""));
        assertTrue(dot.out().contains("moe_experts") && dot.out().contains("->"));
        org.junit.jupiter.api.Assumptions.assumeTrue(onPath("dot"), "Graphviz is not installed; DOT text was checked above");
        Path svg = dir.resolve("demo.svg");
        Run r = run("ir", "dot", mir.toString(), "-o", svg.toString());
        assertEquals(0, r.exit(), r.err());
        assertTrue(Files.readString(svg).contains("<svg"));
    }

    @Test void irDumpFromAConfigAloneAndPerPhase() throws IOException {
        Path config = dir.resolve("config.json");
        try (var in = CliTest.class.getResourceAsStream("/moec/configs/qwen3_moe.json")) {
            Files.write(config, in.readAllBytes());
        }
        Run r = run("ir", "dump", "--config", config.toString(), "--layers", "1", "--phase", "decode", "--batch", "4");
        assertEquals(0, r.exit(), r.err());
        // Qwen3-30B-A3B: 128 experts of [768, 2048]; decode binds T = R = 4.
        assertTrue(r.out().contains("param \"model.layers.0.mlp.experts.*.gate_proj.weight\" : bf16[128,768,2048]"), r.out());
        assertTrue(r.out().contains("%tokens: i32[4],") && r.out().contains("%logits = matmul(%logit_inputs, %lm_head) : f32[4,151936]"));
        Run ops = run("ir", "ops");
        for (dev.moec.ir.Op op : dev.moec.ir.Op.values()) assertTrue(ops.out().contains(" = " + op.text() + "("), op.text());
    }

    @Test void inspectAConfigAlone() throws IOException {
        Path config = dir.resolve("deepseek-v3.json");
        try (var in = CliTest.class.getResourceAsStream("/fixtures/configs/deepseek-v3.json")) {
            Files.write(config, in.readAllBytes());
        }
        Run r = run("inspect", "--config", config.toString());
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.out().contains("parameters:  671.03 B total, 37.55 B active per token"), r.out());
        assertTrue(r.out().contains("MTP layer:"), r.out());
        Run mtp = run("ir", "dump", "--config", config.toString(), "--mtp");
        assertEquals(0, mtp.exit(), mtp.err());
        assertTrue(mtp.out().startsWith("graph @deepseek_v3_mtp(") && mtp.out().contains("%hidden: f32[T,7168],"), mtp.out().substring(0, 300));
    }

    @Test void irOptStatsAndCompileFlagsDriveThePassManager() throws IOException {
        Path mir = dir.resolve("rope.mir");
        Files.writeString(mir, """
                graph @g(
                    %q: f32[T,2,4],
                    %k: f32[T,1,4],
                    %positions: i32[T],
                ) {
                  %qr = rope(%q, %positions) {rotary_dim = 4, theta = 10000.0} : f32[T,2,4]
                  %kr = rope(%k, %positions) {rotary_dim = 4, theta = 10000.0} : f32[T,1,4]
                  return %qr, %kr
                }
                """);
        Run opt = run("ir", "opt", mir.toString(), "--passes=fuse-rope,cse,dce");
        assertEquals(0, opt.exit(), opt.err());
        assertEquals(1, opt.out().split("rope_cos_sin\\(", -1).length - 1, opt.out());
        assertEquals(2, opt.out().split("apply_rotary\\(", -1).length - 1, opt.out());
        Run all = run("ir", "opt", mir.toString(), "--passes=fuse-rope,cse", "--print-ir-after-all");
        assertTrue(all.out().contains("// ----- IR after fuse-rope -----") && all.out().contains("// ----- IR after cse -----"), all.out());
        Run after = run("ir", "opt", mir.toString(), "--passes=fuse-rope,cse,dce", "--print-ir-after=cse");
        assertTrue(after.out().contains("// ----- IR after cse -----") && !after.out().contains("IR after fuse-rope"), after.out());
        Run bad = run("ir", "opt", mir.toString(), "--passes=fuse-everything");
        assertEquals(1, bad.exit());
        assertTrue(bad.err().contains("unknown pass 'fuse-everything'"), bad.err());

        Run stats = run("ir", "stats", "--model", demo().toString(), "--passes", dev.moec.passes.PassManager.defaultPipeline("w8a8"));
        assertEquals(0, stats.exit(), stats.err());
        assertTrue(stats.out().matches("(?s).*fused_infer_attention\\s+4\\n.*") && stats.out().matches("(?s).*moe_gating_topk_softmax\\s+4\\n.*")
                && stats.out().matches("(?s).*grouped_quant_matmul\\s+8\\n.*"), stats.out());

        Path out = dir.resolve("w4a8");
        Run compile = run("compile", "--model", demo().toString(), "--quantization", "w4a8", "--kv-cache-dtype", "int8", "--cuda-graph-bs", "1", "-o", out.toString());
        assertEquals(0, compile.exit(), compile.err());
        Run gen = run("generate", "--model", out.toString(), "--prompt-ids", "542,448,1201", "--max-tokens", "4");
        assertEquals(0, gen.exit(), gen.err());
        assertTrue(gen.out().contains("token ids:  46,10,10,542"), gen.out());
        Run wrong = run("compile", "--model", demo().toString(), "--quantization", "fp4", "-o", dir.resolve("x").toString());
        assertEquals(1, wrong.exit());
        assertTrue(wrong.err().contains("unknown quantization 'fp4'"), wrong.err());
    }

    private static boolean onPath(String tool) {
        for (String d : System.getenv().getOrDefault("PATH", "").split(java.io.File.pathSeparator)) {
            if (Files.isExecutable(Path.of(d, tool))) return true;
        }
        return false;
    }

    @Test void everySubcommandHasHelp() {
        Run r = run("bench", "decode", "--help");
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.out().contains("--bandwidth") && r.out().contains("--no-capture") && r.out().contains("--quantization"), r.out());
        Run serve = run("serve", "--help");
        assertEquals(0, serve.exit(), serve.err());
        assertTrue(serve.out().contains("--cuda-graph-bs") && serve.out().contains("--threads"), serve.out());
    }

    @Test void benchReportsThroughputAndTheRoofline() {
        Run d = run("bench", "decode", "--model", demo().toString(), "--batch", "2", "--tokens", "2", "--prompt-len", "4",
                "--warmup", "1", "--warmup-seconds", "0.5", "--warmup-min-steps", "12", "--warmup-max-seconds", "1.5", "--threads", "1", "--bandwidth", "10", "--compute-peak", "20",
                "--bf16-dot-peak", "40");
        assertEquals(0, d.exit(), d.err());
        assertTrue(d.progress().matches("(?s).*warming up for 0.5 s and at least 12 decode steps, then while the JIT compiles \\(up to 1.5 s\\): untimed rounds of the prompt and 5 decode steps.*\\n\\[moec\\] warmed up: [1-9][0-9]* rounds?, [0-9]+ decode steps in [0-9.]+ s; the JIT compiled for [0-9]+ ms in the last round \\([0-9.]+ s\\).*"), d.progress());
        assertTrue(d.out().matches("(?s).*jit          [0-9]+ ms of compilation \\(summed over the compiler threads; [0-9.]+ s of steps\\) during the timed and profiled steps.*"), d.out());
        assertTrue(d.out().matches("(?s).*garbage      [0-9.]+ KB of heap allocated per timed step \\(all threads\\).*"), d.out());
        assertTrue(d.out().matches("(?s).*read ahead   [0-9.]+ MB per timed step: .*"), d.out());
        assertTrue(d.out().contains("batch 2 on decode_bs2"), d.out());
        assertTrue(d.out().contains("bandwidth    10.00 GB/s (given)"), d.out());
        assertTrue(d.out().matches("(?s).*roofline     [0-9.]+ ms per step; achieved [0-9.]+ % of it.*"), d.out());
        assertTrue(d.out().matches(dev.moec.executor.cpu.Bf16Tiles.DOT_AVAILABLE      // a greedy batch of 2: its lm_head on the dot tiles where they run
                ? "(?s).*compute      [0-9.]+ GMAC per step: [0-9.]+ ms \\([0-9.]+ GMAC of the greedy lm_head at the bf16 dot peak of 40.0 GMAC/s, given; the rest at the f32 FMA peak of 20.0 GMAC/s, given\\).*"
                : "(?s).*compute      [0-9.]+ GMAC per step: [0-9.]+ ms at the f32 FMA peak of 20.0 GMAC/s \\(given\\).*"), d.out());
        assertTrue(d.out().matches("(?s).*bound        (memory|compute): [0-9.]+ ms per step at best.*"), d.out());
        assertTrue(d.out().matches("(?s).*launch bound [0-9.]+ ms per step: launch by launch, .* \\(so at most [0-9.]+ % of the roofline\\); achieved [0-9.]+ % of it.*"), d.out());
        Run measured = run("bench", "decode", "--model", demo().toString(), "--tokens", "3", "--prompt-len", "4", "--warmup", "1",
                "--warmup-seconds", "0", "--threads", "2", "--compute-peak", "20");
        assertEquals(0, measured.exit(), measured.err());
        assertTrue(measured.out().matches("(?s).*bandwidth    [0-9.]+ GB/s \\(measured, 2 threads: the median of 3 reads of 256 MB, one after each timed step, [0-9.]+ to [0-9.]+\\).*"), measured.out());
        assertTrue(measured.out().matches("(?s).*roofline     [0-9.]+ ms per step; achieved [0-9.]+ % of it \\(the median over the steps.*"), measured.out());
        assertTrue(measured.out().matches("(?s).*launch bound [0-9.]+ ms per step: .*; achieved [0-9.]+ % of it.*"), measured.out());
        Run int8 = run("bench", "decode", "--model", demo().toString(), "--quantization", "w8a8", "--tokens", "2", "--prompt-len", "4", "--warmup", "1",
                "--warmup-seconds", "0", "--threads", "1", "--bandwidth", "10", "--compute-peak", "20", "--int8-peak", "80");
        assertEquals(0, int8.exit(), int8.err());
        assertTrue(int8.out().matches(dev.moec.executor.cpu.Vnni.AVAILABLE
                ? "(?s).*compute      [0-9.]+ GMAC per step: [0-9.]+ ms \\([0-9.]+ GMAC of int8 at the VNNI peak of 80.0 GMAC/s, given; the rest at the f32 FMA peak of 20.0 GMAC/s, given\\).*"
                : "(?s).*compute      [0-9.]+ GMAC per step: [0-9.]+ ms at the f32 FMA peak of 20.0 GMAC/s \\(given\\).*"), int8.out());
        Run p = run("bench", "prefill", "--model", demo().toString(), "--tokens", "16", "--runs", "1", "--threads", "1");
        assertEquals(0, p.exit(), p.err());
        assertTrue(p.out().contains("prefill      16 tokens on prefill"), p.out());
        assertTrue(p.out().matches("(?s).*compute      [0-9.]+ GMAC per prompt: .* \\(measured, 1 threads\\), at most [0-9]+ tokens/s.*"), p.out());
        Run bad = run("bench", "decode", "--model", demo().toString(), "--batch", "0");
        assertEquals(1, bad.exit());
        assertTrue(bad.err().contains("batch 0"), bad.err());
        Run badWarmup = run("bench", "decode", "--model", demo().toString(), "--warmup-min-steps", "-1");
        assertEquals(1, badWarmup.exit());
        assertTrue(badWarmup.err().contains("--warmup-min-steps must be 0 or more, not -1"), badWarmup.err());
    }

    @Test void benchComparesTwoModelsInOneProcess() {
        Run v = run("bench", "decode", "--model", demo().toString(), "--versus", demo().toString(), "--rounds", "3", "--batch", "1",
                "--tokens", "2", "--prompt-len", "4", "--warmup", "1", "--warmup-seconds", "0", "--threads", "1");
        assertEquals(0, v.exit(), v.err());
        assertTrue(v.progress().contains("decoding 3 rounds") && !v.progress().contains("warming up"), v.progress());
        assertTrue(v.out().contains("versus       batch 1, 1 threads, 3 rounds of 2 steps on each, alternating"), v.out());
        assertTrue(v.out().matches("(?s).*\\nA            [0-9.]+ ms per step \\(median of the rounds' medians; fastest round [0-9.]+\\).*"), v.out());
        assertTrue(v.out().matches("(?s).*\\nB            [0-9.]+ ms per step .*"), v.out());
        assertTrue(v.out().matches("(?s).*B / A        [0-9.]+ \\(median of the rounds' ratios; from [0-9.]+ to [0-9.]+\\).*"), v.out());
        Run bad = run("bench", "decode", "--model", demo().toString(), "--versus", demo().toString(), "--rounds", "0");
        assertEquals(1, bad.exit());
        assertTrue(bad.err().contains("--rounds must be at least 1"), bad.err());
    }

    @Test void compileWritesTheArtifactLayout() {
        Path out = dir.resolve("art");
        Run r = run("compile", "--model", demo().toString(), "--cuda-graph-bs", "1", "2", "4", "--kv-block-size", "16", "-o", out.toString());
        assertEquals(0, r.exit(), r.err());
        for (String f : new String[]{"manifest.json", "weights.bin", "graphs/prefill.json", "graphs/decode_bs1.json", "graphs/decode_bs2.json",
                "graphs/decode_bs4.json", "tokenizer/tokenizer.json"}) {
            assertTrue(Files.isRegularFile(out.resolve(f)), f);
        }
        assertFalse(Files.exists(out.resolve("graphs/decode_bs8.json")));
        // One block: 4 layers x (k, v) x 2 KV heads x head_dim 32 x 16 positions x 4 bytes = 32 KiB.
        Run inspect = run("inspect", out.toString());
        assertEquals(0, inspect.exit(), inspect.err());
        assertTrue(inspect.out().contains("kv cache:    paged, blocks of 16 positions, 32.0 KiB per block over all layers"), inspect.out());
        // A pool of two blocks (32 positions) cannot hold a 40-token run: the step fails, saying what to raise.
        Run full = run("generate", "--model", out.toString(), "--prompt-ids", "1,2,3", "--max-tokens", "37", "--kv-cache-blocks", "2");
        assertEquals(1, full.exit(), full.out());
        assertTrue(full.err().contains("KV cache is full") && full.err().contains("--kv-cache-blocks"), full.err());
        Run fits = run("generate", "--model", out.toString(), "--prompt-ids", "1,2,3", "--max-tokens", "29", "--kv-cache-blocks", "2");
        assertEquals(0, fits.exit(), fits.err());
    }

    /** Damaged copies of the demo checkpoint: each fails with the file, the tensor and the problem, never a stack trace. */
    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(strings = {"missing-tensor", "wrong-shape", "unknown-dtype", "header-beyond-file", "out-of-range", "truncated"})
    void damagedCheckpointsFailWithFileTensorAndProblem(String damage) throws IOException {
        Path copy = dir.resolve(damage);
        Files.createDirectories(copy);
        for (String f : new String[]{"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "model.safetensors"}) {
            Files.copy(demo().resolve(f), copy.resolve(f));
        }
        Path weights = copy.resolve("model.safetensors");
        byte[] b = Files.readAllBytes(weights);
        int headerLen = (int) ByteBuffer.wrap(b, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        String header = new String(b, 8, headerLen, StandardCharsets.UTF_8);
        String expectFile = "model.safetensors", expectTensor, expectProblem;
        switch (damage) {
            case "missing-tensor" -> {
                // Rename the final norm inside the header (same length): the model then lacks it.
                header = header.replace("\"model.norm.weight\"", "\"model.norx.weight\"");
                expectTensor = "model.norm.weight";
                expectProblem = "missing";
                expectFile = copy.getFileName().toString();
            }
            case "wrong-shape" -> {
                Files.writeString(copy.resolve("config.json"), Files.readString(copy.resolve("config.json")).replace("\"vocab_size\": 8192", "\"vocab_size\": 8000"));
                expectTensor = "model.embed_tokens.weight";
                expectProblem = "has shape [8192,192] but config.json implies [8000,192]";
            }
            case "unknown-dtype" -> {
                int at = header.indexOf("\"BF16\"");
                header = header.substring(0, at) + "\"BF17\"" + header.substring(at + 6);
                expectTensor = "";
                expectProblem = "unknown dtype 'BF17'";
            }
            case "header-beyond-file" -> {
                ByteBuffer.wrap(b, 0, 8).order(ByteOrder.LITTLE_ENDIAN).putLong(1L << 40);
                expectTensor = "";
                expectProblem = "header length 1099511627776 is beyond the file";
            }
            case "out-of-range" -> {
                b = java.util.Arrays.copyOf(b, b.length - 1000);        // the last tensor's bytes now end past the data
                expectTensor = "";
                expectProblem = "out of range";
            }
            default -> {
                b = java.util.Arrays.copyOf(b, 8 + headerLen / 2);     // cut inside the header
                expectTensor = "";
                expectProblem = "header length";
            }
        }
        if (damage.equals("missing-tensor") || damage.equals("unknown-dtype")) {
            byte[] h = header.getBytes(StandardCharsets.UTF_8);
            System.arraycopy(h, 0, b, 8, h.length);
        }
        Files.write(weights, b);
        Run r = run("generate", "--model", copy.toString(), "--prompt-ids", "1", "--max-tokens", "1");
        assertEquals(1, r.exit(), r.err());
        assertTrue(r.err().startsWith("moec: "), r.err());
        assertTrue(r.err().contains(expectFile) && r.err().contains(expectTensor) && r.err().contains(expectProblem), damage + ": " + r.err());
        assertFalse(r.err().contains("\tat "), r.err());
    }

    @Test void aBrokenCheckpointIsAMessageNotAStackTrace() throws IOException {
        Files.writeString(dir.resolve("config.json"), "{\"model_type\": \"qwen3_moe\"}");
        Files.write(dir.resolve("model.safetensors"), new byte[]{1, 2, 3});
        Run r = run("generate", "--model", dir.toString(), "--prompt-ids", "1", "--max-tokens", "1");
        assertEquals(1, r.exit());
        assertTrue(r.err().startsWith("moec: ") && r.err().contains("model.safetensors"), r.err());
        assertFalse(r.err().contains("\tat "), r.err());
    }
}
