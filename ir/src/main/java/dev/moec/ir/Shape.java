package dev.moec.ir;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/** A tensor shape whose dimensions mix numbers and symbols, e.g. {@code [T,4,128]}. */
public record Shape(List<Dim> dims) {
    public Shape {
        dims = List.copyOf(dims);
    }

    public static Shape of(Object... dims) {
        List<Dim> out = new ArrayList<>();
        for (Object d : dims) {
            switch (d) {
                case Dim dim -> out.add(dim);
                case Number n -> out.add(Dim.of(n.longValue()));
                case String s -> out.add(Dim.parse(s));
                default -> throw new IllegalArgumentException("not a dimension: " + d);
            }
        }
        return new Shape(out);
    }

    public static Shape ofSizes(long... sizes) {
        return new Shape(Arrays.stream(sizes).mapToObj(Dim::of).toList());
    }

    public int rank() { return dims.size(); }
    public Dim dim(int i) { return dims.get(i < 0 ? dims.size() + i : i); }
    public Dim last() { return dims.getLast(); }

    public boolean isStatic() { return dims.stream().allMatch(Dim::isFixed); }

    /** Number of elements; only for static shapes. */
    public long elements() {
        long n = 1;
        for (Dim d : dims) n *= d.size();
        return n;
    }

    public long[] sizes() { return dims.stream().mapToLong(Dim::size).toArray(); }

    public Shape withLast(Dim d) {
        List<Dim> out = new ArrayList<>(dims);
        out.set(out.size() - 1, d);
        return new Shape(out);
    }

    public Shape append(Dim d) {
        List<Dim> out = new ArrayList<>(dims);
        out.add(d);
        return new Shape(out);
    }

    public Shape dropLast() { return new Shape(dims.subList(0, dims.size() - 1)); }

    /** Replaces every symbol that {@code bindings} names by its size. */
    public Shape bind(Map<String, Long> bindings) {
        return new Shape(dims.stream().map(d -> d.bind(bindings)).toList());
    }

    @Override public String toString() {
        StringBuilder sb = new StringBuilder("[");
        for (int i = 0; i < dims.size(); i++) {
            if (i > 0) sb.append(',');
            sb.append(dims.get(i));
        }
        return sb.append(']').toString();
    }
}
