// Per-head RMSNorm in place (Qwen3's q_norm and k_norm): every head's head_dim slice of a row is
// normalised on its own and scaled by the shared weight, before the rotary embedding:
// x[r, h, :] = x[r, h, :] / sqrt(mean(x[r, h, :]^2) + eps) * weight.
// One invocation per (row, head) vector: head_dim is short (64-256), as in rmsnorm.wgsl.

struct Params {
  num_vectors: u32,   // rows * heads
  head_dim: u32,
  eps: f32,
}

override WORKGROUP_SIZE: u32 = 64u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;    // x: [rows, heads, head_dim] = [num_vectors, head_dim]
@group(0) @binding(2) var<storage, read> weight: array<f32>;     // weight: [head_dim]

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let vector = gid.x + gid.y * groups.x * WORKGROUP_SIZE;
  if (vector >= params.num_vectors) { return; }
  let base = vector * params.head_dim;
  var sum_squares = 0.0;
  for (var c = 0u; c < params.head_dim; c++) {
    let value = x[base + c];
    sum_squares += value * value;
  }
  let scale = inverseSqrt(sum_squares / f32(params.head_dim) + params.eps);
  for (var c = 0u; c < params.head_dim; c++) {
    x[base + c] = x[base + c] * scale * weight[c];
  }
}
