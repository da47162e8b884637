package dev.moec.passes;

import dev.moec.ir.Graph;
import dev.moec.ir.TextFormPropertyTest;
import dev.moec.ir.Verifier;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;

import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every pass on random well-typed graphs over every op (the IR tests' generator): the result verifies,
 * and a second run changes nothing (the pass returns the very same graph). Numerical equality before
 * and after the passes is held on every model family, where the semantics are meaningful
 * (tests/PassPipelineTest).
 */
class PassPropertyTest {
    @Provide
    Arbitrary<Graph> graphs() {
        return Arbitraries.randomValue(r -> TextFormPropertyTest.randomGraph(r));
    }

    @Property(tries = 300)
    void everyPassKeepsGraphsValidAndIsIdempotent(@ForAll("graphs") Graph g) {
        for (var e : PassManager.PASSES.entrySet()) {
            Supplier<Pass> make = e.getValue();
            Graph once = make.get().run(g);
            assertTrue(Verifier.check(once).isEmpty(), () -> e.getKey() + " broke the graph: " + Verifier.check(once));
            assertSame(once, make.get().run(once), () -> e.getKey() + " is not idempotent");
        }
    }

    @Property(tries = 200)
    void theDefaultPipelinesKeepGraphsValid(@ForAll("graphs") Graph g) {
        for (String q : new String[]{"none", "w8a8", "w4a8"}) {
            Graph out = new PassManager(PassManager.defaultPipeline(q)).run(g);      // verifies after every pass
            assertSame(out, new PassManager(PassManager.defaultPipeline(q)).run(out), "pipeline " + q + " is not idempotent");
        }
    }
}
