package dev.moec.ir;

/** An SSA value: defined once (graph input, parameter or node result), printed {@code %name}. */
public record Value(String name, TensorType type) {
    public Value {
        if (!name.matches("[A-Za-z0-9_.]+")) throw new IllegalArgumentException("bad value name '" + name + "'");
    }
    @Override public String toString() { return "%" + name; }
}
