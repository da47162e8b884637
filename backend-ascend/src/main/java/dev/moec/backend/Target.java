package dev.moec.backend;

import dev.moec.ir.TensorType;

/**
 * Where an artifact runs. {@code cpu} keeps weights in ND row-major layout. The {@code ascend} target
 * (NZ fractal weights where the kernels want them) joins this list with the backend's operator
 * contracts; until then a request for it is refused by {@link #parse}.
 */
public enum Target {
    CPU;

    /** The stored type of a weight on this target. */
    public TensorType weightType(TensorType t) { return t; }

    public String text() { return name().toLowerCase(java.util.Locale.ROOT); }

    public static Target parse(String s) {
        for (Target t : values()) if (t.text().equals(s)) return t;
        throw new IllegalArgumentException("unknown target '" + s + "' (targets: cpu)");
    }
}
