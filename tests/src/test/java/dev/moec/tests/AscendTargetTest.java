package dev.moec.tests;

import dev.moec.backend.Contracts;
import dev.moec.backend.KernelGraph;
import dev.moec.backend.Lowering;
import dev.moec.backend.Nz;
import dev.moec.backend.Target;
import dev.moec.capture.Artifact;
import dev.moec.capture.Manifest;
import dev.moec.cli.ModelCompiler;
import dev.moec.executor.CompiledModel;
import dev.moec.ir.DType;
import dev.moec.ir.TensorType;
import dev.moec.ir.text.IrParser;
import dev.moec.passes.PassManager;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** --target ascend: the same graph, NZ weights where the kernels read them, the operator contracts checked. */
class AscendTargetTest {
    @TempDir Path dir;

    @Test void nzIsAPermutationOfTilesPaddedWithZeros() {
        Random r = new Random(1);
        for (DType d : List.of(DType.BF16, DType.I8, DType.I4)) {
            int experts = 2, rows = 40, cols = 70;
            byte[] nd = new byte[(int) d.bytes((long) experts * rows * cols)];
            r.nextBytes(nd);
            byte[] nz = Nz.pack(nd, d, experts, rows, cols);
            assertEquals(Nz.bytes(d, experts, rows, cols), nz.length);
            assertArrayEquals(nd, Nz.unpack(nz, d, experts, rows, cols), d + ": ND -> NZ -> ND");
        }
        // bf16 element (r, c) of a 32 x 32 matrix sits at [c / 16][r][c % 16]: (1, 17) -> tile column 1, row 1, column 1.
        byte[] nd = new byte[32 * 32 * 2];
        nd[(1 * 32 + 17) * 2] = 42;
        byte[] nz = Nz.pack(nd, DType.BF16, 1, 32, 32);
        assertEquals(42, nz[((1 * 32 + 1) * 16 + 1) * 2]);
    }

    @Test void anAscendArtifactStoresNzWeightsAndReportsTheMoeFallback() throws Exception {
        Path cpu = dir.resolve("cpu"), npu = dir.resolve("ascend");
        String pipeline = PassManager.defaultPipeline("w8a8");
        ModelCompiler.compile(Fixtures.demoModel(), cpu, new ModelCompiler.Options(List.of(1), pipeline, Target.CPU), l -> {});
        ModelCompiler.compile(Fixtures.demoModel(), npu, new ModelCompiler.Options(List.of(1), pipeline, Target.ASCEND), l -> {});
        try (Artifact a = Artifact.open(cpu); Artifact b = Artifact.open(npu)) {
            assertEquals(a.prefillGraph().launches(), b.prefillGraph().launches(), "the same kernels on both targets");
            assertTrue(a.manifest().report().isEmpty());
            assertTrue(b.manifest().report().stream().anyMatch(l -> l.contains("all-gather MoE") && l.contains("hidden 192 outside [1024, 8192]")),
                    b.manifest().report().toString());
            int nz = 0;
            for (Manifest.TensorEntry e : b.manifest().weights().tensors()) {
                if (!"nz".equals(e.layout())) continue;
                nz++;
                TensorType t = TensorType.parse(e.type());
                long[] d = t.shape().sizes();
                byte[] packed = b.raw(e.name()).toArray(ValueLayout.JAVA_BYTE);
                byte[] nd = a.raw(e.name()).toArray(ValueLayout.JAVA_BYTE);
                assertArrayEquals(nd, Nz.unpack(packed, t.dtype(), d.length == 3 ? d[0] : 1, (int) d[d.length - 2], (int) d[d.length - 1]), e.name());
            }
            assertEquals(16 + 8, nz, "the int8 Linears (q, k, v, o in 4 layers) and the expert stacks (gate_up, down in 4 layers)");
            var e = assertThrows(IllegalArgumentException.class, () -> new CompiledModel(b, 1, 16, 1));
            assertTrue(e.getMessage().contains("--target ascend"), e.getMessage());
        }
    }

    static final String FIA_OK = """
            graph @g(
                %q: f32[T,4,8],
                %kc: f32[S,L,2,8],
                %vc: f32[S,L,2,8],
                %slots: i32[T],
                %positions: i32[T],
            ) {
              %a = fused_infer_attention(%q, %kc, %vc, %slots, %positions) {input_layout = "TND", num_heads = 4, num_kv_heads = 2, scale = 0.35355339059327373, sparse_mode = 3} : f32[T,4,8]
              return %a
            }
            """;

    @Test void aContractWithoutFallbackFailsNamingOpAttributeAndRule() {
        KernelGraph g = Lowering.lower(IrParser.parse(FIA_OK.replace("scale = 0.35355339059327373", "scale = 1.0")), Target.ASCEND);
        var e = assertThrows(Contracts.ContractViolation.class, () -> Contracts.check(g, 8));
        assertTrue(e.getMessage().startsWith("aclnnFusedInferAttentionScoreV3 (fused_infer_attention): scale = 1.0 violates: the softmax scale must be passed explicitly"),
                e.getMessage());
        KernelGraph wide = Lowering.lower(IrParser.parse("""
                graph @g(
                    %xq: i8[T,70000],
                    %xs: f32[T],
                ) {
                  %w = param "w" : i8[8,70000]
                  %s = param "s" : f32[8]
                  %y = quant_matmul(%xq, %xs, %w, %s) : f32[T,8]
                  return %y
                }
                """), Target.ASCEND);
        var k = assertThrows(Contracts.ContractViolation.class, () -> Contracts.check(wide, 8));
        assertTrue(k.getMessage().contains("K = 70000 violates: the last dimension of x1 and x2 <= 65535"), k.getMessage());
        var b = assertThrows(Contracts.ContractViolation.class, () -> Contracts.check(Lowering.lower(IrParser.parse(FIA_OK), Target.ASCEND), 8, 64));
        assertTrue(b.getMessage().contains("block_size = 64 violates: with queries longer than 1 (prefill) the KV block size is a multiple of 128 in [128, 512]"), b.getMessage());
        assertEquals(List.of(), Contracts.check(Lowering.lower(IrParser.parse(FIA_OK), Target.ASCEND), 8, 256));
    }
}
