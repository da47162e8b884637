package dev.moec.ir.text;

/** A syntax or name error in IR text, at a 1-based line and column. */
public final class IrParseException extends RuntimeException {
    private final int line, column;

    public IrParseException(String source, int line, int column, String message) {
        super(source + ":" + line + ":" + column + ": " + message);
        this.line = line;
        this.column = column;
    }

    public int line() { return line; }
    public int column() { return column; }
}
