/**
 * Conversions between the storage types a safetensors file may hold (F32, F16, BF16) and the
 * float32 / float16 arrays the engines compute with. Pure functions over little-endian bytes; no
 * Node or DOM imports, so the webview and Node share them.
 */
import type { HostTensor } from './modelTypes';

/** Bytes per element of each storage type. */
export const DTYPE_WIDTH = { F32: 4, F16: 2, BF16: 2 } as const;

/** Number of elements of a shape (1 for a scalar). */
export function elementCount(shape: readonly number[]): number {
  let count = 1;
  for (const dim of shape) count *= dim;
  return count;
}

const conversionView = new DataView(new ArrayBuffer(4));

/** Decodes one IEEE 754 half-precision value (given as its 16 bits), subnormals, infinities and NaN included. */
export function float16BitsToFloat32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa === 0 ? sign * Infinity : NaN;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

/**
 * Encodes a number as the 16 bits of the nearest half-precision value, rounding ties to even.
 * The value is first rounded to float32, as a GPU upload from a Float32Array would be.
 * Values beyond the half range become +-Infinity; NaN stays a (quiet) NaN.
 */
export function float32ToFloat16Bits(value: number): number {
  conversionView.setFloat32(0, value, true);
  const f = conversionView.getUint32(0, true);
  const sign = (f >>> 16) & 0x8000;
  const exponent = (f >>> 23) & 0xff;
  const mantissa = f & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa !== 0 ? 0x200 : 0);
  // Unbiased exponent, re-biased for half precision.
  const halfExponent = exponent - 127 + 15;
  if (halfExponent >= 0x1f) return sign | 0x7c00;
  if (halfExponent <= 0) {
    // Subnormal half (or zero): shift the full 24-bit significand into the 10-bit field.
    if (halfExponent < -10) return sign;
    const significand = mantissa | 0x800000;
    const shift = 14 - halfExponent;
    let half = significand >>> shift;
    const remainder = significand & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (remainder > halfway || (remainder === halfway && (half & 1) !== 0)) half += 1;
    return sign | half;
  }
  let half = (halfExponent << 10) | (mantissa >>> 13);
  const remainder = mantissa & 0x1fff;
  // A carry out of the mantissa correctly bumps the exponent (up to infinity).
  if (remainder > 0x1000 || (remainder === 0x1000 && (half & 1) !== 0)) half += 1;
  return sign | half;
}

function float32Words(bytes: Uint8Array, count: number): Float32Array {
  if (bytes.byteOffset % 4 === 0) return new Float32Array(bytes.buffer, bytes.byteOffset, count).slice();
  return new Float32Array(bytes.slice(0, count * 4).buffer);
}

function uint16Words(bytes: Uint8Array, count: number): Uint16Array {
  if (bytes.byteOffset % 2 === 0) return new Uint16Array(bytes.buffer, bytes.byteOffset, count);
  return new Uint16Array(bytes.slice(0, count * 2).buffer);
}

/** The tensor's values as a new float32 array (F32 is copied; F16 and BF16 are widened exactly). */
export function toFloat32(t: HostTensor): Float32Array {
  const count = elementCount(t.shape);
  checkByteLength(t, count);
  switch (t.dtype) {
    case 'F32':
      return float32Words(t.bytes, count);
    case 'F16': {
      const halves = uint16Words(t.bytes, count);
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = float16BitsToFloat32(halves[i]);
      return out;
    }
    case 'BF16': {
      // BF16 is the top half of a float32, so widening is a 16-bit shift.
      const halves = uint16Words(t.bytes, count);
      const words = new Uint32Array(count);
      for (let i = 0; i < count; i++) words[i] = halves[i] << 16;
      return new Float32Array(words.buffer);
    }
  }
}

/** The tensor's values as half-precision bits (F16 is copied; F32 and BF16 are rounded to nearest even). */
export function toFloat16Bits(t: HostTensor): Uint16Array {
  const count = elementCount(t.shape);
  checkByteLength(t, count);
  if (t.dtype === 'F16') return uint16Words(t.bytes, count).slice();
  const values = toFloat32(t);
  const out = new Uint16Array(count);
  for (let i = 0; i < count; i++) out[i] = float32ToFloat16Bits(values[i]);
  return out;
}

function checkByteLength(t: HostTensor, count: number): void {
  const expected = count * DTYPE_WIDTH[t.dtype];
  if (t.bytes.byteLength !== expected) {
    throw new Error(
      `tensor ${t.name} has ${t.bytes.byteLength} bytes but its shape [${t.shape.join(', ')}] and dtype ${t.dtype} need ${expected}`,
    );
  }
}
