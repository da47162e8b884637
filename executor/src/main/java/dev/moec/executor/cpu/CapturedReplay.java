package dev.moec.executor.cpu;

import dev.moec.backend.Kernel;
import dev.moec.ir.Attrs;
import org.objectweb.asm.ClassWriter;
import org.objectweb.asm.MethodVisitor;
import org.objectweb.asm.Opcodes;
import org.objectweb.asm.Type;

import java.lang.invoke.MethodHandles;

/**
 * A bound decode graph's launch list compiled, with ASM, into a hidden class whose {@code run} method is
 * the straight-line launch sequence: each launch a direct call of {@link CpuKernels#launch} with its
 * kernel as a constant and its bound buffers and attributes loaded from fixed slots, with no loop and no
 * per-step lookups. The buffers are the graph's, bound once: each activation a constant offset in the
 * graph's arena (see {@link CpuGraph}). The class is generated once per graph at load; {@code --no-capture} replays the same
 * launches from the interpreted loop in {@link CpuGraph} instead, so the two can be compared.
 */
final class CapturedReplay {
    private CapturedReplay() {}

    /** What the generated class implements. */
    public interface Replay {
        void run(CpuKernels k, Buf[][] ins, Buf[][] outs, Attrs[] attrs, CpuKernels.Ahead[] ahead);
    }

    /**
     * Launches per generated method. A launch is about 22 bytes of bytecode, and HotSpot leaves a method
     * of more than 8000 bytes to the interpreter (-XX:HugeMethodLimit, DontCompileHugeMethods): with 1000
     * launches a method, a decode graph's 400-odd launches (9-10 KB) were never compiled, and each step
     * interpreted them. 256 keeps a method near 5.6 KB, so the JIT compiles every part.
     */
    static final int LAUNCHES_PER_METHOD = 256;

    /** The largest method HotSpot compiles by default ({@code -XX:HugeMethodLimit}). */
    static final int HUGE_METHOD_BYTES = 8000;

    private static final String RUN_DESC = "(" + Type.getDescriptor(CpuKernels.class) + "[[" + Type.getDescriptor(Buf.class)
            + "[[" + Type.getDescriptor(Buf.class) + "[" + Type.getDescriptor(Attrs.class) + "[" + Type.getDescriptor(CpuKernels.Ahead.class) + ")V";

    /** Whether a launch of {@code kernel} may stream panels, so the replay posts its read-ahead before it. */
    static boolean streams(Kernel kernel) {
        return kernel == Kernel.MATMUL || kernel == Kernel.QUANT_MATMUL || kernel == Kernel.GROUPED_MATMUL || kernel == Kernel.GROUPED_QUANT_MATMUL;
    }

    /** Generates and loads the replay of {@code kernels} (graph {@code name} only names the class). */
    static Replay generate(String name, Kernel[] kernels) {
        byte[] bytes = bytecode(name, kernels);
        try {
            MethodHandles.Lookup lookup = MethodHandles.lookup().defineHiddenClass(bytes, true);
            return (Replay) lookup.lookupClass().getDeclaredConstructor().newInstance();
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("could not load the captured replay of graph " + name, e);
        }
    }

    /** The class file: {@code run} calls run0, run1, ... each holding up to LAUNCHES_PER_METHOD launches. */
    static byte[] bytecode(String name, Kernel[] kernels) {
        String internal = Type.getInternalName(CapturedReplay.class) + "$" + name.replaceAll("[^A-Za-z0-9_]", "_");
        ClassWriter cw = new ClassWriter(ClassWriter.COMPUTE_FRAMES | ClassWriter.COMPUTE_MAXS);
        cw.visit(Opcodes.V21, Opcodes.ACC_FINAL | Opcodes.ACC_SUPER, internal, null, "java/lang/Object",
                new String[] {Type.getInternalName(Replay.class)});
        MethodVisitor init = cw.visitMethod(Opcodes.ACC_PUBLIC, "<init>", "()V", null, null);
        init.visitCode();
        init.visitVarInsn(Opcodes.ALOAD, 0);
        init.visitMethodInsn(Opcodes.INVOKESPECIAL, "java/lang/Object", "<init>", "()V", false);
        init.visitInsn(Opcodes.RETURN);
        init.visitMaxs(0, 0);
        init.visitEnd();

        int parts = Math.max(1, (kernels.length + LAUNCHES_PER_METHOD - 1) / LAUNCHES_PER_METHOD);
        MethodVisitor run = cw.visitMethod(Opcodes.ACC_PUBLIC, "run", RUN_DESC, null, null);
        run.visitCode();
        for (int p = 0; p < parts; p++) {
            for (int a = 0; a <= 5; a++) run.visitVarInsn(Opcodes.ALOAD, a);
            run.visitMethodInsn(Opcodes.INVOKEVIRTUAL, internal, "run" + p, RUN_DESC, false);
        }
        run.visitInsn(Opcodes.RETURN);
        run.visitMaxs(0, 0);
        run.visitEnd();

        String kernelType = Type.getInternalName(Kernel.class), kernelDesc = Type.getDescriptor(Kernel.class);
        String launchDesc = "(" + kernelDesc + "[" + Type.getDescriptor(Buf.class) + "[" + Type.getDescriptor(Buf.class)
                + Type.getDescriptor(Attrs.class) + ")V";
        for (int p = 0; p < parts; p++) {
            MethodVisitor m = cw.visitMethod(Opcodes.ACC_PRIVATE, "run" + p, RUN_DESC, null, null);
            m.visitCode();
            for (int l = p * LAUNCHES_PER_METHOD; l < Math.min(kernels.length, (p + 1) * LAUNCHES_PER_METHOD); l++) {
                if (streams(kernels[l])) {                                                 // k.readAhead(ahead[l])
                    m.visitVarInsn(Opcodes.ALOAD, 1);
                    m.visitVarInsn(Opcodes.ALOAD, 5);
                    m.visitLdcInsn(l);
                    m.visitInsn(Opcodes.AALOAD);
                    m.visitMethodInsn(Opcodes.INVOKEVIRTUAL, Type.getInternalName(CpuKernels.class), "readAhead", "(" + Type.getDescriptor(CpuKernels.Ahead.class) + ")V", false);
                }
                m.visitVarInsn(Opcodes.ALOAD, 1);                                          // k
                m.visitFieldInsn(Opcodes.GETSTATIC, kernelType, kernels[l].name(), kernelDesc);
                for (int slot = 2; slot <= 4; slot++) {                                    // ins[l], outs[l], attrs[l]
                    m.visitVarInsn(Opcodes.ALOAD, slot);
                    m.visitLdcInsn(l);
                    m.visitInsn(Opcodes.AALOAD);
                }
                m.visitMethodInsn(Opcodes.INVOKEVIRTUAL, Type.getInternalName(CpuKernels.class), "launch", launchDesc, false);
            }
            m.visitInsn(Opcodes.RETURN);
            m.visitMaxs(0, 0);
            m.visitEnd();
        }
        cw.visitEnd();
        return cw.toByteArray();
    }
}
