package dev.moec.capture;

import java.util.List;

/** What a runtime needs to know about the model beyond its graphs. */
public record ModelInfo(String name, String modelType, int vocabSize, List<Integer> eosTokenIds, int maxPositions) {
    public ModelInfo {
        eosTokenIds = List.copyOf(eosTokenIds);
    }
}
