/**
 * Rotary position embedding angles, computed the way Hugging Face transformers computes them in
 * PyTorch: in f32 (inv_freq[i] = 1 / theta^(2i/d), each step rounded to f32; angle = position x
 * inv_freq rounded to f32), then cos and sin of that f32 angle. At positions in the thousands an
 * angle in f64 differs from PyTorch's by ~1e-3 rad, enough to move attention weights by ~1e-4, so
 * every engine (reference, ONNX Runtime, WebGPU's host-side table) uses these.
 */

/** inv_freq of the head_dim / 2 rotary frequencies, as f32 values. */
export function ropeInverseFrequencies(headDim: number, theta: number): Float32Array {
  const half = headDim / 2;
  const invFreq = new Float32Array(half);
  for (let i = 0; i < half; i++) invFreq[i] = Math.fround(1 / Math.fround(Math.pow(theta, Math.fround((2 * i) / headDim))));
  return invFreq;
}

/** The f32 angle of `position` at frequency `invFreq` (one entry of ropeInverseFrequencies). */
export function ropeAngle(position: number, invFreq: number): number {
  return Math.fround(position * invFreq);
}
