package dev.moec.ir.interp;

import dev.moec.ir.TensorType;

import java.util.Set;

/** Where weight parameters live: a checkpoint, an artifact's packed weights, or memory in tests. */
public interface TensorStore {
    Set<String> names();

    /** The stored type of {@code name}; throws {@link IllegalArgumentException} naming the tensor if absent. */
    TensorType type(String name);

    /** The tensor widened to f32 (a fresh array). */
    float[] readF32(String name);

    /** An integer tensor (i8, i32, i64 within int range, bool) widened to int (a fresh array). */
    default int[] readInts(String name) {
        throw new IllegalArgumentException("tensor '" + name + "' is " + type(name).dtype() + "; this store reads no integer tensors");
    }

    /** The stored bytes of {@code name}, little-endian, in its stored dtype (may be a view of a mapping). */
    java.lang.foreign.MemorySegment raw(String name);

    default boolean contains(String name) { return names().contains(name); }
}
