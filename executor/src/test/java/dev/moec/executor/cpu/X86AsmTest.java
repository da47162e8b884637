package dev.moec.executor.cpu;

import org.junit.jupiter.api.Test;

import java.util.HexFormat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** The machine-code tiles' encoder: each instruction as GNU as encodes it; what it cannot encode refused. */
class X86AsmTest {
    /**
     * Each instruction the tiles use (VNNI's, then the bf16 tiles', then the bf16 dot tiles'), against GNU as 2.40's encoding of it (registers on both sides of zmm8
     * and zmm16, so every EVEX register-extension bit is exercised). Memory operands keep a 32-bit
     * displacement where as would compress it into 8 bits; objdump reads both alike.
     */
    @Test
    void instructionsAreEncodedAsAnAssemblerEncodesThem() {
        assertEncodes("62f17d48efc0", a -> a.vpxord(0));                                         // vpxord zmm0, zmm0, zmm0
        assertEncodes("62513d48efc0", a -> a.vpxord(8));                                         // zmm8 (EVEX.R, B)
        assertEncodes("62a17540efc9", a -> a.vpxord(17));                                        // zmm17 (EVEX.R', V', X)
        assertEncodes("62617e486fa600000000", a -> a.vmovdqu32Load(28, X86Asm.RSI, 0));       // vmovdqu32 zmm28, [rsi]
        assertEncodes("62617e486fbec0000000", a -> a.vmovdqu32Load(31, X86Asm.RSI, 0xC0));
        assertEncodes("62f17e487f8900010000", a -> a.vmovdqu32Store(X86Asm.RCX, 0x100, 1));   // vmovdqu32 [rcx + 0x100], zmm1
        assertEncodes("62f21d50508700000000", a -> a.vpdpbusdBroadcast(0, 28, X86Asm.RDI, 0)); // vpdpbusd zmm0, zmm28, [rdi]{1to16}
        assertEncodes("62f20550509f00040000", a -> a.vpdpbusdBroadcast(3, 31, X86Asm.RDI, 0x400));
        assertEncodes("62721d5050af00040000", a -> a.vpdpbusdBroadcast(13, 28, X86Asm.RDI, 0x400));
        assertEncodes("4881c600010000", a -> a.addImm(X86Asm.RSI, 256));
        assertEncodes("48ffca", a -> a.dec(X86Asm.RDX));
        assertEncodes("49ffc8", a -> a.dec(X86Asm.R8));
        assertEncodes("4881c100070000", a -> a.addImm(X86Asm.RCX, 0x700));
        assertEncodes("4989f9", a -> a.mov(X86Asm.R9, X86Asm.RDI));                          // mov r9, rdi
        assertEncodes("4989d2", a -> a.mov(X86Asm.R10, X86Asm.RDX));
        assertEncodes("4c89cf", a -> a.mov(X86Asm.RDI, X86Asm.R9));
        assertEncodes("4c89d2", a -> a.mov(X86Asm.RDX, X86Asm.R10));
        assertEncodes("c5f877c3", a -> { a.vzeroupper(); a.ret(); });
        assertEncodes("4801f7", a -> a.add(X86Asm.RDI, X86Asm.RSI));                          // add rdi, rsi
        assertEncodes("4d01c8", a -> a.add(X86Asm.R8, X86Asm.R9));                            // add r8, r9
        assertEncodes("49c1e820", a -> a.shrImm(X86Asm.R8, 32));                              // shr r8, 32
        assertEncodes("89d2", a -> a.mov32(X86Asm.RDX, X86Asm.RDX));                          // mov edx, edx
        assertEncodes("4801f74d01c84889d64889ca4c89c14989d049c1e82089d2", X86Asm::tileArguments);
        assertEncodes("62721550b8af00400000", a -> a.vfmadd231psBroadcast(13, 29, X86Asm.RDI, 0x4000)); // vfmadd231ps zmm13, zmm29, [rdi + 0x4000]{1to16}
        assertEncodes("62e21d50b88f00100000", a -> a.vfmadd231psBroadcast(17, 28, X86Asm.RDI, 0x1000));
        assertEncodes("62911d4072f610", a -> a.vpslldImm(28, 30, 16));        // vpslld zmm28, zmm30, 16
        assertEncodes("6291054072f710", a -> a.vpslldImm(31, 31, 16));
        assertEncodes("62f13d4872f110", a -> a.vpslldImm(8, 1, 16));
        assertEncodes("62010d40dbef", a -> a.vpandd(29, 30, 31));                                  // vpandd zmm29, zmm30, zmm31
        assertEncodes("62b13d48dbc9", a -> a.vpandd(1, 8, 17));
        assertEncodes("6203054025ffff", a -> a.allOnes(31));                                       // vpternlogd zmm31, zmm31, zmm31, 0xff
        assertEncodes("6253354825c9ff", a -> a.allOnes(9));
        assertEncodes("0f188e00040000", a -> a.prefetcht0(X86Asm.RSI, 0x400));                    // prefetcht0 [rsi + 0x400]
        assertEncodes("62f21e50528700040000", a -> a.vdpbf16psBroadcast(0, 28, X86Asm.RDI, 0x400)); // vdpbf16ps zmm0, zmm28, [rdi + 0x400]{1to16}
        assertEncodes("62e2165052be34120000", a -> a.vdpbf16psBroadcast(23, 29, X86Asm.RSI, 0x1234));
        assertEncodes("62727658528f00400000", a -> a.vdpbf16psBroadcast(9, 1, X86Asm.RDI, 0x4000));
        assertEncodes("62010d4061e3", a -> a.vpunpcklwd(28, 30, 27));                            // vpunpcklwd zmm28, zmm30, zmm27
        assertEncodes("62010d4069eb", a -> a.vpunpckhwd(29, 30, 27));
        assertEncodes("62716d4861c9", a -> a.vpunpcklwd(9, 2, 1));
        assertEncodes("62d1654869e4", a -> a.vpunpckhwd(4, 3, 12));
    }

    @Test
    void aLoopJumpsBackToItsStart() {
        X86Asm a = new X86Asm();
        a.dec(X86Asm.RDX);
        a.jnz(0);
        assertEquals("48ffca0f85f7ffffff", HexFormat.of().formatHex(a.bytes()));               // jnz -9: back over itself and the dec
    }

    @Test
    void operandsOutsideTheEncoderAreRefused() {
        assertThrows(IllegalArgumentException.class, () -> new X86Asm().vpxord(32));
        assertThrows(IllegalArgumentException.class, () -> new X86Asm().vmovdqu32Load(0, 4, 0));   // rsp needs a SIB byte
        assertThrows(IllegalArgumentException.class, () -> new X86Asm().vpandd(0, 1, 32));
        assertThrows(IllegalArgumentException.class, () -> new X86Asm().prefetcht0(X86Asm.R8, 0));
    }

    private static void assertEncodes(String hex, java.util.function.Consumer<X86Asm> emit) {
        X86Asm a = new X86Asm();
        emit.accept(a);
        assertEquals(hex, HexFormat.of().formatHex(a.bytes()));
    }
}
