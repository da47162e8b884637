package dev.moec.ir.interp;

import dev.moec.ir.Attrs;

import java.util.List;

/** An op's reference semantics: results from operand tensors and attributes. Must not modify operands. */
@FunctionalInterface
public interface Semantics {
    List<RefTensor> eval(List<RefTensor> operands, Attrs attrs);
}
