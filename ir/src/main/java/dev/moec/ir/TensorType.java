package dev.moec.ir;

import java.util.Map;

/** The type of every IR value: element type and shape, printed {@code bf16[T,256]}. */
public record TensorType(DType dtype, Shape shape) {
    public static TensorType of(DType dtype, Object... dims) { return new TensorType(dtype, Shape.of(dims)); }

    /** Parses the printed form, e.g. {@code bf16[T,256]}. */
    public static TensorType parse(String text) {
        int open = text.indexOf('[');
        if (open < 0 || !text.endsWith("]")) throw new IllegalArgumentException("bad tensor type '" + text + "'");
        DType d = DType.parse(text.substring(0, open).trim());
        String inner = text.substring(open + 1, text.length() - 1).trim();
        if (inner.isEmpty()) return new TensorType(d, Shape.of());
        return new TensorType(d, Shape.of((Object[]) inner.split("\\s*,\\s*")));
    }

    public int rank() { return shape.rank(); }
    public TensorType withShape(Shape s) { return new TensorType(dtype, s); }
    public TensorType withDType(DType d) { return new TensorType(d, shape); }
    public TensorType bind(Map<String, Long> bindings) { return new TensorType(dtype, shape.bind(bindings)); }

    /** Storage bytes of a static type. */
    public long bytes() { return dtype.bytes(shape.elements()); }

    @Override public String toString() { return dtype.text() + shape; }
}
