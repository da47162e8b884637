package dev.moec.passes;

import dev.moec.ir.Graph;

/** A graph-to-graph transformation, named as in pipeline strings. */
public interface Pass {
    String name();

    /** The transformed graph, or the same instance when nothing changed. */
    Graph run(Graph graph);
}
