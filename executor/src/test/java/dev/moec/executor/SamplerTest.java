package dev.moec.executor;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SamplerTest {
    @Test void greedyTakesTheLowestIdAmongEqualMaxima() {
        assertEquals(1, Sampler.greedy().sample(new float[]{0, 3, 3, -1}));
    }

    @Test void temperatureSamplingFollowsTheSoftmaxAndIsReproducible() {
        // logits ln(1), ln(3): probabilities 1/4 and 3/4 at temperature 1.
        float[] logits = {0f, (float) Math.log(3)};
        Sampler s = Sampler.temperature(1.0, 42);
        int ones = 0, n = 20_000;
        int[] first = new int[50];
        for (int i = 0; i < n; i++) {
            int t = s.sample(logits);
            if (i < first.length) first[i] = t;
            ones += t;
        }
        double p = (double) ones / n;
        assertTrue(Math.abs(p - 0.75) < 0.02, "P(token 1) = " + p);
        Sampler again = Sampler.temperature(1.0, 42);
        for (int i = 0; i < first.length; i++) assertEquals(first[i], again.sample(logits), "draw " + i);
    }

    @Test void lowTemperatureSharpensAndNegativeTemperatureIsRefused() {
        float[] logits = {0f, 1f};
        Sampler cold = Sampler.temperature(0.05, 1);
        for (int i = 0; i < 1000; i++) assertEquals(1, cold.sample(logits));
        assertThrows(IllegalArgumentException.class, () -> Sampler.temperature(-0.5, 1));
    }
}
