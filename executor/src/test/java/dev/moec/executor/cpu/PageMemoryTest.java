package dev.moec.executor.cpu;

import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class PageMemoryTest {
    @Test
    void givesZeroedWritableMemoryOfTheSizeAskedAlignedToItsPages() {
        long bytes = 3 * PageMemory.HUGE_PAGE + 12345;
        MemorySegment seg;
        try (Arena arena = Arena.ofConfined()) {
            seg = PageMemory.allocate(bytes, arena);
            assertEquals(bytes, seg.byteSize());
            assertEquals(0, seg.address() % (PageMemory.advised() ? PageMemory.HUGE_PAGE : 64), "aligned");
            for (long at = 0; at < bytes; at += 4093) assertEquals(0, seg.get(ValueLayout.JAVA_BYTE, at), "zeroed at " + at);
            seg.set(ValueLayout.JAVA_BYTE, bytes - 1, (byte) 7);
            seg.set(ValueLayout.JAVA_LONG_UNALIGNED, 0, -1L);
            assertEquals(7, seg.get(ValueLayout.JAVA_BYTE, bytes - 1));
            assertEquals(-1L, seg.get(ValueLayout.JAVA_LONG_UNALIGNED, 0));
        }
        assertFalse(seg.scope().isAlive(), "freed with its arena");
    }

    @Test
    void manyMappingsComeAndGo() {
        for (int round = 0; round < 64; round++) {
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment seg = PageMemory.allocate(PageMemory.HUGE_PAGE, arena);
                seg.fill((byte) round);
                assertEquals(round, seg.get(ValueLayout.JAVA_BYTE, PageMemory.HUGE_PAGE - 1));
            }
        }
        assertTrue(PageMemory.hugeBytes() >= -1);
    }

    @Test
    void refusesAnEmptyAllocation() {
        try (Arena arena = Arena.ofConfined()) {
            assertThrows(IllegalArgumentException.class, () -> PageMemory.allocate(0, arena));
        }
    }
}
