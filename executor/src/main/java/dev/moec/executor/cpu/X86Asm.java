package dev.moec.executor.cpu;

import java.io.IOException;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.Linker;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Locale;

/**
 * The few x86-64 instructions the executor's machine-code tiles need ({@link Vnni}, {@link Bf16Tiles}),
 * encoded (Intel SDM vol. 2, EVEX for the AVX-512 ones). Memory operands are a base register below r8
 * (not rsp) plus a 32-bit displacement, which EVEX leaves unscaled.
 */
final class X86Asm {
    static final int RCX = 1, RDX = 2, RSI = 6, RDI = 7, R8 = 8, R9 = 9, R10 = 10;
    private byte[] out = new byte[256];
    private int size;

    int size() { return size; }

    byte[] bytes() { return Arrays.copyOf(out, size); }

    private void emit(int... bytes) {
        for (int b : bytes) {
            if (size == out.length) out = Arrays.copyOf(out, 2 * size);
            out[size++] = (byte) b;
        }
    }

    private void int32(int v) { emit(v, v >>> 8, v >>> 16, v >>> 24); }

    /**
     * Whether machine-code tiles can run here: Linux on x86-64 (System V calls, mmap), a JVM that runs
     * 512-bit vectors (so the OS keeps the zmm state), {@code /proc/cpuinfo} listing every one of
     * {@code flags}, {@code -Dproperty} not false, and {@code link} (mapping and linking one tile) going
     * through, which it does only with native access granted.
     */
    static boolean runsHere(String property, Runnable link, String... flags) {
        if (!Boolean.parseBoolean(System.getProperty(property, "true"))) return false;
        String arch = System.getProperty("os.arch", ""), os = System.getProperty("os.name", "").toLowerCase(Locale.ROOT);
        if (!os.startsWith("linux") || !(arch.equals("amd64") || arch.equals("x86_64"))) return false;
        if (Simd.L != 16) return false;                                       // the JVM keeps to narrower vectors (UseAVX < 3)
        try {
            String cpu = Files.readAllLines(Path.of("/proc/cpuinfo")).stream()
                    .filter(l -> l.startsWith("flags")).findFirst().orElse("") + " ";
            for (String f : flags) if (!cpu.contains(" " + f + " ")) return false;
            link.run();
            return true;
        } catch (IOException | RuntimeException | LinkageError e) {
            return false;
        }
    }

    /**
     * The tiles' signature, {@code void tile(x, long xOffset, long w, long counts, out, long outOffset)}
     * (System V: rdi, rsi, rdx, rcx, r8, r9): x and out heap arrays (as segments a caller keeps), with byte
     * offsets into them; w the weights' native address; counts the column count in its low half and the
     * panel count in its high half. A call then allocates nothing: a slice of a segment, or a segment of
     * native memory, is an object, and a decode step's several thousand tile calls made most of its
     * garbage (docs/performance-log.md, twelfth session). {@link #tileArguments} turns them into the registers the tiles'
     * bodies use.
     */
    private static final FunctionDescriptor TILE = FunctionDescriptor.ofVoid(ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG,
            ValueLayout.ADDRESS, ValueLayout.JAVA_LONG);

    /** The heap array {@code array} (byte[], int[] or float[]) as a segment, kept by the calling thread for its next calls. */
    static MemorySegment heap(Object array) { return HeapSegments.OF_THREAD.get().of(array); }

    /**
     * A thread's segments over the last four heap arrays it passed to a tile: x and out of a call, made
     * once per array. They keep those four arrays reachable until newer ones take their places.
     */
    private static final class HeapSegments {
        private static final ThreadLocal<HeapSegments> OF_THREAD = ThreadLocal.withInitial(HeapSegments::new);
        private final Object[] arrays = new Object[4];
        private final MemorySegment[] segments = new MemorySegment[4];
        private int next;

        MemorySegment of(Object array) {
            for (int i = 0; i < arrays.length; i++) if (arrays[i] == array) return segments[i];
            MemorySegment s = switch (array) {
                case byte[] b -> MemorySegment.ofArray(b);
                case int[] i -> MemorySegment.ofArray(i);
                case float[] f -> MemorySegment.ofArray(f);
                default -> throw new IllegalArgumentException("a tile takes byte[], int[] or float[], not " + array.getClass());
            };
            arrays[next] = array;
            segments[next] = s;
            next = (next + 1) % arrays.length;
            return s;
        }
    }

    /**
     * The native address of byte {@code offset} of {@code weights}, where a tile reads {@code bytes} bytes:
     * refused unless those bytes lie in {@code weights}, which must be off the heap (the weight panels are).
     */
    static long address(MemorySegment weights, long offset, long bytes) {
        if (!weights.isNative()) throw new IllegalArgumentException("a tile reads its weights from native memory, not " + weights);
        java.util.Objects.checkFromIndexSize(offset, bytes, weights.byteSize());
        return weights.address() + offset;
    }

    /** The column and panel counts of a tile call as its one {@code counts} argument. */
    static long counts(long columns, long panels) {
        if (columns < 0 || columns > 0xFFFF_FFFFL || panels < 0 || panels > 0xFFFF_FFFFL) throw new IllegalArgumentException(columns + " columns, " + panels + " panels");
        return panels << 32 | columns;
    }

    /**
     * A tile's first instructions: from the call's arguments ({@link #TILE}) to rdi = x + xOffset,
     * rsi = w, rdx = the column count, rcx = out + outOffset, r8 = the panel count.
     */
    void tileArguments() {
        add(RDI, RSI);
        add(R8, R9);
        mov(RSI, RDX);
        mov(RDX, RCX);
        mov(RCX, R8);
        mov(R8, RDX);
        shrImm(R8, 32);
        mov32(RDX, RDX);
    }

    /**
     * Linked tiles by a key (a tile's rows and stride, say), generated by {@code code} on first use and
     * found again without allocating: a decode step asks for a tile thousands of times, and a map keyed
     * by a boxed long with a capturing lambda left two objects of garbage each time.
     */
    static final class Tiles {
        private record Entry(long key, MethodHandle tile) {}

        private final java.util.function.LongFunction<byte[]> code;
        private volatile Entry[] entries = new Entry[0];

        Tiles(java.util.function.LongFunction<byte[]> code) { this.code = code; }

        MethodHandle get(long key) {
            for (Entry e : entries) if (e.key == key) return e.tile;
            return add(key);
        }

        private synchronized MethodHandle add(long key) {
            for (Entry e : entries) if (e.key == key) return e.tile;
            MethodHandle tile = link(code.apply(key));
            Entry[] grown = java.util.Arrays.copyOf(entries, entries.length + 1);
            grown[entries.length] = new Entry(key, tile);
            entries = grown;
            return tile;
        }
    }

    /**
     * A tile's machine code mapped executable ({@link PageMemory#executable}) and linked as a critical
     * downcall of the tiles' signature: no thread transition, heap arrays passed in place.
     */
    static MethodHandle link(byte[] code) {
        return Linker.nativeLinker().downcallHandle(PageMemory.executable(code), TILE, Linker.Option.critical(true));
    }

    /** EVEX prefix of a 512-bit op: map 1 (0F), 2 (0F38), 3 (0F3A); pp 1 (66), 2 (F3); W0; no masking. rm: a zmm, or -1 for memory. */
    private void evex(int map, int pp, int reg, int vvvv, int rm, boolean broadcast) {
        int x = rm < 0 ? 0 : (rm >> 4) & 1, b = rm < 0 ? 0 : (rm >> 3) & 1;
        emit(0x62,
                (~reg >> 3 & 1) << 7 | (~x & 1) << 6 | (~b & 1) << 5 | (~reg >> 4 & 1) << 4 | map,
                (~vvvv & 0xF) << 3 | 0x4 | pp,
                0b10 << 5 | (broadcast ? 0x10 : 0) | (~vvvv >> 4 & 1) << 3);
    }

    private void memory(int reg, int base, int disp) {
        if (base >= 8 || base == 4) throw new IllegalArgumentException("base register " + base);
        emit(0x80 | (reg & 7) << 3 | base);                          // mod 10: [base + disp32]
        int32(disp);
    }

    private static void zmm(int... z) {
        for (int r : z) if (r < 0 || r > 31) throw new IllegalArgumentException("zmm" + r);
    }

    /** vpxord zmm_z, zmm_z, zmm_z. */
    void vpxord(int z) {
        zmm(z);
        evex(1, 1, z, z, z, false);
        emit(0xEF, 0xC0 | (z & 7) << 3 | (z & 7));
    }

    /** vmovdqu32 zmm_z, [base + disp]. */
    void vmovdqu32Load(int z, int base, int disp) {
        zmm(z);
        evex(1, 2, z, 0, -1, false);
        emit(0x6F);
        memory(z, base, disp);
    }

    /** vmovdqu32 [base + disp], zmm_z. */
    void vmovdqu32Store(int base, int disp, int z) {
        zmm(z);
        evex(1, 2, z, 0, -1, false);
        emit(0x7F);
        memory(z, base, disp);
    }

    /** vpdpbusd zmm_acc, zmm_u8, dword [base + disp]{1to16}: acc += each lane's four u8 x s8 products. */
    void vpdpbusdBroadcast(int acc, int u8, int base, int disp) {
        zmm(acc, u8);
        evex(2, 1, acc, u8, -1, true);
        emit(0x50);
        memory(acc, base, disp);
    }

    /** vfmadd231ps zmm_acc, zmm_w, dword [base + disp]{1to16}: acc += w * the float there, fused (one rounding). */
    void vfmadd231psBroadcast(int acc, int w, int base, int disp) {
        zmm(acc, w);
        evex(2, 1, acc, w, -1, true);
        emit(0xB8);
        memory(acc, base, disp);
    }

    /**
     * vdpbf16ps zmm_acc, zmm_w, dword [base + disp]{1to16}: each lane of acc plus the products of its two
     * bf16 in w with the two bf16 of the dword there (low with low, high with high); inputs below the
     * smallest normal read as zero, and the result is rounded to nearest even and flushed to zero.
     */
    void vdpbf16psBroadcast(int acc, int w, int base, int disp) {
        zmm(acc, w);
        evex(2, 2, acc, w, -1, true);
        emit(0x52);
        memory(acc, base, disp);
    }

    /** vpunpcklwd zmm_dst, zmm_a, zmm_b: in each 128-bit lane, the low four words of a and of b interleaved, a's first. */
    void vpunpcklwd(int dst, int a, int b) {
        zmm(dst, a, b);
        evex(1, 1, dst, a, b, false);
        emit(0x61, 0xC0 | (dst & 7) << 3 | (b & 7));
    }

    /** vpunpckhwd zmm_dst, zmm_a, zmm_b: as {@link #vpunpcklwd}, the high four words of each lane. */
    void vpunpckhwd(int dst, int a, int b) {
        zmm(dst, a, b);
        evex(1, 1, dst, a, b, false);
        emit(0x69, 0xC0 | (dst & 7) << 3 | (b & 7));
    }

    /** vpslld zmm_dst, zmm_src, imm8: each int32 lane shifted left. */
    void vpslldImm(int dst, int src, int imm) {
        zmm(dst, src);
        evex(1, 1, 6, dst, src, false);                                  // ModRM.reg 6 selects the shift; vvvv is the destination
        emit(0x72, 0xC0 | 6 << 3 | (src & 7), imm);
    }

    /** vpandd zmm_dst, zmm_a, zmm_b. */
    void vpandd(int dst, int a, int b) {
        zmm(dst, a, b);
        evex(1, 1, dst, a, b, false);
        emit(0xDB, 0xC0 | (dst & 7) << 3 | (b & 7));
    }

    /** vpternlogd zmm_z, zmm_z, zmm_z, 0xFF: every bit set. */
    void allOnes(int z) {
        zmm(z);
        evex(3, 1, z, z, z, false);
        emit(0x25, 0xC0 | (z & 7) << 3 | (z & 7), 0xFF);
    }

    /** prefetcht0 [base + disp]: the line into every cache level, without waiting for it (never faults). */
    void prefetcht0(int base, int disp) {
        emit(0x0F, 0x18);
        memory(1, base, disp);                                          // ModRM.reg 1 selects T0
    }

    /** add r64, imm32. */
    void addImm(int reg, int imm) { emit(0x48 | reg >> 3, 0x81, 0xC0 | (reg & 7)); int32(imm); }

    /** mov r64 dst, r64 src. */
    void mov(int dst, int src) { registers(0x89, dst, src); }

    /** mov r32 dst, r32 src: the low half, the high half of dst cleared. */
    void mov32(int dst, int src) {
        if (dst >= 8 || src >= 8) emit(0x40 | (src >> 3) << 2 | dst >> 3);
        emit(0x89, 0xC0 | (src & 7) << 3 | (dst & 7));
    }

    /** add r64 dst, r64 src. */
    void add(int dst, int src) { registers(0x01, dst, src); }

    /** A 64-bit instruction {@code opcode} from register src to register dst: REX.W (R, B extending them), opcode, ModRM. */
    private void registers(int opcode, int dst, int src) { emit(0x48 | (src >> 3) << 2 | dst >> 3, opcode, 0xC0 | (src & 7) << 3 | (dst & 7)); }

    /** shr r64, imm8. */
    void shrImm(int reg, int imm) { emit(0x48 | reg >> 3, 0xC1, 0xE8 | (reg & 7), imm); }

    /** dec r64. */
    void dec(int reg) { emit(0x48 | reg >> 3, 0xFF, 0xC8 | (reg & 7)); }

    /** jnz to byte {@code target} of this code. */
    void jnz(int target) { emit(0x0F, 0x85); int32(target - (size + 4)); }

    void vzeroupper() { emit(0xC5, 0xF8, 0x77); }

    void ret() { emit(0xC3); }
}
