package dev.moec.backend;

import dev.moec.ir.TensorType;

import java.util.Locale;

/**
 * Where an artifact runs. Both targets launch the same kernels over the same graph; they differ in weight
 * layout: {@code cpu} keeps every weight ND (row-major), {@code ascend} stores the weights of the matmul
 * kernels that read NZ ({@link #wantsNz}) in the FRACTAL_NZ layout ({@link Nz}), and checks the Ascend
 * operator contracts ({@link Contracts}) when compiling.
 */
public enum Target {
    CPU, ASCEND;

    /** The stored type of a weight on this target (the logical type; the layout is separate). */
    public TensorType weightType(TensorType t) { return t; }

    /** True if {@code kernel} reads its operand {@code operand} as an NZ weight on this target. */
    public boolean wantsNz(Kernel kernel, int operand) {
        if (this != ASCEND) return false;
        return switch (kernel) {
            case QUANT_MATMUL, GROUPED_QUANT_MATMUL -> operand == 2;      // aclnnQuantMatmulWeightNz, aclnnGroupedMatmulWeightNz
            case GROUPED_MATMUL -> operand == 1;
            default -> false;
        };
    }

    public String text() { return name().toLowerCase(Locale.ROOT); }

    public static Target parse(String s) {
        for (Target t : values()) if (t.text().equals(s)) return t;
        throw new IllegalArgumentException("unknown target '" + s + "' (targets: cpu, ascend)");
    }
}
