package dev.moec.tests;

import dev.moec.capture.Artifact;
import dev.moec.executor.CompiledModel;
import dev.moec.executor.Generator;
import dev.moec.executor.ReferenceModel;
import dev.moec.executor.Sampler;
import dev.moec.frontend.Checkpoint;
import dev.moec.frontend.ModelImport;
import org.junit.jupiter.api.Test;

import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The embedded demo model (trained, pydocs-moe-tiny) against an independent implementation: its README
 * states the 16 greedy ids PyTorch produces after a prompt; the compiled executor and the reference
 * interpreter must both produce exactly those.
 */
class DemoModelTest {
    @Test void compiledGreedyContinuationEqualsPyTorch() {
        Fixtures.DemoCase c = Fixtures.demoCase();
        assertEquals(16, c.greedy().length);
        try (CompiledModel m = new CompiledModel(Artifact.open(Fixtures.demoArtifact()), 1, 64, 2)) {
            assertArrayEquals(c.greedy(), Generator.generate(m, 0, c.prompt(), 16, Sampler.greedy(), Set.of(), false).tokens());
        }
    }

    @Test void referenceGreedyContinuationEqualsPyTorch() {
        Fixtures.DemoCase c = Fixtures.demoCase();
        try (Checkpoint ckpt = Checkpoint.open(Fixtures.demoModel())) {
            var m = new ReferenceModel(ModelImport.stepGraph(ckpt), ckpt, 1, 64);
            assertArrayEquals(c.greedy(), Generator.generate(m, 0, c.prompt(), 16, Sampler.greedy(), Set.of(), false).tokens());
        }
    }
}
