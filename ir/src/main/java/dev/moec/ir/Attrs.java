package dev.moec.ir;

import java.util.Collections;
import java.util.Map;
import java.util.TreeMap;

/**
 * A node's attributes, printed sorted by name: {@code {eps = 1e-06, k = 2}}. Values are Long, Double,
 * Boolean, String or {@link Shape}; {@link Op} declares which names and kinds each op takes.
 */
public record Attrs(Map<String, Object> values) {
    public static final Attrs NONE = new Attrs(Map.of());

    public Attrs {
        TreeMap<String, Object> sorted = new TreeMap<>();
        values.forEach((k, v) -> sorted.put(k, normalize(k, v)));
        values = Collections.unmodifiableMap(sorted);
    }

    public static Attrs of(Object... keyValues) {
        if (keyValues.length % 2 != 0) throw new IllegalArgumentException("attrs need key/value pairs");
        Map<String, Object> m = new TreeMap<>();
        for (int i = 0; i < keyValues.length; i += 2) m.put((String) keyValues[i], keyValues[i + 1]);
        return new Attrs(m);
    }

    private static Object normalize(String key, Object v) {
        return switch (v) {
            case Integer i -> (long) i;
            case Float f -> (double) f;
            case Long l -> l;
            case Double d -> d;
            case Boolean b -> b;
            case String s -> s;
            case Shape s -> s;
            default -> throw new IllegalArgumentException("attribute " + key + " has unsupported value " + v);
        };
    }

    public boolean has(String name) { return values.containsKey(name); }
    public long i(String name) { return (Long) require(name); }
    public double f(String name) { return (Double) require(name); }
    public boolean b(String name) { return (Boolean) require(name); }
    public String s(String name) { return (String) require(name); }
    public Shape shape(String name) { return (Shape) require(name); }

    private Object require(String name) {
        Object v = values.get(name);
        if (v == null) throw new IllegalArgumentException("missing attribute '" + name + "'");
        return v;
    }

    public boolean isEmpty() { return values.isEmpty(); }

    @Override public String toString() {
        StringBuilder sb = new StringBuilder("{");
        boolean first = true;
        for (var e : values.entrySet()) {
            if (!first) sb.append(", ");
            first = false;
            sb.append(e.getKey()).append(" = ").append(format(e.getValue()));
        }
        return sb.append('}').toString();
    }

    static String format(Object v) {
        return switch (v) {
            case String s -> Printer.quote(s);
            default -> v.toString();
        };
    }
}
