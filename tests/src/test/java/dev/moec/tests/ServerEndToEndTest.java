package dev.moec.tests;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.moec.capture.Artifact;
import dev.moec.executor.CompiledModel;
import dev.moec.serving.BatchScheduler;
import dev.moec.serving.OpenAiServer;
import dev.moec.serving.TextTokenizer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.concurrent.CompletableFuture;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Service level: the demo model served on a free port, driven by a real HTTP client. */
class ServerEndToEndTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static OpenAiServer server;
    static HttpClient http = HttpClient.newHttpClient();
    static String base;

    @BeforeAll static void start() {
        Artifact artifact = Artifact.open(Fixtures.demoArtifact());
        CompiledModel model = new CompiledModel(artifact, 8, 256, 2);
        TextTokenizer tokenizer = TextTokenizer.load(artifact.tokenizerDir());
        var eos = new HashSet<>(artifact.manifest().model().eosTokenIds());
        server = OpenAiServer.start(new OpenAiServer.Model("pydocs-moe-tiny", tokenizer, eos, new BatchScheduler(model)), "127.0.0.1", 0);
        base = "http://127.0.0.1:" + server.port();
    }

    @AfterAll static void stop() {
        server.close();
    }

    @Test void healthAndModels() throws Exception {
        HttpResponse<String> h = get("/health");
        assertEquals(200, h.statusCode());
        assertEquals("ok", JSON.readTree(h.body()).get("status").asText());
        JsonNode models = JSON.readTree(get("/v1/models").body());
        assertEquals("list", models.get("object").asText());
        assertEquals("pydocs-moe-tiny", models.get("data").get(0).get("id").asText());
    }

    @Test void aGreedyCompletionOverHttpMatchesPyTorch() throws Exception {
        // The README's prompt ids are the text "The Python interpreter"; tokenizer, scheduler and
        // executor together must give PyTorch's 16 greedy ids.
        Fixtures.DemoCase c = Fixtures.demoCase();
        HttpResponse<String> r = post("{\"model\": \"pydocs-moe-tiny\", \"prompt\": \"The Python interpreter\", \"max_tokens\": 16, \"temperature\": 0}");
        assertEquals(200, r.statusCode(), r.body());
        assertTrue(r.headers().firstValue("content-type").orElse("").startsWith("application/json"));
        JsonNode body = JSON.readTree(r.body());
        assertEquals("text_completion", body.get("object").asText());
        JsonNode choice = body.get("choices").get(0);
        assertArrayEquals(c.greedy(), ids(choice.get("token_ids")));
        assertEquals("length", choice.get("finish_reason").asText());
        assertFalse(choice.get("text").asText().isBlank());
        assertEquals(3, body.get("usage").get("prompt_tokens").asInt());
        assertEquals(16, body.get("usage").get("completion_tokens").asInt());
        assertEquals(19, body.get("usage").get("total_tokens").asInt());
    }

    @Test void aStopStringEndsTheCompletionBeforeIt() throws Exception {
        JsonNode full = JSON.readTree(post("{\"prompt\": [542, 448, 1201], \"max_tokens\": 16, \"temperature\": 0}").body()).get("choices").get(0);
        String text = full.get("text").asText();
        String stop = text.strip().substring(0, Math.min(3, text.strip().length()));
        int at = text.indexOf(stop);
        JsonNode cut = JSON.readTree(post("{\"prompt\": [542, 448, 1201], \"max_tokens\": 16, \"temperature\": 0, \"stop\": [\""
                + stop.replace("\"", "\\\"").replace("\n", "\\n") + "\"]}").body()).get("choices").get(0);
        assertEquals("stop", cut.get("finish_reason").asText());
        assertEquals(text.substring(0, at), cut.get("text").asText());
        assertTrue(cut.get("token_ids").size() < 16);
    }

    @Test void concurrentRequestsAreBatchedAndEachGetsItsOwnAnswer() throws Exception {
        Fixtures.DemoCase c = Fixtures.demoCase();
        List<CompletableFuture<HttpResponse<String>>> all = new ArrayList<>();
        for (int i = 0; i < 5; i++) {
            String prompt = i % 2 == 0 ? "[542, 448, 1201]" : "[542, 448]";
            all.add(http.sendAsync(request("/v1/completions", "{\"prompt\": " + prompt + ", \"max_tokens\": 16, \"temperature\": 0}"),
                    HttpResponse.BodyHandlers.ofString()));
        }
        int[] otherPrompt = null;
        for (int i = 0; i < all.size(); i++) {
            HttpResponse<String> r = all.get(i).join();
            assertEquals(200, r.statusCode(), r.body());
            int[] got = ids(JSON.readTree(r.body()).get("choices").get(0).get("token_ids"));
            if (i % 2 == 0) assertArrayEquals(c.greedy(), got, "request " + i);
            else if (otherPrompt == null) otherPrompt = got;
            else assertArrayEquals(otherPrompt, got, "request " + i);
        }
    }

    @Test void malformedRequestsGet400WithAnOpenAiErrorBody() throws Exception {
        assertBadRequest("this is not json", null);
        assertBadRequest("[1, 2]", null);
        assertBadRequest("{\"max_tokens\": 4}", "prompt");
        assertBadRequest("{\"prompt\": \"\"}", "prompt");
        assertBadRequest("{\"prompt\": [1, \"a\"]}", "prompt");
        assertBadRequest("{\"prompt\": \"hi\", \"max_tokens\": 0}", "max_tokens");
        assertBadRequest("{\"prompt\": \"hi\", \"max_tokens\": \"many\"}", "max_tokens");
        assertBadRequest("{\"prompt\": \"hi\", \"temperature\": -1}", "temperature");
        assertBadRequest("{\"prompt\": \"hi\", \"stop\": 7}", "stop");
        assertBadRequest("{\"prompt\": [99999]}", null);
        assertBadRequest("{\"prompt\": \"hi\", \"max_tokens\": 100000}", null);
        HttpResponse<String> wrongModel = post("{\"model\": \"gpt-4\", \"prompt\": \"hi\"}");
        assertEquals(404, wrongModel.statusCode());
        assertEquals("model", JSON.readTree(wrongModel.body()).get("error").get("param").asText());
        assertEquals(404, get("/v1/nothing").statusCode());
    }

    private static void assertBadRequest(String body, String param) throws Exception {
        HttpResponse<String> r = post(body);
        assertEquals(400, r.statusCode(), body + " -> " + r.body());
        JsonNode error = JSON.readTree(r.body()).get("error");
        assertEquals("invalid_request_error", error.get("type").asText());
        assertFalse(error.get("message").asText().isBlank());
        if (param != null) assertEquals(param, error.get("param").asText(), r.body());
    }

    private static int[] ids(JsonNode array) {
        int[] out = new int[array.size()];
        for (int i = 0; i < out.length; i++) out[i] = array.get(i).asInt();
        return out;
    }

    private static HttpResponse<String> get(String path) throws IOException, InterruptedException {
        return http.send(HttpRequest.newBuilder(URI.create(base + path)).GET().build(), HttpResponse.BodyHandlers.ofString());
    }

    private static HttpResponse<String> post(String body) throws IOException, InterruptedException {
        return http.send(request("/v1/completions", body), HttpResponse.BodyHandlers.ofString());
    }

    private static HttpRequest request(String path, String body) {
        return HttpRequest.newBuilder(URI.create(base + path)).header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body)).build();
    }
}
