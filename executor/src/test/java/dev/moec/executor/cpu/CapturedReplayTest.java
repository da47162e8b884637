package dev.moec.executor.cpu;

import dev.moec.backend.Kernel;
import dev.moec.ir.Attrs;
import dev.moec.ir.DType;
import org.junit.jupiter.api.Test;

import java.lang.classfile.Attributes;
import java.lang.classfile.ClassFile;
import java.lang.classfile.MethodModel;
import java.util.Arrays;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The generated straight-line replay runs every launch once, in order, across its split methods, each small enough to compile. */
class CapturedReplayTest {
    @Test void everyLaunchRunsOnceInOrderAcrossMethods() {
        int launches = 2 * CapturedReplay.LAUNCHES_PER_METHOD + 37;
        Buf acc = new Buf("acc", DType.F32, new int[] {3}, new float[3], null, null);
        Buf one = new Buf("one", DType.F32, new int[] {3}, new float[] {1, 2, 3}, null, null);
        Buf twice = new Buf("twice", DType.F32, new int[] {3}, new float[3], null, null);
        Kernel[] kernels = new Kernel[launches];
        Buf[][] ins = new Buf[launches][], outs = new Buf[launches][];
        Attrs[] attrs = new Attrs[launches];
        for (int l = 0; l < launches; l++) {
            boolean last = l == launches - 1;                     // the last launch reads what all the others wrote
            kernels[l] = last ? Kernel.MUL : Kernel.ADD;
            ins[l] = new Buf[] {acc, one};
            outs[l] = last ? new Buf[] {twice} : new Buf[] {acc};
            attrs[l] = Attrs.of();
        }
        CapturedReplay.generate("test_graph", kernels).run(new CpuKernels(new Parallel(1)), ins, outs, attrs, new CpuKernels.Ahead[kernels.length]);
        float n = launches - 1;
        assertArrayEquals(new float[] {n, 2 * n, 3 * n}, acc.f);
        assertArrayEquals(new float[] {n, 4 * n, 9 * n}, twice.f, Arrays.toString(twice.f));
    }

    /** Every generated method stays small enough for the JIT to compile it: a huge one would run interpreted each step. */
    @Test void everyMethodIsSmallEnoughToCompile() {
        Kernel[] kernels = new Kernel[3 * CapturedReplay.LAUNCHES_PER_METHOD + 5];
        Arrays.fill(kernels, Kernel.FUSED_INFER_ATTENTION);
        Map<String, Integer> sizes = new TreeMap<>();
        for (MethodModel m : ClassFile.of().parse(CapturedReplay.bytecode("big", kernels)).methods()) {
            sizes.put(m.methodName().stringValue(), m.findAttribute(Attributes.code()).orElseThrow().codeLength());
        }
        assertEquals(Set.of("<init>", "run", "run0", "run1", "run2", "run3"), sizes.keySet());
        sizes.forEach((name, bytes) -> assertTrue(bytes <= CapturedReplay.HUGE_METHOD_BYTES, name + ": " + bytes + " bytes of bytecode"));
        assertTrue(sizes.get("run0") > CapturedReplay.HUGE_METHOD_BYTES / 2, "run0 holds " + CapturedReplay.LAUNCHES_PER_METHOD + " launches in " + sizes.get("run0") + " bytes");
    }
}
