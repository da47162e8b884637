package dev.moec.executor.cpu;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.HexFormat;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** The VNNI int8 tiles: their instructions encoded as an assembler encodes them, and their sums exact against scalar int arithmetic. */
class VnniTest {
    /**
     * Each instruction the tiles use, against GNU as 2.40's encoding of it (registers on both sides of zmm8
     * and zmm16, so every EVEX register-extension bit is exercised). Memory operands keep a 32-bit
     * displacement where as would compress it into 8 bits; objdump reads both alike.
     */
    @Test
    void instructionsAreEncodedAsAnAssemblerEncodesThem() {
        assertEncodes("62f17d48efc0", a -> a.vpxord(0));                                         // vpxord zmm0, zmm0, zmm0
        assertEncodes("62513d48efc0", a -> a.vpxord(8));                                         // zmm8 (EVEX.R, B)
        assertEncodes("62a17540efc9", a -> a.vpxord(17));                                        // zmm17 (EVEX.R', V', X)
        assertEncodes("62617e486fa600000000", a -> a.vmovdqu32Load(28, Vnni.Asm.RSI, 0));       // vmovdqu32 zmm28, [rsi]
        assertEncodes("62617e486fbec0000000", a -> a.vmovdqu32Load(31, Vnni.Asm.RSI, 0xC0));
        assertEncodes("62f17e487f8900010000", a -> a.vmovdqu32Store(Vnni.Asm.RCX, 0x100, 1));   // vmovdqu32 [rcx + 0x100], zmm1
        assertEncodes("62f21d50508700000000", a -> a.vpdpbusdBroadcast(0, 28, Vnni.Asm.RDI, 0)); // vpdpbusd zmm0, zmm28, [rdi]{1to16}
        assertEncodes("62f20550509f00040000", a -> a.vpdpbusdBroadcast(3, 31, Vnni.Asm.RDI, 0x400));
        assertEncodes("62721d5050af00040000", a -> a.vpdpbusdBroadcast(13, 28, Vnni.Asm.RDI, 0x400));
        assertEncodes("4881c600010000", a -> a.addImm(Vnni.Asm.RSI, 256));
        assertEncodes("48ffca", a -> a.dec(Vnni.Asm.RDX));
        assertEncodes("49ffc8", a -> a.dec(Vnni.Asm.R8));
        assertEncodes("4881c100070000", a -> a.addImm(Vnni.Asm.RCX, 0x700));
        assertEncodes("4989f9", a -> a.mov(Vnni.Asm.R9, Vnni.Asm.RDI));                          // mov r9, rdi
        assertEncodes("4989d2", a -> a.mov(Vnni.Asm.R10, Vnni.Asm.RDX));
        assertEncodes("4c89cf", a -> a.mov(Vnni.Asm.RDI, Vnni.Asm.R9));
        assertEncodes("4c89d2", a -> a.mov(Vnni.Asm.RDX, Vnni.Asm.R10));
        assertEncodes("c5f877c3", a -> { a.vzeroupper(); a.ret(); });
    }

    @Test
    void aLoopJumpsBackToItsStart() {
        Vnni.Asm a = new Vnni.Asm();
        a.dec(Vnni.Asm.RDX);
        a.jnz(0);
        assertEquals("48ffca0f85f7ffffff", HexFormat.of().formatHex(a.bytes()));               // jnz -9: back over itself and the dec
    }

    @Test
    void tilesAreRefusedOutsideTheirRegisters() {
        assertThrows(IllegalArgumentException.class, () -> Vnni.code(0, 64));
        assertThrows(IllegalArgumentException.class, () -> Vnni.code(Vnni.MAX_ROWS + 1, 64));
        assertThrows(IllegalArgumentException.class, () -> new Vnni.Asm().vpxord(32));
        assertThrows(IllegalArgumentException.class, () -> new Vnni.Asm().vmovdqu32Load(0, 4, 0));   // rsp needs a SIB byte
    }

    /**
     * Rows of int8 activations (the extremes -128 and 127 among them) times int8 weights in VNNI panels,
     * against the scalar int32 sums: one row to more than a tile's (several passes over a panel), k a
     * whole number of groups and not (padded columns), a partial last panel.
     */
    @ParameterizedTest(name = "{0} rows, k {1}")
    @CsvSource({"1, 4", "1, 1030", "3, 36", "7, 256", "8, 256", "15, 6", "22, 2064"})
    void tilesSumExactly(int rows, int k) {
        assumeTrue(Vnni.AVAILABLE, "no VNNI tiles on this machine");
        int n = 2 * Vnni.WIDTH + 5, stride = Vnni.paddedColumns(k) + 8;
        SplittableRandom r = new SplittableRandom(rows * 31L + k);
        byte[][] w = new byte[n][k];
        for (byte[] row : w) for (int c = 0; c < k; c++) row[c] = (byte) (r.nextInt(5) == 0 ? -128 : r.nextInt(-128, 128));
        byte[] x = new byte[rows * stride];
        int[] sums = new int[rows];
        for (int i = 0; i < rows; i++) {
            for (int c = 0; c < k; c++) {
                x[i * stride + c] = (byte) (r.nextInt(4) == 0 ? -128 : r.nextInt(4) == 0 ? 127 : r.nextInt(-128, 128));
                sums[i] += x[i * stride + c];
            }
        }
        try (Arena arena = Arena.ofConfined()) {
            int panels = Math.ceilDiv(n, Vnni.WIDTH);
            MemorySegment seg = arena.allocate(panels * Vnni.panelBytes(k), 64);
            seg.fill(Simd.biased((byte) 0));
            for (int j = 0; j < n; j++) {
                for (int c = 0; c < k; c++) seg.set(ValueLayout.JAVA_BYTE, (j / Vnni.WIDTH) * Vnni.panelBytes(k) + Vnni.slot(j % Vnni.WIDTH, c), Simd.biased(w[j][c]));
            }
            int m = n - 3, first = rows > 1 ? 1 : 0;                               // channels from a panel's start; rows from the second
            int[] acc = new int[(rows - first) * m], want = new int[acc.length];
            Vnni.rows(x, stride, sums, first, rows, seg, 0, k, m, acc);
            for (int i = first; i < rows; i++) {
                for (int j = 0; j < m; j++) {
                    int s = 0;
                    for (int c = 0; c < k; c++) s += w[j][c] * x[i * stride + c];
                    want[(i - first) * m + j] = s;
                }
            }
            assertArrayEquals(want, acc);
        }
    }

    private static void assertEncodes(String hex, java.util.function.Consumer<Vnni.Asm> emit) {
        Vnni.Asm a = new Vnni.Asm();
        emit.accept(a);
        assertEquals(hex, HexFormat.of().formatHex(a.bytes()));
    }
}
