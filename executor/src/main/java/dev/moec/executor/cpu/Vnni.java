package dev.moec.executor.cpu;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.Arrays;
import java.util.Objects;

/**
 * int8 matmul tiles in x86-64 machine code around AVX-512 VNNI's {@code VPDPBUSD}, which multiplies 64
 * unsigned bytes by 64 signed bytes and adds each lane's four products into its int32: 64 multiply-adds
 * an instruction, where the Vector API's best int8 path (bytes read as floats, one FMA each) does 16.
 * The Vector API exposes no such dot product, so the executor writes the tile itself, as a JIT does: a
 * few instructions encoded by {@link X86Asm}, specialized per row count and activation stride, mapped
 * executable ({@link PageMemory#executable}) and called through the FFM linker as a critical downcall
 * (no thread transition; heap arrays passed in place).
 *
 * <p>The tile takes the panels of {@link WeightPanels} in their VNNI layout ({@link #slot}): a panel's 64
 * channels in four blocks of 16, each channel's four neighbouring columns in one int32 lane, as
 * {@code w + 128} (unsigned, the operand VPDPBUSD wants unsigned); a group of four columns is 256 bytes,
 * four vector loads. Per group it loads them once and, for each of its rows, adds
 * {@code (w + 128) * x} into four accumulators with the row's four int8 activations broadcast from memory.
 * The caller takes 128 times each row's sum back, exactly as the Vector API tiles do.
 *
 * <p>Used where the JVM runs 512-bit vectors (so the OS keeps the zmm state), the CPU reports
 * {@code avx512_vnni} and {@code avx512bw} in {@code /proc/cpuinfo}, on Linux x86-64, with native access;
 * {@code -Dmoec.vnni=false} turns it off. Elsewhere the int8 panels keep the Vector API layout.
 */
public final class Vnni {
    private Vnni() {}

    /** Columns a lane's int32 sums per instruction, and a panel group's width. */
    static final int GROUP = 4;
    /** Channels of a panel: four blocks of 16 int32 lanes ({@link Simd#I8_PANEL_WIDTH} with AVX-512). */
    static final int WIDTH = 64;
    /** Bytes of one group of a panel: 64 channels of four columns. */
    static final int GROUP_BYTES = WIDTH * GROUP;
    /** Rows a tile takes at most: four accumulators a row and four weight registers fill the 32 zmm registers. */
    static final int MAX_ROWS = 7;

    private static final X86Asm.Tiles TILES = new X86Asm.Tiles(key -> code((int) (key >>> 32), (int) key));
    private static final ThreadLocal<int[][]> SUMS = ThreadLocal.withInitial(() -> new int[][] {new int[8 * MAX_ROWS * WIDTH]});

    /** Whether the int8 panels are laid out for, and multiplied by, these tiles on this machine. */
    public static final boolean AVAILABLE = available();

    private static boolean available() {
        return Simd.I8_PANEL_WIDTH == WIDTH && X86Asm.runsHere("moec.vnni", () -> tile(1, GROUP), "avx512_vnni", "avx512bw", "avx512f");
    }

    /** Columns of a matrix of k columns in the VNNI panel layout: k rounded up to a whole group. */
    static int paddedColumns(int k) { return Math.ceilDiv(k, GROUP) * GROUP; }

    /** Bytes of one VNNI panel of k columns. */
    static long panelBytes(int k) { return (long) paddedColumns(k) * WIDTH; }

    /** The byte of a VNNI panel that holds channel j (of 64), column c: group c / 4, block j / 16, lane j % 16, byte c % 4. */
    static long slot(int j, int c) { return (long) (c / GROUP) * GROUP_BYTES + (j / 16) * 64 + (j % 16) * GROUP + c % GROUP; }

    /**
     * Rows [r0, r1) of int8 activations {@code x} (row r at byte r * stride, stride a multiple of
     * {@link #GROUP}, zero past the row's k values up to {@link #paddedColumns}; {@code rowSums[r]} its sum)
     * times the m channels of the VNNI panels from byte {@code panel0} of {@code panels}:
     * acc[(r - r0) * m + d] = the exact int32 dot product of row r and channel d. One call of a tile takes
     * up to {@link #MAX_ROWS} rows over all the panels, a pass per such chunk of rows, full chunks first:
     * the first pass reads the panels from memory with as much arithmetic as a tile holds beside the
     * stream, and the later passes find them in L2. (Chunks of equal size, four and four rows at batch 8,
     * left half the arithmetic to a pass that memory idled through: JMH, the 8-row int8 q_proj from
     * memory in three alternating pairs of runs, 88.9 -> 81.2 µs on average.)
     */
    static void rows(byte[] x, int stride, int[] rowSums, int r0, int r1, MemorySegment panels, long panel0, int k, int m, int[] acc) {
        int groups = paddedColumns(k) / GROUP, count = r1 - r0, chunk = Math.min(count, MAX_ROWS);
        if (stride % GROUP != 0 || stride < groups * GROUP) throw new IllegalArgumentException("activation stride " + stride + " for " + k + " columns");
        int panelCount = Math.ceilDiv(m, WIDTH);
        int[][] scratch = SUMS.get();
        if (scratch[0].length < panelCount * chunk * WIDTH) scratch[0] = new int[panelCount * chunk * WIDTH];
        int[] sums = scratch[0];                                        // [panels][rows][64]
        MemorySegment out = X86Asm.heap(sums), xs = X86Asm.heap(x);
        long w = X86Asm.address(panels, panel0, panelCount * panelBytes(k)), counts = X86Asm.counts(groups, panelCount);
        for (int r = r0; r < r1; r += chunk) {
            int rows = Math.min(chunk, r1 - r);
            Objects.checkFromIndexSize((long) r * stride, (long) rows * stride, x.length);
            try {
                tile(rows, stride).invokeExact(xs, (long) r * stride, w, counts, out, 0L);
            } catch (Throwable t) {
                throw new IllegalStateException("VNNI tile of " + rows + " rows", t);
            }
            for (int p = 0; p < panelCount; p++) {
                int mp = Math.min(WIDTH, m - p * WIDTH);
                for (int i = 0; i < rows; i++) {
                    int bias = 128 * rowSums[r + i], at = (r + i - r0) * m + p * WIDTH, from = (p * rows + i) * WIDTH;
                    for (int d = 0; d < mp; d++) acc[at + d] = sums[from + d] - bias;
                }
            }
        }
    }

    private static final int BENCH_ROWS = 6, BENCH_COLUMNS = 1024;

    /** Multiply-accumulates of one {@link #bench} call. */
    public static long benchMacs() { return (long) BENCH_ROWS * WIDTH * BENCH_COLUMNS; }

    /**
     * Runs the six-row tile {@code calls} times over one panel of 1024 columns (64 KB, in L2) and returns
     * a value of its sums: what {@link dev.moec.executor.bench.ComputePeak#measureVnni} times.
     */
    public static long bench(int calls) {
        try (java.lang.foreign.Arena arena = java.lang.foreign.Arena.ofConfined()) {
            MemorySegment panel = arena.allocate(panelBytes(BENCH_COLUMNS), 64), out = MemorySegment.ofArray(new int[BENCH_ROWS * WIDTH]);
            byte[] x = new byte[BENCH_ROWS * BENCH_COLUMNS];
            Arrays.fill(x, (byte) 1);
            MemorySegment xs = MemorySegment.ofArray(x);
            MethodHandle tile = tile(BENCH_ROWS, BENCH_COLUMNS);
            for (int c = 0; c < calls; c++) tile.invokeExact(xs, 0L, panel.address(), X86Asm.counts(BENCH_COLUMNS / GROUP, 1), out, 0L);
            return out.get(ValueLayout.JAVA_INT, 0);
        } catch (Throwable t) {
            throw new IllegalStateException("VNNI tile", t);
        }
    }

    /** The tile for {@code rows} rows whose activations lie {@code stride} bytes apart, made on first use. */
    static MethodHandle tile(int rows, int stride) {
        return TILES.get((long) rows << 32 | stride);
    }

    /**
     * The machine code of a tile: {@code void tile(x, w, groups, out, panels)} in the registers
     * {@link X86Asm#tileArguments} sets from a call (rdi, rsi, rdx, rcx, r8). x: the first of
     * {@code rows} activation rows, {@code stride} bytes apart; w: the first of
     * {@code panels} consecutive VNNI panels (at least one), each of {@code groups} groups of four columns
     * (at least one); out: [panels][rows][64] int32 sums of (w + 128) * x, channel order. Per panel,
     * zmm0..4rows-1 accumulate (row r, block b in zmm 4r + b) and zmm28..31 hold a group's four blocks;
     * r9 and r10 keep x and the group count for the next panel, which starts where the last one ended.
     */
    static byte[] code(int rows, int stride) {
        if (rows < 1 || rows > MAX_ROWS) throw new IllegalArgumentException("a VNNI tile takes 1 to " + MAX_ROWS + " rows, not " + rows);
        X86Asm a = new X86Asm();
        a.tileArguments();
        a.mov(X86Asm.R9, X86Asm.RDI);
        a.mov(X86Asm.R10, X86Asm.RDX);
        int panel = a.size();
        a.mov(X86Asm.RDI, X86Asm.R9);
        a.mov(X86Asm.RDX, X86Asm.R10);
        for (int z = 0; z < 4 * rows; z++) a.vpxord(z);
        int loop = a.size();
        for (int b = 0; b < 4; b++) a.vmovdqu32Load(28 + b, X86Asm.RSI, b * 64);
        for (int r = 0; r < rows; r++) {
            for (int b = 0; b < 4; b++) a.vpdpbusdBroadcast(4 * r + b, 28 + b, X86Asm.RDI, r * stride);
        }
        a.addImm(X86Asm.RSI, GROUP_BYTES);
        a.addImm(X86Asm.RDI, GROUP);
        a.dec(X86Asm.RDX);
        a.jnz(loop);
        for (int r = 0; r < rows; r++) {
            for (int b = 0; b < 4; b++) a.vmovdqu32Store(X86Asm.RCX, (r * WIDTH + b * 16) * 4, 4 * r + b);
        }
        a.addImm(X86Asm.RCX, rows * WIDTH * 4);
        a.dec(X86Asm.R8);
        a.jnz(panel);
        a.vzeroupper();
        a.ret();
        return a.bytes();
    }
}
