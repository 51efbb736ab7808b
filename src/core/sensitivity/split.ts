/**
 * Samples on which local sensitivity measures each layer's split (its weight-only copy against its
 * quantized one, at the layer's outputs) unless --split-samples says otherwise; the sensitivity itself
 * uses every sample. A ratio of two noises, the split settles within a few samples.
 */
export const SPLIT_SAMPLES = 4;
