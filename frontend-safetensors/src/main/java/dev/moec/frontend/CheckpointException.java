package dev.moec.frontend;

import java.nio.file.Path;

/** A checkpoint that cannot be used; the message names the file, the tensor if any, and the problem. */
public final class CheckpointException extends RuntimeException {
    public CheckpointException(Path file, String tensor, String problem) {
        super(file + (tensor == null ? "" : ", tensor '" + tensor + "'") + ": " + problem);
    }

    public CheckpointException(Path file, String tensor, String problem, Throwable cause) {
        super(file + (tensor == null ? "" : ", tensor '" + tensor + "'") + ": " + problem, cause);
    }
}
