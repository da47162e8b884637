package dev.moec.ir;

/** One attribute an op declares: name, kind and whether it must be present. */
public record AttrSpec(String name, Kind kind, boolean required) {
    public enum Kind {
        INT(Long.class), FLOAT(Double.class), BOOL(Boolean.class), STRING(String.class), SHAPE(Shape.class);

        final Class<?> javaType;
        Kind(Class<?> javaType) { this.javaType = javaType; }

        public boolean accepts(Object v) { return javaType.isInstance(v); }
    }

    public static AttrSpec req(String name, Kind kind) { return new AttrSpec(name, kind, true); }
    public static AttrSpec opt(String name, Kind kind) { return new AttrSpec(name, kind, false); }
}
