// Rotary position embedding in place, Hugging Face "rotate half" pairing: for each head, element i
// and element i + rotary_dim/2 rotate together by the angle of (position, i); elements from
// rotary_dim on pass through (partial rotary; rotary_dim = head_dim otherwise). The cos/sin table is
// computed on the host in f32 exactly as PyTorch does, because WGSL's sin/cos are only accurate
// on [-pi, pi] and positions reach thousands of radians.

struct Params {
  num_tokens: u32,
  num_heads: u32,
  head_dim: u32,
  rotary_dim: u32,   // even, <= head_dim
}

override WORKGROUP_SIZE: u32 = 64u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;    // x: [num_tokens, num_heads * head_dim]
@group(0) @binding(2) var<storage, read> cos_sin: array<f32>;    // cos_sin: [num_tokens, rotary_dim / 2, 2] (cos, sin)

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let index = gid.x + gid.y * groups.x * WORKGROUP_SIZE;
  let half_dim = params.rotary_dim / 2u;
  if (index >= params.num_tokens * params.num_heads * half_dim) { return; }
  let i = index % half_dim;
  let head = (index / half_dim) % params.num_heads;
  let token = index / (half_dim * params.num_heads);
  let base = token * params.num_heads * params.head_dim + head * params.head_dim;
  let angle = (token * half_dim + i) * 2u;
  let c = cos_sin[angle];
  let s = cos_sin[angle + 1u];
  let first = x[base + i];
  let second = x[base + i + half_dim];
  x[base + i] = first * c - second * s;
  x[base + i + half_dim] = second * c + first * s;
}
