package dev.moec.ir;

import dev.moec.ir.interp.Reference;
import dev.moec.ir.interp.Semantics;

import java.util.List;

import static dev.moec.ir.AttrSpec.Kind.FLOAT;
import static dev.moec.ir.AttrSpec.Kind.INT;
import static dev.moec.ir.AttrSpec.Kind.SHAPE;
import static dev.moec.ir.AttrSpec.req;

/**
 * The op table: the one place that defines every IR op. Each entry declares its printed name, operands,
 * attributes, number of results, type rule ({@link TypeRules}), reference semantics ({@link Reference}),
 * a one-line example in the printed syntax, and a summary. Printer, verifier, interpreter and
 * {@code moec ir ops} all read this table.
 *
 * <p>Activations are f32 on the reference path; weights keep their checkpoint dtype and are widened
 * as they are read. Linear weights use the Hugging Face layout {@code [out, in]}.
 */
public enum Op {
    /** {@code %x = gather(%embed, %tokens) : f32[T,256]} */
    GATHER("gather", List.of("table", "index"), List.of(), 1, TypeRules::gather, Reference::gather,
            "%x = gather(%embed, %tokens) : f32[T,256]",
            "Rows of table[N, ...] picked by integer index[...]: the embedding lookup, and picking logit rows."),

    /** {@code %h = rms_norm(%x, %w) {eps = 1.0E-6} : f32[T,256]} */
    RMS_NORM("rms_norm", List.of("x", "weight"), List.of(req("eps", FLOAT)), 1, TypeRules::rmsNorm, Reference::rmsNorm,
            "%h = rms_norm(%x, %w) {eps = 1.0E-6} : f32[T,256]",
            "x / sqrt(mean(x^2, last) + eps) * weight, over the last dimension (per head when x is [T,heads,d])."),

    /** {@code %q = matmul(%h, %wq) : f32[T,512]} */
    MATMUL("matmul", List.of("x", "weight"), List.of(), 1, TypeRules::matmul, Reference::matmul,
            "%q = matmul(%h, %wq) : f32[T,512]",
            "x[..., K] times weight[N, K] transposed (the Hugging Face Linear layout): result [..., N]."),

    /** {@code %qh = reshape(%q) {shape = [T,4,128]} : f32[T,4,128]} */
    RESHAPE("reshape", List.of("x"), List.of(req("shape", SHAPE)), 1, TypeRules::reshape, Reference::reshape,
            "%qh = reshape(%q) {shape = [T,4,128]} : f32[T,4,128]",
            "The same elements in row-major order under a new shape."),

    /** {@code %qr = rope(%qh, %positions) {rotary_dim = 128, theta = 1000000.0} : f32[T,4,128]} */
    ROPE("rope", List.of("x", "positions"), List.of(req("theta", FLOAT), req("rotary_dim", INT)), 1,
            TypeRules::rope, Reference::rope,
            "%qr = rope(%qh, %positions) {rotary_dim = 128, theta = 1000000.0} : f32[T,4,128]",
            "Rotary embedding, NeoX pairing (i, i + rotary_dim/2) over the first rotary_dim dims of each head."),

    /** {@code %kc1 = kv_write(%kc, %k, %slots, %positions) : f32[S,L,2,128]} */
    KV_WRITE("kv_write", List.of("cache", "kv", "slots", "positions"), List.of(), 1, TypeRules::kvWrite, Reference::kvWrite,
            "%kc1 = kv_write(%kc, %k, %slots, %positions) : f32[S,L,2,128]",
            "New cache version: cache[slots[t], positions[t]] = kv[t] for every token t (slot < 0: padding, skipped)."),

    /** {@code %a = attention(%qr, %kc1, %vc1, %slots, %positions) {scale = 0.088} : f32[T,4,128]} */
    ATTENTION("attention", List.of("q", "k_cache", "v_cache", "slots", "positions"), List.of(req("scale", FLOAT)), 1,
            TypeRules::attention, Reference::attention,
            "%a = attention(%qr, %kc1, %vc1, %slots, %positions) {scale = 0.08838834764831845} : f32[T,4,128]",
            "Causal GQA: token t attends to cache[slots[t], 0..positions[t]]; query head h reads KV head h/(H/KVH)."),

    /** {@code %p = softmax(%r) : f32[T,8]} */
    SOFTMAX("softmax", List.of("x"), List.of(), 1, TypeRules::sameAsFirst, Reference::softmax,
            "%p = softmax(%r) : f32[T,8]",
            "exp(x - max) / sum, over the last dimension."),

    /** {@code %w, %e = topk(%p) {k = 2} : f32[T,2], i32[T,2]} */
    TOPK("topk", List.of("x"), List.of(req("k", INT)), 2, TypeRules::topk, Reference::topk,
            "%w, %e = topk(%p) {k = 2} : f32[T,2], i32[T,2]",
            "The k largest values of the last dimension, descending (ties: lower index first), and their indices."),

    /** {@code %wn = renorm(%w) : f32[T,2]} */
    RENORM("renorm", List.of("x"), List.of(), 1, TypeRules::sameAsFirst, Reference::renorm,
            "%wn = renorm(%w) : f32[T,2]",
            "x / sum(x) over the last dimension: the router's norm_topk_prob."),

    /** {@code %y = moe_experts(%h, %wn, %e, %wg, %wu, %wd) : f32[T,256]} */
    MOE_EXPERTS("moe_experts", List.of("x", "weights", "experts", "w_gate", "w_up", "w_down"), List.of(), 1,
            TypeRules::moeExperts, Reference::moeExperts,
            "%y = moe_experts(%h, %wn, %e, %wg, %wu, %wd) : f32[T,256]",
            "sum_k weights[t,k] * w_down[e] @ (silu(w_gate[e] @ x[t]) * (w_up[e] @ x[t])), e = experts[t,k]."),

    /** {@code %g = silu(%x) : f32[T,512]} */
    SILU("silu", List.of("x"), List.of(), 1, TypeRules::sameAsFirst, Reference::silu,
            "%g = silu(%x) : f32[T,512]",
            "x * sigmoid(x), elementwise."),

    /** {@code %y = mul(%a, %b) : f32[T,512]} */
    MUL("mul", List.of("a", "b"), List.of(), 1, TypeRules::elementwise, Reference::mul,
            "%y = mul(%a, %b) : f32[T,512]",
            "a * b, elementwise over equal shapes."),

    /** {@code %y = add(%a, %b) : f32[T,256]} */
    ADD("add", List.of("a", "b"), List.of(), 1, TypeRules::elementwise, Reference::add,
            "%y = add(%a, %b) : f32[T,256]",
            "a + b, elementwise over equal shapes: the residual connection.");

    private final String text;
    private final List<String> operandNames;
    private final List<AttrSpec> attrs;
    private final int resultCount;
    private final TypeRule typeRule;
    private final Semantics semantics;
    private final String example;
    private final String summary;

    Op(String text, List<String> operandNames, List<AttrSpec> attrs, int resultCount, TypeRule typeRule,
       Semantics semantics, String example, String summary) {
        this.text = text;
        this.operandNames = operandNames;
        this.attrs = attrs;
        this.resultCount = resultCount;
        this.typeRule = typeRule;
        this.semantics = semantics;
        this.example = example;
        this.summary = summary;
    }

    public String text() { return text; }
    public List<String> operandNames() { return operandNames; }
    public List<AttrSpec> attrs() { return attrs; }
    public int resultCount() { return resultCount; }
    public TypeRule typeRule() { return typeRule; }
    public Semantics semantics() { return semantics; }
    public String example() { return example; }
    public String summary() { return summary; }

    public static Op byName(String text) {
        for (Op op : values()) if (op.text.equals(text)) return op;
        throw new IllegalArgumentException("unknown op '" + text + "'");
    }

    /** Result types of this op for the given operand types, or a {@link TypeError}. */
    public List<TensorType> inferTypes(List<TensorType> operands, Attrs attrs) {
        if (operands.size() != operandNames.size()) {
            throw new TypeError("operand-count", text + " takes " + operandNames.size() + " operands "
                    + operandNames + ", got " + operands.size());
        }
        for (AttrSpec spec : this.attrs) {
            Object v = attrs.values().get(spec.name());
            if (v == null && spec.required()) throw new TypeError("attr-missing", text + " needs attribute '" + spec.name() + "'");
            if (v != null && !spec.kind().accepts(v)) {
                throw new TypeError("attr-kind", text + " attribute '" + spec.name() + "' must be " + spec.kind() + ", got " + Attrs.format(v));
            }
        }
        for (String name : attrs.values().keySet()) {
            if (this.attrs.stream().noneMatch(a -> a.name().equals(name))) {
                throw new TypeError("attr-unknown", text + " has no attribute '" + name + "'");
            }
        }
        List<TensorType> out = typeRule.infer(operands, attrs);
        if (out.size() != resultCount) throw new IllegalStateException("type rule of " + text + " gave " + out.size() + " results");
        return out;
    }

    /** A type rule: result types from operand types and attributes; throws {@link TypeError}. */
    @FunctionalInterface
    public interface TypeRule {
        List<TensorType> infer(List<TensorType> operands, Attrs attrs);
    }
}
