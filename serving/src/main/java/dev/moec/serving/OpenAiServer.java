package dev.moec.serving;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.moec.executor.Sampler;
import io.helidon.http.HeaderNames;
import io.helidon.http.Status;
import io.helidon.webserver.WebServer;
import io.helidon.webserver.http.HttpRouting;
import io.helidon.webserver.http.ServerRequest;
import io.helidon.webserver.http.ServerResponse;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ExecutionException;

/**
 * The OpenAI-compatible HTTP API on Helidon SE (one virtual thread per request):
 * {@code GET /health}, {@code GET /v1/models}, {@code POST /v1/completions}. A malformed request gets 400
 * with an OpenAI-style {@code {"error": {"message", "type", "param", "code"}}} body.
 */
public final class OpenAiServer implements AutoCloseable {
    private static final ObjectMapper JSON = new ObjectMapper();

    /** What the server serves: a model name, its tokenizer, its stop ids, and the scheduler running it. */
    public record Model(String name, TextTokenizer tokenizer, Set<Integer> eosIds, BatchScheduler scheduler) {}

    private final Model model;
    private final WebServer server;
    private final long created = System.currentTimeMillis() / 1000;

    private OpenAiServer(Model model, String host, int port) {
        this.model = model;
        this.server = WebServer.builder().host(host).port(port).routing(this::routes).build().start();
    }

    public static OpenAiServer start(Model model, String host, int port) { return new OpenAiServer(model, host, port); }

    public int port() { return server.port(); }

    private void routes(HttpRouting.Builder r) {
        r.get("/health", (req, res) -> json(res, Status.OK_200, JSON.createObjectNode().put("status", "ok")));
        r.get("/v1/models", this::models);
        r.post("/v1/completions", this::completions);
        r.any((req, res) -> error(res, Status.NOT_FOUND_404, "invalid_request_error", null,
                "no route for " + req.prologue().method().text() + " " + req.path().path()));
    }

    private void models(ServerRequest req, ServerResponse res) {
        ObjectNode body = JSON.createObjectNode().put("object", "list");
        body.putArray("data").addObject().put("id", model.name()).put("object", "model").put("created", created).put("owned_by", "moec");
        json(res, Status.OK_200, body);
    }

    private void completions(ServerRequest req, ServerResponse res) {
        CompletionRequest c;
        try {
            c = CompletionRequest.parse(req.content().as(String.class), model);
        } catch (BadRequest e) {
            error(res, Status.BAD_REQUEST_400, "invalid_request_error", e.param, e.getMessage());
            return;
        }
        if (c.modelName != null && !c.modelName.equals(model.name())) {
            error(res, Status.NOT_FOUND_404, "invalid_request_error", "model", "the model '" + c.modelName + "' does not exist; this server serves '" + model.name() + "'");
            return;
        }
        BatchScheduler.Completion done;
        try {
            done = model.scheduler().submit(new BatchScheduler.Request(c.prompt, c.maxTokens, c.sampler, model.eosIds(), c.stopCheck(model.tokenizer()))).get();
        } catch (IllegalArgumentException e) {
            error(res, Status.BAD_REQUEST_400, "invalid_request_error", null, e.getMessage());
            return;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            error(res, Status.SERVICE_UNAVAILABLE_503, "server_error", null, "interrupted");
            return;
        } catch (ExecutionException e) {
            error(res, Status.INTERNAL_SERVER_ERROR_500, "server_error", null, "generation failed: " + e.getCause());
            return;
        }
        String text = c.trimAtStop(model.tokenizer().decode(withoutEos(done.tokens())));
        ObjectNode body = JSON.createObjectNode();
        body.put("id", "cmpl-" + UUID.randomUUID().toString().replace("-", ""));
        body.put("object", "text_completion");
        body.put("created", System.currentTimeMillis() / 1000);
        body.put("model", model.name());
        ObjectNode choice = body.putArray("choices").addObject();
        choice.put("index", 0).put("text", text).putNull("logprobs").put("finish_reason", done.finish());
        ArrayNode ids = choice.putArray("token_ids");
        for (int t : done.tokens()) ids.add(t);
        body.putObject("usage").put("prompt_tokens", c.prompt.length).put("completion_tokens", done.tokens().length)
                .put("total_tokens", c.prompt.length + done.tokens().length);
        json(res, Status.OK_200, body);
    }

    private int[] withoutEos(int[] tokens) {
        int n = tokens.length;
        if (n > 0 && model.eosIds().contains(tokens[n - 1])) n--;
        return java.util.Arrays.copyOf(tokens, n);
    }

    /** The fields of a completion request, validated. */
    private static final class CompletionRequest {
        String modelName;
        int[] prompt;
        int maxTokens = 16;
        Sampler sampler;
        List<String> stop = List.of();

        static CompletionRequest parse(String body, Model model) {
            JsonNode n;
            try {
                n = JSON.readTree(body);
            } catch (Exception e) {
                throw new BadRequest(null, "the body is not valid JSON: " + e.getMessage().lines().findFirst().orElse(""));
            }
            if (n == null || !n.isObject()) throw new BadRequest(null, "the body must be a JSON object");
            CompletionRequest c = new CompletionRequest();
            if (n.hasNonNull("model")) {
                if (!n.get("model").isTextual()) throw new BadRequest("model", "'model' must be a string");
                c.modelName = n.get("model").asText();
            }
            JsonNode p = n.get("prompt");
            if (p == null || p.isNull()) throw new BadRequest("prompt", "'prompt' is required");
            if (p.isTextual()) {
                if (p.asText().isEmpty()) throw new BadRequest("prompt", "'prompt' is empty");
                c.prompt = model.tokenizer().encode(p.asText());
                if (c.prompt.length == 0) throw new BadRequest("prompt", "'prompt' encodes to no tokens");
            } else if (p.isArray() && !p.isEmpty() && allInts(p)) {
                c.prompt = new int[p.size()];
                for (int i = 0; i < p.size(); i++) c.prompt[i] = p.get(i).asInt();
            } else {
                throw new BadRequest("prompt", "'prompt' must be a non-empty string or a non-empty array of token ids (one prompt per request)");
            }
            if (n.has("max_tokens") && !n.get("max_tokens").isNull()) {
                JsonNode m = n.get("max_tokens");
                if (!m.isIntegralNumber() || m.asLong() < 1 || m.asLong() > Integer.MAX_VALUE) throw new BadRequest("max_tokens", "'max_tokens' must be an integer >= 1");
                c.maxTokens = m.asInt();
            }
            double temperature = 1.0;
            if (n.has("temperature") && !n.get("temperature").isNull()) {
                JsonNode t = n.get("temperature");
                if (!t.isNumber() || t.asDouble() < 0 || t.asDouble() > 2) throw new BadRequest("temperature", "'temperature' must be a number between 0 and 2");
                temperature = t.asDouble();
            }
            long seed = System.nanoTime();
            if (n.has("seed") && !n.get("seed").isNull()) {
                if (!n.get("seed").isIntegralNumber()) throw new BadRequest("seed", "'seed' must be an integer");
                seed = n.get("seed").asLong();
            }
            c.sampler = temperature == 0 ? Sampler.greedy() : Sampler.temperature(temperature, seed);
            JsonNode s = n.get("stop");
            if (s != null && !s.isNull()) {
                List<String> stops = new ArrayList<>();
                if (s.isTextual()) stops.add(s.asText());
                else if (s.isArray() && s.size() <= 4) s.forEach(x -> stops.add(x.isTextual() ? x.asText() : null));
                if (stops.isEmpty() && !(s.isArray() && s.isEmpty()) || stops.contains(null) || stops.contains("")) {
                    throw new BadRequest("stop", "'stop' must be a non-empty string or an array of up to 4 non-empty strings");
                }
                c.stop = stops;
            }
            return c;
        }

        private static boolean allInts(JsonNode array) {
            for (JsonNode x : array) if (!x.isIntegralNumber()) return false;
            return true;
        }

        java.util.function.Predicate<int[]> stopCheck(TextTokenizer tokenizer) {
            if (stop.isEmpty()) return null;
            return tokens -> {
                String text = tokenizer.decode(tokens);
                return stop.stream().anyMatch(text::contains);
            };
        }

        /** The text up to (not including) the first stop string. */
        String trimAtStop(String text) {
            int cut = text.length();
            for (String s : stop) {
                int i = text.indexOf(s);
                if (i >= 0) cut = Math.min(cut, i);
            }
            return text.substring(0, cut);
        }
    }

    private static final class BadRequest extends RuntimeException {
        final String param;

        BadRequest(String param, String message) {
            super(message);
            this.param = param;
        }
    }

    private static void error(ServerResponse res, Status status, String type, String param, String message) {
        ObjectNode body = JSON.createObjectNode();
        ObjectNode e = body.putObject("error");
        e.put("message", message).put("type", type);
        if (param == null) e.putNull("param"); else e.put("param", param);
        e.putNull("code");
        json(res, status, body);
    }

    private static void json(ServerResponse res, Status status, JsonNode body) {
        res.status(status);
        res.header(HeaderNames.CONTENT_TYPE, "application/json");
        try {
            res.send(JSON.writeValueAsString(body));
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }


    @Override
    public void close() {
        server.stop();
        model.scheduler().close();
    }
}
