package dev.moec.ir;

/** A type rule's verdict that its operands do not fit; {@code rule} is the rule's name. */
public final class TypeError extends RuntimeException {
    private final String rule;

    public TypeError(String rule, String message) {
        super(message);
        this.rule = rule;
    }

    public String rule() { return rule; }
}
