/**
 * The checks every engine applies to a request before computing anything, so that the reference,
 * WebGPU and ONNX Runtime engines refuse the same inputs with the same messages.
 */
import type { AttentionRequest } from './attention';
import type { ModelSpec } from './model/modelTypes';

/** The token ids as Int32Array; throws when empty, too long for the model, or outside its vocabulary. */
export function validateTokenIds(ids: ArrayLike<number>, spec: ModelSpec): Int32Array {
  if (ids.length < 1) throw new RangeError('the token sequence is empty; give at least one token');
  if (ids.length > spec.maxPositions) {
    throw new RangeError(`the sequence has ${ids.length} tokens but the model accepts at most ${spec.maxPositions}; analyse a shorter range`);
  }
  const out = new Int32Array(ids.length);
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (!Number.isInteger(id) || id < 0 || id >= spec.vocabSize) {
      throw new RangeError(`token id ${id} at position ${i} is outside the model's vocabulary (0..${spec.vocabSize - 1})`);
    }
    out[i] = id;
  }
  return out;
}

/** Checks topK, layers and spans; returns the layers to summarise. */
export function validateAttentionRequest(request: AttentionRequest, n: number, spec: ModelSpec): number[] {
  if (!Number.isInteger(request.topK) || request.topK < 1 || request.topK > 64) {
    throw new RangeError(`topK must be an integer in 1..64, not ${request.topK}`);
  }
  for (const span of request.spans) {
    if (!Number.isInteger(span.start) || !Number.isInteger(span.end) || span.start < 0 || span.end <= span.start || span.end > n) {
      throw new RangeError(`span [${span.start}, ${span.end}) is not a non-empty range of the ${n} token positions`);
    }
  }
  const layers = request.layers ? [...request.layers] : Array.from({ length: spec.numLayers }, (_, i) => i);
  for (const layer of layers) checkLayerIndex('layer', layer, spec.numLayers);
  return layers;
}

/** Checks an exact-row request (layer, head, query) against the model and a run of `numTokens` tokens. */
export function validateRowRequest(layer: number, head: number, query: number, spec: ModelSpec, numTokens: number): void {
  checkLayerIndex('layer', layer, spec.numLayers);
  checkLayerIndex('head', head, spec.numHeads);
  checkLayerIndex('query', query, numTokens);
}

/** Throws a RangeError naming `what` unless value is an integer in 0..count-1. */
export function checkLayerIndex(what: string, value: number, count: number): void {
  if (!Number.isInteger(value) || value < 0 || value >= count) {
    throw new RangeError(`${what} ${value} is out of range (0..${count - 1})`);
  }
}

/** The error every engine rejects with when a run is cancelled (callers test `name === 'AbortError'`). */
export function abortError(): Error {
  const error = new Error('the forward pass was cancelled');
  error.name = 'AbortError';
  return error;
}

/** Throws abortError() when `signal` has fired. */
export function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw abortError();
}
