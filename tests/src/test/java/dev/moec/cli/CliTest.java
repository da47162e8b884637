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

    record Run(int exit, String out, String err) {}

    private static Run run(String... args) {
        PrintStream saved = System.out;
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        StringWriter err = new StringWriter();
        try {
            System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
            CommandLine cl = Moec.commandLine();
            cl.setErr(new PrintWriter(err, true));
            int exit = cl.execute(args);
            return new Run(exit, out.toString(StandardCharsets.UTF_8), err.toString());
        } finally {
            System.setOut(saved);
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

    @Test void compileWritesTheArtifactLayout() {
        Path out = dir.resolve("art");
        Run r = run("compile", "--model", demo().toString(), "--cuda-graph-bs", "1", "2", "4", "-o", out.toString());
        assertEquals(0, r.exit(), r.err());
        for (String f : new String[]{"manifest.json", "weights.bin", "graphs/prefill.json", "graphs/decode_bs1.json", "graphs/decode_bs2.json",
                "graphs/decode_bs4.json", "tokenizer/tokenizer.json"}) {
            assertTrue(Files.isRegularFile(out.resolve(f)), f);
        }
        assertFalse(Files.exists(out.resolve("graphs/decode_bs8.json")));
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
