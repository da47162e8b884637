package dev.moec.passes;

import dev.moec.ir.Attrs;
import dev.moec.ir.Graph;
import dev.moec.ir.Node;
import dev.moec.ir.Op;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * {@code fuse-rope}: each rope splits into its cos/sin table and the rotation the Ascend kernel applies.
 * The table depends only on positions and the rope settings, so cse leaves one per step for q, k and every
 * layer that share them.
 * <pre>  rope(x, pos){a}  ->  cos, sin = rope_cos_sin(pos){a}; apply_rotary(x, cos, sin){rotary_dim, interleaved}</pre>
 */
public final class FuseRope implements Pass {
    @Override public String name() { return "fuse-rope"; }

    @Override
    public Graph run(Graph g) {
        Rewrite rw = new Rewrite(g);
        for (Node n : g.nodes()) {
            if (n.op() != Op.ROPE) {
                rw.keep(n);
                continue;
            }
            String base = n.result().name();
            List<dev.moec.ir.Value> table = rw.emit(Op.ROPE_COS_SIN, List.of(base + ".cos", base + ".sin"), n.attrs(), n.operand(1));
            Map<String, Object> rot = new LinkedHashMap<>();
            rot.put("rotary_dim", n.attrs().i("rotary_dim"));
            if (n.attrs().has("interleaved")) rot.put("interleaved", n.attrs().b("interleaved"));
            rw.release(n.result());
            rw.replace(n.result(), rw.emit(Op.APPLY_ROTARY, base, new Attrs(rot), n.operand(0), table.get(0), table.get(1)));
            rw.drop(n);
        }
        return rw.finish();
    }
}
