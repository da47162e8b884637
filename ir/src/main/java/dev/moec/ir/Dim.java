package dev.moec.ir;

/** One dimension of a shape: a fixed size or a symbol bound when a graph is specialized or run. */
public sealed interface Dim {
    record Fixed(long size) implements Dim {
        public Fixed {
            if (size < 0) throw new IllegalArgumentException("negative dimension " + size);
        }
        @Override public String toString() { return Long.toString(size); }
    }

    /** A symbolic size, such as {@code T} (tokens in the step) or {@code S} (cache slots). */
    record Sym(String name) implements Dim {
        public Sym {
            if (!name.matches("[A-Za-z_][A-Za-z0-9_]*")) throw new IllegalArgumentException("bad dimension symbol '" + name + "'");
        }
        @Override public String toString() { return name; }
    }

    static Dim of(long size) { return new Fixed(size); }
    static Dim sym(String name) { return new Sym(name); }

    static Dim parse(String text) {
        return Character.isDigit(text.charAt(0)) ? new Fixed(Long.parseLong(text)) : new Sym(text);
    }

    default boolean isFixed() { return this instanceof Fixed; }

    default long size() {
        if (this instanceof Fixed f) return f.size();
        throw new IllegalStateException("dimension " + this + " is symbolic");
    }
}
