package dev.moec.capture;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.moec.backend.Kernel;
import dev.moec.backend.KernelGraph;
import dev.moec.ir.Attrs;
import dev.moec.ir.Shape;
import dev.moec.ir.TensorType;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** The JSON form of a {@link KernelGraph} inside an artifact. Attribute kinds survive the round trip. */
final class KernelGraphJson {
    private KernelGraphJson() {}

    static ObjectNode write(ObjectMapper json, KernelGraph g) {
        ObjectNode root = json.createObjectNode();
        root.put("name", g.name());
        ArrayNode buffers = root.putArray("buffers");
        for (KernelGraph.Buffer b : g.buffers()) {
            ObjectNode n = buffers.addObject();
            n.put("name", b.name());
            n.put("type", b.type().toString());
            n.put("role", b.role().name().toLowerCase());
            if (b.source() != null) n.put("source", b.source());
            if (!b.layout().equals("nd")) n.put("layout", b.layout());
            if (b.offset() != 0) n.put("offset", b.offset());
        }
        ArrayNode launches = root.putArray("launches");
        for (KernelGraph.Launch l : g.launches()) {
            ObjectNode n = launches.addObject();
            n.put("kernel", l.kernel().name().toLowerCase());
            n.put("ascend", l.kernel().ascendOperator());
            l.inputs().forEach(n.putArray("inputs")::add);
            l.outputs().forEach(n.putArray("outputs")::add);
            n.set("attrs", attrs(json, l.attrs()));
        }
        g.outputs().forEach(root.putArray("outputs")::add);
        ArrayNode derived = root.putArray("derived");
        for (KernelGraph.Derivation d : g.derived()) {
            ObjectNode n = derived.addObject();
            n.put("name", d.name()).put("op", d.op().text()).put("result", d.result());
            d.operands().forEach(n.putArray("operands")::add);
            d.operandTypes().forEach(t -> n.withArray("operand_types").add(t.toString()));
            n.set("attrs", attrs(json, d.attrs()));
        }
        return root;
    }

    private static ObjectNode attrs(ObjectMapper json, Attrs a) {
        ObjectNode attrs = json.createObjectNode();
        a.values().forEach((k, v) -> {
            switch (v) {
                case Long x -> attrs.put(k, x);
                case Double x -> attrs.putObject(k).put("float", x);
                case Boolean x -> attrs.put(k, x);
                case String x -> attrs.put(k, x);
                case Shape x -> attrs.putObject(k).put("shape", x.toString());
                default -> throw new IllegalStateException("attribute " + k + " = " + v);
            }
        });
        return attrs;
    }

    private static Attrs readAttrs(JsonNode node) {
        Map<String, Object> attrs = new LinkedHashMap<>();
        node.properties().forEach(e -> {
            JsonNode v = e.getValue();
            Object value;
            if (v.isObject() && v.has("float")) value = v.get("float").asDouble();
            else if (v.isObject() && v.has("shape")) value = TensorType.parse("f32" + v.get("shape").asText()).shape();
            else if (v.isBoolean()) value = v.asBoolean();
            else if (v.isIntegralNumber()) value = v.asLong();
            else value = v.asText();
            attrs.put(e.getKey(), value);
        });
        return new Attrs(attrs);
    }

    static KernelGraph read(JsonNode root) {
        List<KernelGraph.Buffer> buffers = new ArrayList<>();
        for (JsonNode n : root.path("buffers")) {
            buffers.add(new KernelGraph.Buffer(n.path("name").asText(), TensorType.parse(n.path("type").asText()),
                    KernelGraph.Role.valueOf(n.path("role").asText().toUpperCase()), n.has("source") ? n.get("source").asText() : null,
                    n.path("layout").asText("nd"), n.path("offset").asLong(0)));
        }
        List<KernelGraph.Launch> launches = new ArrayList<>();
        for (JsonNode n : root.path("launches")) {
            launches.add(new KernelGraph.Launch(Kernel.valueOf(n.path("kernel").asText().toUpperCase()), strings(n.path("inputs")),
                    strings(n.path("outputs")), readAttrs(n.path("attrs"))));
        }
        List<KernelGraph.Derivation> derived = new ArrayList<>();
        for (JsonNode n : root.path("derived")) {
            derived.add(new KernelGraph.Derivation(n.path("name").asText(), dev.moec.ir.Op.byName(n.path("op").asText()), strings(n.path("operands")),
                    strings(n.path("operand_types")).stream().map(TensorType::parse).toList(), readAttrs(n.path("attrs")), n.path("result").asInt()));
        }
        return new KernelGraph(root.path("name").asText(), buffers, launches, strings(root.path("outputs")), derived);
    }

    private static List<String> strings(JsonNode array) {
        List<String> out = new ArrayList<>();
        array.forEach(n -> out.add(n.asText()));
        return out;
    }
}
