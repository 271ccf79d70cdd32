/**
 * Rotary position embedding tables, computed the way Hugging Face transformers computes them in
 * PyTorch (modeling_rope_utils.py and the models' rotary embedding classes): the inverse
 * frequencies in f32, each tensor operation rounded to f32 as PyTorch does; angle = position x
 * inv_freq rounded to f32; then cos and sin of that f32 angle, multiplied by the scaling's
 * attention factor in f32. At positions in the thousands an angle in f64 differs from PyTorch's by
 * ~1e-3 rad, enough to move attention weights by ~1e-4, so every engine (reference, ONNX Runtime,
 * WebGPU's host-side table) takes its tables from here.
 *
 * Two scalings depend on the length of the sequence being run, as transformers' forward pass makes
 * them (its `dynamic_rope_update`, for a sequence whose positions are 0..n-1): `dynamic` changes
 * the base once n exceeds the original length, `longrope` switches from its short to its long
 * factors. Every other table depends on the position only. `ropeTablesAgree` says whether two
 * sequence lengths share their tables (an incremental run may reuse keys only then).
 */
import type { ModelSpec, RopeScaling } from './modelTypes';

const f = Math.fround;

/** The rotary frequencies of a model for a sequence of `sequenceLength` tokens, and the factor cos and sin are scaled by. */
export interface RopeFrequencies {
  /** rotaryDim / 2 inverse frequencies, as f32 values. */
  readonly invFreq: Float32Array;
  /** Multiplies cos and sin (YaRN and LongRoPE's attention factor; 1 otherwise). */
  readonly attentionFactor: number;
}

/** inv_freq of plain rotary embeddings: 1 / theta^(2i/d), as PyTorch computes it in f32. */
export function ropeInverseFrequencies(headDim: number, theta: number): Float32Array {
  const half = headDim / 2;
  const invFreq = new Float32Array(half);
  for (let i = 0; i < half; i++) invFreq[i] = f(1 / f(Math.pow(theta, f((2 * i) / headDim))));
  return invFreq;
}

/** The f32 angle of `position` at frequency `invFreq` (one entry of ropeInverseFrequencies). */
export function ropeAngle(position: number, invFreq: number): number {
  return f(position * invFreq);
}

/** The spec fields the rotary tables depend on. */
export type RopeSpec = Pick<ModelSpec, 'headDim' | 'ropeTheta' | 'ropeScaling' | 'rotaryDim'>;

/** The dimensions of a head that rotate: rotaryDim (partial rotary), else all of head_dim. */
export function rotaryDimOf(spec: Pick<ModelSpec, 'headDim' | 'rotaryDim'>): number {
  return spec.rotaryDim ?? spec.headDim;
}

/**
 * The rotary parameters of one layer: Gemma 3's sliding-window layers turn with their own base
 * (localRopeTheta) and no scaling; every other layer with the model's.
 */
export function layerRope(spec: RopeSpec & Pick<ModelSpec, 'localRopeTheta' | 'slidingWindow'>, layer: number): RopeSpec {
  if (spec.localRopeTheta === undefined || !(spec.slidingWindow?.[layer] ?? 0)) return spec;
  return { headDim: spec.headDim, rotaryDim: spec.rotaryDim, ropeTheta: spec.localRopeTheta };
}

/** The rotary parameters of the sliding-window layers (the first such layer's: they all share them). */
export function localRopeSpec(spec: RopeSpec & Pick<ModelSpec, 'localRopeTheta' | 'slidingWindow'>): RopeSpec {
  return layerRope(spec, spec.slidingWindow?.findIndex((window) => window > 0) ?? -1);
}

/** Whether any layer rotates with the local base (then the engines keep a second table). */
export function hasLocalRope(spec: Pick<ModelSpec, 'localRopeTheta' | 'slidingWindow'>): boolean {
  return spec.localRopeTheta !== undefined && (spec.slidingWindow?.some((window) => window > 0) ?? false);
}

/** The frequencies `spec` rotates by in a sequence of `sequenceLength` tokens (rotaryDim / 2 of them). */
export function ropeFrequencies(spec: RopeSpec, sequenceLength: number): RopeFrequencies {
  // transformers: dim = int(head_dim * partial_rotary_factor), the exponents 2i / dim.
  const d = rotaryDimOf(spec);
  const theta = spec.ropeTheta;
  const scaling = spec.ropeScaling;
  if (!scaling) return { invFreq: ropeInverseFrequencies(d, theta), attentionFactor: 1 };
  switch (scaling.type) {
    case 'linear':
      return { invFreq: ropeInverseFrequencies(d, theta).map((v) => f(v / scaling.factor)), attentionFactor: 1 };
    case 'dynamic': {
      const original = scaling.originalMaxPositions;
      const seq = Math.max(sequenceLength, original);
      // transformers computes the new base in Python floats (f64), then the frequencies in f32.
      const base = theta * Math.pow((scaling.factor * seq) / original - (scaling.factor - 1), d / (d - 2));
      return { invFreq: ropeInverseFrequencies(d, base), attentionFactor: 1 };
    }
    case 'yarn':
      return { invFreq: yarnFrequencies(d, theta, scaling), attentionFactor: scaling.attentionFactor };
    case 'longrope': {
      const factors = sequenceLength > scaling.originalMaxPositions ? scaling.longFactor : scaling.shortFactor;
      const invFreq = new Float32Array(d / 2);
      for (let i = 0; i < d / 2; i++) invFreq[i] = f(1 / f(f(factors[i]) * f(Math.pow(theta, f((2 * i) / d)))));
      return { invFreq, attentionFactor: scaling.attentionFactor };
    }
    case 'llama3':
      return { invFreq: llama3Frequencies(d, theta, scaling), attentionFactor: 1 };
  }
}

function yarnFrequencies(d: number, theta: number, s: Extract<RopeScaling, { type: 'yarn' }>): Float32Array {
  const half = d / 2;
  // The dimension at which a frequency turns `rotations` times over the original context.
  const correctionDim = (rotations: number) => (d * Math.log(s.originalMaxPositions / (rotations * 2 * Math.PI))) / (2 * Math.log(theta));
  let low = correctionDim(s.betaFast);
  let high = correctionDim(s.betaSlow);
  if (s.truncate) {
    low = Math.floor(low);
    high = Math.ceil(high);
  }
  low = Math.max(low, 0);
  high = Math.min(high, d - 1);
  if (low === high) high += 0.001; // transformers' guard against a zero-width ramp
  const invFreq = new Float32Array(half);
  for (let i = 0; i < half; i++) {
    const posFreq = f(Math.pow(theta, f((2 * i) / d)));
    const extrapolation = f(1 / posFreq);
    const interpolation = f(1 / f(s.factor * posFreq));
    const ramp = Math.min(1, Math.max(0, f(f(i - low) / f(high - low))));
    const extrapolationWeight = f(1 - ramp);
    invFreq[i] = f(f(interpolation * f(1 - extrapolationWeight)) + f(extrapolation * extrapolationWeight));
  }
  return invFreq;
}

function llama3Frequencies(d: number, theta: number, s: Extract<RopeScaling, { type: 'llama3' }>): Float32Array {
  const base = ropeInverseFrequencies(d, theta);
  const lowFreqWavelen = s.originalMaxPositions / s.lowFreqFactor;
  const highFreqWavelen = s.originalMaxPositions / s.highFreqFactor;
  return base.map((inv) => {
    const wavelen = f((2 * Math.PI) / inv);
    if (wavelen < highFreqWavelen) return inv;
    if (wavelen > lowFreqWavelen) return f(inv / s.factor);
    // transformers: (1 - smooth) * inv_freq / factor + smooth * inv_freq, left to right in f32.
    const smooth = f(f(f(s.originalMaxPositions / wavelen) - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor));
    return f(f(f(f(1 - smooth) * inv) / s.factor) + f(smooth * inv));
  });
}

/** Whether sequences of `a` and `b` tokens rotate every position alike (their rotary tables agree). */
export function ropeTablesAgree(spec: Pick<ModelSpec, 'ropeScaling'>, a: number, b: number): boolean {
  const scaling = spec.ropeScaling;
  if (scaling?.type === 'dynamic') {
    const original = scaling.originalMaxPositions;
    return Math.max(a, original) === Math.max(b, original);
  }
  if (scaling?.type === 'longrope') return a > scaling.originalMaxPositions === b > scaling.originalMaxPositions;
  return true;
}

/**
 * cos and sin of positions first..first+count-1 in a sequence of `sequenceLength` tokens, each
 * [count, rotaryDim / 2] (frequency i of row r at r * rotaryDim / 2 + i), attention factor applied.
 * With HF's rotate-half pairing, elements i and i + rotaryDim / 2 of a head share entry i.
 */
export function ropeCosSin(
  spec: RopeSpec,
  first: number,
  count: number,
  sequenceLength: number,
): { cos: Float32Array; sin: Float32Array } {
  const { invFreq, attentionFactor } = ropeFrequencies(spec, sequenceLength);
  const half = invFreq.length;
  const cos = new Float32Array(count * half);
  const sin = new Float32Array(count * half);
  for (let r = 0; r < count; r++) {
    for (let i = 0; i < half; i++) {
      const angle = ropeAngle(first + r, invFreq[i]);
      cos[r * half + i] = attentionFactor === 1 ? Math.cos(angle) : f(Math.cos(angle)) * attentionFactor;
      sin[r * half + i] = attentionFactor === 1 ? Math.sin(angle) : f(Math.sin(angle)) * attentionFactor;
    }
  }
  return { cos, sin };
}
