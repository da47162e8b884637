package dev.moec.serving;

import dev.moec.executor.Sampler;
import dev.moec.executor.StepModel;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.function.Predicate;

/**
 * Continuous batching over one {@link StepModel}. One engine thread owns the model: it admits queued
 * requests into free cache slots (one prefill step each), then runs one decode step for every running
 * sequence together, so sequences join and leave the batch between steps. The executor picks the
 * captured graph that fits the live batch.
 */
public final class BatchScheduler implements AutoCloseable {
    /**
     * A request: prompt ids, at most {@code maxTokens} new tokens, stop at any id in {@code stopIds} or
     * when {@code stopWhen} says so of the tokens so far (stop strings are checked that way).
     */
    public record Request(int[] prompt, int maxTokens, Sampler sampler, Set<Integer> stopIds, Predicate<int[]> stopWhen) {}

    /** {@code finish} is {@code stop} or {@code length}. */
    public record Completion(int[] tokens, String finish) {}

    private record Pending(Request request, CompletableFuture<Completion> future) {}

    private static final class Running {
        final Pending pending;
        final int slot;
        int[] tokens = new int[0];
        int position;

        Running(Pending pending, int slot) {
            this.pending = pending;
            this.slot = slot;
        }
    }

    private final StepModel model;
    private final ArrayDeque<Pending> queue = new ArrayDeque<>();
    private final boolean[] slotUsed;
    private final List<Running> running = new ArrayList<>();
    private final Thread engine;
    private volatile boolean stopped;
    private long steps;

    public BatchScheduler(StepModel model) {
        this.model = model;
        this.slotUsed = new boolean[model.maxSlots()];
        this.engine = Thread.ofPlatform().name("moec-engine").daemon().start(this::loop);
    }

    public CompletableFuture<Completion> submit(Request r) {
        if (r.prompt().length == 0) throw new IllegalArgumentException("the prompt is empty");
        if (r.maxTokens() < 1) throw new IllegalArgumentException("max_tokens must be at least 1");
        if (r.prompt().length + r.maxTokens() > model.maxSeqLen()) {
            throw new IllegalArgumentException("the prompt (" + r.prompt().length + " tokens) plus max_tokens (" + r.maxTokens()
                    + ") exceed the context length of " + model.maxSeqLen());
        }
        for (int id : r.prompt()) {
            if (id < 0 || id >= model.vocabSize()) throw new IllegalArgumentException("token id " + id + " is outside the vocabulary 0.." + (model.vocabSize() - 1));
        }
        CompletableFuture<Completion> f = new CompletableFuture<>();
        synchronized (queue) {
            if (stopped) throw new IllegalStateException("the scheduler is shut down");
            queue.add(new Pending(r, f));
            queue.notifyAll();
        }
        return f;
    }

    public long steps() { return steps; }

    private void loop() {
        while (!stopped) {
            try {
                admit();
                if (running.isEmpty()) continue;
                decodeStep();
            } catch (InterruptedException e) {
                return;
            } catch (RuntimeException e) {
                // A failed step fails the sequences in it, never the engine.
                for (Running r : running) fail(r, e);
                running.clear();
            }
        }
    }

    /** Prefills queued requests into free slots; blocks while there is nothing at all to do. */
    private void admit() throws InterruptedException {
        while (true) {
            Pending p;
            int slot;
            synchronized (queue) {
                while (queue.isEmpty() && running.isEmpty() && !stopped) queue.wait();
                if (stopped || queue.isEmpty()) return;
                slot = freeSlot();
                if (slot < 0) return;
                // The sequence's KV blocks, all of them up front: a running sequence never waits for a block.
                // When the pool is short, the request waits in the queue until a finished sequence returns some.
                Request head = queue.peek().request();
                if (!model.kvBlocks().reserve(slot, head.prompt().length + head.maxTokens())) {
                    if (running.isEmpty()) {
                        Pending refused = queue.poll();
                        refused.future().completeExceptionally(new IllegalStateException("the KV cache has " + model.kvBlocks().blocks()
                                + " blocks of " + model.kvBlocks().blockSize() + " positions, too few for a prompt of " + head.prompt().length
                                + " tokens plus max_tokens " + head.maxTokens() + " (raise --kv-cache-blocks)"));
                        continue;
                    }
                    return;
                }
                p = queue.poll();
            }
            if (p.future().isCancelled()) {
                model.kvBlocks().release(slot);
                continue;
            }
            Running r = new Running(p, slot);
            slotUsed[slot] = true;
            try {
                int[] prompt = p.request().prompt();
                int[] positions = new int[prompt.length], slots = new int[prompt.length];
                for (int i = 0; i < prompt.length; i++) {
                    positions[i] = i;
                    slots[i] = slot;
                }
                int token = p.request().sampler().next(model, prompt, positions, slots, prompt.length - 1);
                steps++;
                r.position = prompt.length;
                if (!accept(r, token)) running.add(r);
            } catch (RuntimeException e) {
                fail(r, e);
            }
        }
    }

    private void decodeStep() {
        int n = running.size();
        int[] tokens = new int[n], positions = new int[n], slots = new int[n], rows = new int[n];
        for (int i = 0; i < n; i++) {
            Running r = running.get(i);
            tokens[i] = r.tokens[r.tokens.length - 1];
            positions[i] = r.position;
            slots[i] = r.slot;
            rows[i] = i;
        }
        // Where every running request decodes greedily, the model gives the argmax of each row without
        // handing out its logits (151,936 floats a row for Qwen3).
        int[] next;
        if (running.stream().allMatch(r -> r.pending.request().sampler().isGreedy())) {
            next = model.greedy(tokens, positions, slots, rows);
        } else {
            float[][] logits = model.step(tokens, positions, slots, rows);
            next = new int[n];
            for (int i = 0; i < n; i++) next[i] = running.get(i).pending.request().sampler().sample(logits[i]);
        }
        steps++;
        List<Running> still = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            Running r = running.get(i);
            r.position++;
            if (!accept(r, next[i])) still.add(r);
        }
        running.clear();
        running.addAll(still);
    }

    /** Appends a token; returns true (and completes the request) if the sequence is finished. */
    private boolean accept(Running r, int token) {
        Request q = r.pending.request();
        r.tokens = Arrays.copyOf(r.tokens, r.tokens.length + 1);
        r.tokens[r.tokens.length - 1] = token;
        String finish = null;
        if (q.stopIds().contains(token) || (q.stopWhen() != null && q.stopWhen().test(r.tokens))) finish = "stop";
        else if (r.tokens.length >= q.maxTokens() || r.pending.future().isCancelled()) finish = "length";
        if (finish == null) return false;
        freeSlot(r);
        r.pending.future().complete(new Completion(r.tokens, finish));
        return true;
    }

    private void fail(Running r, RuntimeException e) {
        freeSlot(r);
        r.pending.future().completeExceptionally(e);
    }

    /** The sequence has ended: its slot and KV blocks go back. */
    private void freeSlot(Running r) {
        model.kvBlocks().release(r.slot);
        slotUsed[r.slot] = false;
    }

    private int freeSlot() {
        for (int s = 0; s < slotUsed.length; s++) if (!slotUsed[s]) return s;
        return -1;
    }

    @Override
    public void close() {
        synchronized (queue) {
            stopped = true;
            queue.forEach(p -> p.future().completeExceptionally(new IllegalStateException("server shutting down")));
            queue.clear();
            queue.notifyAll();
        }
        engine.interrupt();
    }
}
