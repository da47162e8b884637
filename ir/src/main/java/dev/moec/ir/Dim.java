package dev.moec.ir;

/**
 * One dimension of a shape: a fixed size, a symbol bound when a graph is specialized or run, or a symbol
 * times a constant ({@code T*8}: the rows of a MoE dispatch, one per token and chosen expert).
 */
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

    /** {@code symbol * factor}, factor at least 2; printed {@code T*8}. */
    record Scaled(Sym symbol, long factor) implements Dim {
        public Scaled {
            if (factor < 2) throw new IllegalArgumentException("a scaled dimension needs a factor >= 2, got " + factor);
        }
        @Override public String toString() { return symbol + "*" + factor; }
    }

    static Dim of(long size) { return new Fixed(size); }
    static Dim sym(String name) { return new Sym(name); }

    /** {@code d * factor}: a number for a fixed d, {@code T*factor} for a symbol. */
    static Dim times(Dim d, long factor) {
        if (factor == 1) return d;
        return switch (d) {
            case Fixed f -> new Fixed(f.size() * factor);
            case Sym s -> new Scaled(s, factor);
            case Scaled s -> new Scaled(s.symbol(), s.factor() * factor);
        };
    }

    static Dim parse(String text) {
        int star = text.indexOf('*');
        if (star > 0) return new Scaled(new Sym(text.substring(0, star)), Long.parseLong(text.substring(star + 1)));
        return Character.isDigit(text.charAt(0)) ? new Fixed(Long.parseLong(text)) : new Sym(text);
    }

    default boolean isFixed() { return this instanceof Fixed; }

    default long size() {
        if (this instanceof Fixed f) return f.size();
        throw new IllegalStateException("dimension " + this + " is symbolic");
    }

    /** The size under {@code bindings}, or this dimension if its symbol is unbound. */
    default Dim bind(java.util.Map<String, Long> bindings) {
        return switch (this) {
            case Fixed f -> f;
            case Sym s -> bindings.containsKey(s.name()) ? new Fixed(bindings.get(s.name())) : s;
            case Scaled s -> bindings.containsKey(s.symbol().name()) ? new Fixed(bindings.get(s.symbol().name()) * s.factor()) : s;
        };
    }
}
