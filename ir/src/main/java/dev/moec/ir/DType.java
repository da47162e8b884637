package dev.moec.ir;

/** Element types of IR tensors. {@code bitsPerElement} is the storage width (i4 packs two per byte). */
public enum DType {
    F32("f32", 32, true),
    F16("f16", 16, true),
    BF16("bf16", 16, true),
    F8E4M3("f8e4m3", 8, true),
    I64("i64", 64, false),
    I32("i32", 32, false),
    I8("i8", 8, false),
    I4("i4", 4, false),
    BOOL("bool", 8, false);

    private final String text;
    private final int bitsPerElement;
    private final boolean floating;

    DType(String text, int bitsPerElement, boolean floating) {
        this.text = text;
        this.bitsPerElement = bitsPerElement;
        this.floating = floating;
    }

    public String text() { return text; }
    public int bitsPerElement() { return bitsPerElement; }
    public boolean isFloating() { return floating; }

    /** Bytes taken by {@code elements} elements, rounding a trailing half byte of i4 up. */
    public long bytes(long elements) { return (elements * bitsPerElement + 7) / 8; }

    public static DType parse(String text) {
        for (DType t : values()) if (t.text.equals(text)) return t;
        throw new IllegalArgumentException("unknown dtype '" + text + "'");
    }

    @Override public String toString() { return text; }
}
