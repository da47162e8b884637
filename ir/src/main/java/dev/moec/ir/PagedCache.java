package dev.moec.ir;

/**
 * The addressing of a paged cache: a cache is {@code [NB, BS, ...]}, NB blocks of BS positions, and the
 * block table {@code i32[S, MB]} lists each slot's blocks in order (see {@link StepAbi}). Position p of
 * slot s is cache row {@code block_table[s, p / BS] * BS + p % BS}. Shared by the reference semantics
 * and the CPU kernels, so both read and write the same rows and refuse the same bad addresses.
 */
public final class PagedCache {
    private final String op;
    private final int[] table;          // [slots * perSequence]: block ids, -1 where none is assigned
    private final int perSequence, blockSize, blocks;

    /**
     * @param table       the block table, row-major {@code [slots, perSequence]}
     * @param perSequence MB, the block table's width
     * @param blockSize   BS, the cache's second dimension
     * @param blocks      NB, the cache's first dimension
     */
    public PagedCache(String op, int[] table, int perSequence, int blockSize, int blocks) {
        if (perSequence < 1 || blockSize < 1 || table.length % perSequence != 0) {
            throw new IllegalArgumentException(op + ": block table of " + table.length + " entries is not [S, " + perSequence + "] over blocks of " + blockSize);
        }
        this.op = op;
        this.table = table;
        this.perSequence = perSequence;
        this.blockSize = blockSize;
        this.blocks = blocks;
    }

    /** The cache row (block * BS + offset) that holds position {@code pos} of slot {@code slot}. */
    public int row(int slot, int pos) {
        if (slot < 0 || slot >= table.length / perSequence || pos < 0 || pos >= perSequence * blockSize) {
            throw new IndexOutOfBoundsException(op + ": slot " + slot + " position " + pos + " is outside the block table of "
                    + table.length / perSequence + " slots x " + perSequence + " blocks of " + blockSize);
        }
        int block = table[slot * perSequence + pos / blockSize];
        if (block < 0 || block >= blocks) {
            throw new IndexOutOfBoundsException(op + ": slot " + slot + " position " + pos + " maps to block " + block
                    + (block < 0 ? ", which is not assigned" : ", outside the cache's " + blocks + " blocks"));
        }
        return block * blockSize + pos % blockSize;
    }

    public int blockSize() { return blockSize; }
}
