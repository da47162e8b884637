package dev.moec.executor;

import java.util.SplittableRandom;

/**
 * Picks the next token from a row of logits. Temperature 0 is greedy (argmax, the lowest id on ties);
 * otherwise softmax(logits / temperature) is sampled with a seeded generator, so a seed reproduces a run.
 */
public final class Sampler {
    private final double temperature;
    private final SplittableRandom random;

    private Sampler(double temperature, long seed) {
        if (!(temperature >= 0) || Double.isInfinite(temperature)) throw new IllegalArgumentException("temperature must be a finite number >= 0, got " + temperature);
        this.temperature = temperature;
        this.random = new SplittableRandom(seed);
    }

    public static Sampler greedy() { return new Sampler(0, 0); }
    public static Sampler temperature(double temperature, long seed) { return new Sampler(temperature, seed); }

    public boolean isGreedy() { return temperature == 0; }

    public int sample(float[] logits) {
        if (temperature == 0) return argmax(logits);
        double max = Double.NEGATIVE_INFINITY;
        for (float l : logits) max = Math.max(max, l);
        double[] p = new double[logits.length];
        double sum = 0;
        for (int i = 0; i < logits.length; i++) sum += p[i] = Math.exp((logits[i] - max) / temperature);
        double u = random.nextDouble() * sum;
        for (int i = 0; i < p.length; i++) {
            u -= p[i];
            if (u < 0) return i;
        }
        return argmax(logits);
    }

    /**
     * The next token from row {@code logitRow} of the step the model runs now: a greedy sampler asks the
     * model for the row's argmax ({@link StepModel#greedy}: no logits handed out); another samples the
     * row's logits.
     */
    public int next(StepModel model, int[] tokens, int[] positions, int[] slots, int logitRow) {
        int[] rows = {logitRow};
        return isGreedy() ? model.greedy(tokens, positions, slots, rows)[0] : sample(model.step(tokens, positions, slots, rows)[0]);
    }

    /** The first index of the largest logit (a NaN is never the largest), in vectors ({@link dev.moec.executor.cpu.Simd#argmax}). */
    public static int argmax(float[] logits) { return dev.moec.executor.cpu.Simd.argmax(logits, 0, logits.length); }
}
