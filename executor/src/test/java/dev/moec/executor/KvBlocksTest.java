package dev.moec.executor;

import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.HashSet;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class KvBlocksTest {
    @Test void theDefaultPoolHoldsEverySlotsFullContext() {
        KvBlocks kv = new KvBlocks(3, 10, 4, 0);                     // 10 positions in blocks of 4: 3 per sequence
        assertEquals(3, kv.blocksPerSequence());
        assertEquals(9, kv.blocks());
        assertEquals(9, kv.freeBlocks());
        assertEquals(java.util.Map.of("S", 3L, "NB", 9L, "BS", 4L, "MB", 3L), kv.bindings());
        assertTrue(Arrays.stream(kv.table()).allMatch(b -> b == -1), "no block is assigned before a step");
    }

    @Test void stepsTakeBlocksAsSequencesGrowAndInterleave() {
        KvBlocks kv = new KvBlocks(2, 16, 4, 0);
        kv.prepare(new int[]{0, 0, 0, 0, 0}, new int[]{0, 1, 2, 3, 4});    // slot 0: positions 0..4, two blocks
        kv.prepare(new int[]{1}, new int[]{0});                           // slot 1: one block
        kv.prepare(new int[]{0, 1, -1}, new int[]{8, 1, 0});              // slot 0 jumps to position 8: a third block; padding takes none
        assertArrayEquals(new int[]{0, 1, 3}, kv.blocksOf(0));
        assertArrayEquals(new int[]{2}, kv.blocksOf(1));
        assertEquals(8 - 4, kv.freeBlocks());
        assertArrayEquals(new int[]{0, 1, 3, -1, 2, -1, -1, -1}, kv.table());
    }

    @Test void releasedBlocksGoBackToThePoolAndAreReused() {
        KvBlocks kv = new KvBlocks(2, 8, 2, 4);
        assertTrue(kv.reserve(0, 8));
        assertEquals(0, kv.freeBlocks());
        assertFalse(kv.reserve(1, 1), "no block is free");
        Set<Integer> held = new HashSet<>();
        for (int b : kv.blocksOf(0)) held.add(b);
        kv.release(0);
        assertEquals(4, kv.freeBlocks());
        assertArrayEquals(new int[0], kv.blocksOf(0));
        assertTrue(kv.reserve(1, 3));
        for (int b : kv.blocksOf(1)) assertTrue(held.contains(b));
        assertEquals(2, kv.freeBlocks());
    }

    @Test void aStepThePoolCannotBackFailsAndAssignsNothing() {
        KvBlocks kv = new KvBlocks(2, 8, 2, 3);
        kv.prepare(new int[]{0, 0, 0}, new int[]{0, 1, 2});               // two blocks for slot 0
        int[] before = kv.table().clone();
        var e = assertThrows(IllegalStateException.class, () -> kv.prepare(new int[]{0, 1}, new int[]{4, 2}));
        assertTrue(e.getMessage().contains("KV cache is full") && e.getMessage().contains("--kv-cache-blocks"), e.getMessage());
        assertArrayEquals(before, kv.table());
        assertEquals(1, kv.freeBlocks());
        assertFalse(kv.reserve(1, 4), "two blocks wanted, one free");
        assertArrayEquals(before, kv.table(), "a refused reservation assigns nothing");
    }

    @Test void badSizesAreRefused() {
        assertThrows(IllegalArgumentException.class, () -> new KvBlocks(1, 8, 0, 0));
        assertThrows(IllegalArgumentException.class, () -> new KvBlocks(1, 8, 4, -1));
        KvBlocks kv = new KvBlocks(1, 8, 4, 0);
        assertThrows(IllegalArgumentException.class, () -> kv.reserve(0, 9), "past the context");
    }
}
