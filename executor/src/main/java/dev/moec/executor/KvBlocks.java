package dev.moec.executor;

import dev.moec.ir.StepAbi;

import java.util.Arrays;

/**
 * The runtime half of the paged KV cache: owns the block table (the step's {@code %block_table},
 * {@code [slots, blocksPerSequence]}) and the pool of free cache blocks. A slot gets blocks as its
 * sequence grows (or all at once, {@link #reserve}) and gives them back when the sequence ends
 * ({@link #release}); the graphs find every cached position through the table. Not thread-safe: the
 * model that owns it steps from one thread.
 */
public final class KvBlocks {
    private final int slots, perSequence, blockSize, blocks;
    private final int[] table;              // [slots * perSequence]: block ids, -1 where none is assigned
    private final int[] free;               // a stack of free block ids; free[0..freeCount) are free
    private int freeCount;

    /**
     * @param blocks the cache's blocks in all (NB); 0 gives every slot room for {@code maxSeqLen}
     *               positions, so a step can never run out
     */
    public KvBlocks(int slots, int maxSeqLen, int blockSize, int blocks) {
        this.slots = slots;
        this.blockSize = blockSize;
        this.perSequence = StepAbi.blocksPerSequence(maxSeqLen, blockSize);
        this.blocks = blocks == 0 ? Math.multiplyExact(slots, perSequence) : blocks;
        if (this.blocks < 1) throw new IllegalArgumentException("the KV cache needs at least one block, got " + blocks);
        this.table = new int[slots * perSequence];
        Arrays.fill(table, -1);
        this.free = new int[this.blocks];
        for (int b = 0; b < this.blocks; b++) free[b] = this.blocks - 1 - b;     // block 0 is handed out first
        this.freeCount = this.blocks;
    }

    public int blockSize() { return blockSize; }
    public int blocks() { return blocks; }
    public int blocksPerSequence() { return perSequence; }
    public int freeBlocks() { return freeCount; }

    /** The symbol bindings of the state types (S, NB, BS, MB). */
    public java.util.Map<String, Long> bindings() {
        return StepAbi.stateBindings(slots, perSequence * blockSize, blockSize, blocks);
    }

    /** The block table as the graphs read it: the live array, row-major [slots, blocksPerSequence]. */
    public int[] table() { return table; }

    /** The blocks {@code slot} holds, in order. */
    public int[] blocksOf(int slot) {
        int n = 0;
        while (n < perSequence && table[slot * perSequence + n] >= 0) n++;
        return Arrays.copyOfRange(table, slot * perSequence, slot * perSequence + n);
    }

    /**
     * Makes sure positions {@code 0..positions-1} of {@code slot} are backed by blocks. Returns false, and
     * assigns nothing, when the pool has too few free blocks.
     */
    public boolean reserve(int slot, int positions) {
        int want = Math.ceilDiv(positions, blockSize);
        if (want > perSequence) {
            throw new IllegalArgumentException(positions + " positions need " + want + " blocks of " + blockSize + "; a sequence holds at most " + perSequence);
        }
        if (missing(slot, positions) > freeCount) return false;
        for (int i = 0; i < want; i++) if (table[slot * perSequence + i] < 0) table[slot * perSequence + i] = free[--freeCount];
        return true;
    }

    /**
     * Backs every position a step writes (and every earlier one of the same slot, which its attention
     * reads); fails before assigning anything when the pool cannot.
     */
    public void prepare(int[] stepSlots, int[] positions) {
        int[] reach = new int[slots];                           // positions each slot needs backed
        for (int t = 0; t < stepSlots.length; t++) {
            if (stepSlots[t] >= 0) reach[stepSlots[t]] = Math.max(reach[stepSlots[t]], positions[t] + 1);
        }
        int need = 0;
        for (int s = 0; s < slots; s++) need += missing(s, reach[s]);
        if (need > freeCount) {
            throw new IllegalStateException("the KV cache is full: this step needs " + need + " more blocks of " + blockSize
                    + " positions and " + freeCount + " of " + blocks + " are free (raise --kv-cache-blocks, or run fewer sequences at once)");
        }
        for (int s = 0; s < slots; s++) if (reach[s] > 0) reserve(s, reach[s]);
    }

    /** Blocks {@code slot} lacks for positions {@code 0..positions-1}. */
    private int missing(int slot, int positions) {
        int need = 0;
        for (int i = 0; i < Math.ceilDiv(positions, blockSize); i++) if (table[slot * perSequence + i] < 0) need++;
        return need;
    }

    /** Returns the blocks of {@code slot} to the pool; the slot's next sequence starts empty. */
    public void release(int slot) {
        for (int i = perSequence - 1; i >= 0; i--) {
            int b = table[slot * perSequence + i];
            if (b < 0) continue;
            free[freeCount++] = b;
            table[slot * perSequence + i] = -1;
        }
    }
}
