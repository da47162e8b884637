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

    /** The stored bytes of {@code name}, little-endian, in its stored dtype (may be a view of a mapping). */
    java.lang.foreign.MemorySegment raw(String name);

    default boolean contains(String name) { return names().contains(name); }
}
