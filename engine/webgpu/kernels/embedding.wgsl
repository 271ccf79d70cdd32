// Token embedding gather for one row chunk of the table: out[i, :] = table[ids[i] - row_start, :]
// for the tokens whose id falls inside this chunk. Tables over the storage-binding limit are split
// by rows into chunks and this kernel runs once per chunk.

struct Params {
  num_tokens: u32,
  hidden: u32,
  row_start: u32,
  row_count: u32,
}

override WORKGROUP_SIZE: u32 = 64u;
// Weights are stored as packed f16 pairs (unpack2x16float, core WGSL) or as f32 bits.
override WEIGHT_F16: bool = false;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> ids: array<u32>;         // ids: [num_tokens]
@group(0) @binding(2) var<storage, read> table: array<u32>;       // table: [row_count, hidden] (f32 bits or f16 pairs)
@group(0) @binding(3) var<storage, read_write> out: array<f32>;   // out: [num_tokens, hidden]

fn weight_at(index: u32) -> f32 {
  if (WEIGHT_F16) {
    let pair = unpack2x16float(table[index >> 1u]);
    return select(pair.x, pair.y, (index & 1u) == 1u);
  }
  return bitcast<f32>(table[index]);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let index = gid.x + gid.y * groups.x * WORKGROUP_SIZE;
  if (index >= params.num_tokens * params.hidden) { return; }
  let token = index / params.hidden;
  let column = index % params.hidden;
  let id = ids[token];
  if (id < params.row_start || id >= params.row_start + params.row_count) { return; }
  out[index] = weight_at((id - params.row_start) * params.hidden + column);
}
