/**
 * The rotary tables the rope kernel reads, [rows, rotary_dim / 2, 2] (cos, sin), from
 * engine/model/rope.ts (computed on the host in f32 as Hugging Face does: WGSL's sin and cos are
 * only accurate near zero, and positions reach thousands of radians).
 */
import { ropeCosSin, rotaryDimOf, type RopeSpec } from '../model/rope';

/** cos and sin of positions start..start+rows-1 of a sequence of `sequenceLength` tokens: [rows, rotary_dim / 2, 2]. */
export function ropeTable(spec: RopeSpec, start: number, rows: number, sequenceLength: number): Float32Array<ArrayBuffer> {
  const half = rotaryDimOf(spec) / 2;
  const { cos, sin } = ropeCosSin(spec, start, rows, sequenceLength);
  const table = new Float32Array(rows * half * 2);
  for (let j = 0; j < rows * half; j++) {
    table[j * 2] = cos[j];
    table[j * 2 + 1] = sin[j];
  }
  return table;
}

/** `rows` copies of position `position`'s row of the rotary table: [rows, rotary_dim / 2, 2]. */
export function ropeRowsAt(spec: RopeSpec, position: number, rows: number, sequenceLength: number): Float32Array<ArrayBuffer> {
  const row = ropeTable(spec, position, 1, sequenceLength);
  const out = new Float32Array(rows * row.length);
  for (let r = 0; r < rows; r++) out.set(row, r * row.length);
  return out;
}
