package dev.moec.executor.cpu;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;

/**
 * Off-heap memory for what a decode step streams from DRAM (the weight panels, and the bandwidth probe
 * that draws their roofline), on 2 MB pages where the OS gives them. On Linux it is mapped anonymously
 * (zeroed) and advised {@code MADV_HUGEPAGE} before its first touch, so that a kernel with transparent
 * huge pages in {@code madvise} mode backs it with 2 MB pages. On 4 KB pages a stream pays a TLB miss
 * and a restart of the hardware prefetcher every 4 KB; the probe's read rate on this machine's 2 MB
 * pages was 10–80 % higher than on 4 KB pages in interleaved runs. Elsewhere, or with
 * {@code -Dmoec.hugePages=false}, or when the mapping fails, it is an ordinary allocation of the arena.
 * A mapping is unmapped when its arena is closed (or, for an automatic arena, collected).
 */
public final class PageMemory {
    /** The huge page size of x86-64 and of arm64 with 4 KB base pages. */
    public static final long HUGE_PAGE = 2L << 20;
    private static final int PROT_READ_WRITE = 0x3, PROT_READ_EXEC = 0x5, MAP_PRIVATE_ANONYMOUS = 0x22, MADV_HUGEPAGE = 14;
    private static final long CODE_PAGE = 4096;

    private static final MethodHandle MMAP, MADVISE, MUNMAP, MPROTECT;     // null where not Linux or no native access
    private static final boolean HUGE = !"false".equalsIgnoreCase(System.getProperty("moec.hugePages", "true"));

    static {
        MethodHandle mmap = null, madvise = null, munmap = null, mprotect = null;
        if (System.getProperty("os.name", "").toLowerCase(Locale.ROOT).startsWith("linux")) {
            try {
                Linker linker = Linker.nativeLinker();
                SymbolLookup libc = linker.defaultLookup();
                mmap = linker.downcallHandle(libc.find("mmap").orElseThrow(), FunctionDescriptor.of(ValueLayout.ADDRESS,
                        ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG));
                madvise = linker.downcallHandle(libc.find("madvise").orElseThrow(), FunctionDescriptor.of(ValueLayout.JAVA_INT,
                        ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT));
                munmap = linker.downcallHandle(libc.find("munmap").orElseThrow(), FunctionDescriptor.of(ValueLayout.JAVA_INT,
                        ValueLayout.ADDRESS, ValueLayout.JAVA_LONG));
                mprotect = linker.downcallHandle(libc.find("mprotect").orElseThrow(), FunctionDescriptor.of(ValueLayout.JAVA_INT,
                        ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT));
            } catch (RuntimeException | LinkageError e) {                 // no native access: ordinary memory
                mmap = madvise = munmap = mprotect = null;
            }
        }
        MMAP = mmap;
        MADVISE = madvise;
        MUNMAP = munmap;
        MPROTECT = mprotect;
    }

    private PageMemory() {}

    /** Whether allocations are mapped and advised as huge pages (Linux, native access, not turned off). */
    public static boolean advised() { return MMAP != null && HUGE; }

    /**
     * {@code bytes} of zeroed memory owned by {@code arena}: a mapping advised as huge pages and aligned
     * to {@link #HUGE_PAGE} where {@link #advised}, else {@code arena.allocate(bytes, 64)}.
     */
    public static MemorySegment allocate(long bytes, Arena arena) {
        if (bytes <= 0) throw new IllegalArgumentException("cannot allocate " + bytes + " bytes");
        if (!advised()) return arena.allocate(bytes, 64);
        long length = Math.ceilDiv(bytes, HUGE_PAGE) * HUGE_PAGE, mapped = length + HUGE_PAGE;   // room to align the start
        MemorySegment raw;
        try {
            raw = (MemorySegment) MMAP.invokeExact(MemorySegment.NULL, mapped, PROT_READ_WRITE, MAP_PRIVATE_ANONYMOUS, -1, 0L);
        } catch (Throwable t) {
            return arena.allocate(bytes, 64);
        }
        long base = raw.address();
        if (base == -1L || base == 0L) return arena.allocate(bytes, 64);          // MAP_FAILED
        long start = (base + HUGE_PAGE - 1) & -HUGE_PAGE;
        MemorySegment aligned = MemorySegment.ofAddress(start);
        try {
            int ignored = (int) MADVISE.invokeExact(aligned, length, MADV_HUGEPAGE);  // refused (THP "never"): 4 KB pages
        } catch (Throwable t) {
            // advice only
        }
        return aligned.reinterpret(bytes, arena, s -> unmap(base, mapped));
    }

    /**
     * {@code code} (machine code for this CPU) in pages of its own, mapped readable and executable and
     * never writable again: written into a fresh anonymous mapping, then protected. It stays mapped for
     * the life of the process (the executor's tiles, a few KB). Throws {@link UnsupportedOperationException}
     * where memory is not mapped here (not Linux, or no native access).
     */
    public static MemorySegment executable(byte[] code) {
        if (MMAP == null) throw new UnsupportedOperationException("no executable mappings on this platform");
        long length = Math.ceilDiv(Math.max(1, code.length), CODE_PAGE) * CODE_PAGE;
        try {
            MemorySegment raw = (MemorySegment) MMAP.invokeExact(MemorySegment.NULL, length, PROT_READ_WRITE, MAP_PRIVATE_ANONYMOUS, -1, 0L);
            if (raw.address() == -1L || raw.address() == 0L) throw new IllegalStateException("mmap of " + length + " bytes failed");
            MemorySegment pages = raw.reinterpret(length);
            MemorySegment.copy(code, 0, pages, ValueLayout.JAVA_BYTE, 0, code.length);
            if ((int) MPROTECT.invokeExact(raw, length, PROT_READ_EXEC) != 0) throw new IllegalStateException("mprotect(PROT_READ | PROT_EXEC) refused");
            return raw;
        } catch (RuntimeException e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException("mapping machine code", t);
        }
    }

    private static void unmap(long base, long length) {
        try {
            int ignored = (int) MUNMAP.invokeExact(MemorySegment.ofAddress(base), length);
        } catch (Throwable t) {
            // the process is going away or the mapping is gone
        }
    }

    /**
     * Bytes of this process's anonymous memory on huge pages ({@code AnonHugePages} of
     * {@code /proc/self/smaps_rollup}), or -1 where that is not known.
     */
    public static long hugeBytes() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/smaps_rollup"))) {
                if (line.startsWith("AnonHugePages:")) return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
            }
        } catch (Exception e) {
            // not Linux, or no smaps_rollup
        }
        return -1;
    }
}
