package dev.moec.passes;

import dev.moec.ir.Graph;

/**
 * A graph-to-graph transformation, named as in pipeline strings. It returns the same instance when it
 * changes nothing (the changed flag), must leave a verifying graph, and must be idempotent: a second run
 * changes nothing.
 */
public interface Pass {
    String name();

    /** The transformed graph, or the same instance when nothing changed. */
    Graph run(Graph graph);
}
