// RMSNorm (Llama, Qwen2, Qwen3): out[r, :] = x[r, :] / sqrt(mean(x[r, :]^2) + eps) * weight.
// One invocation per row: on CPU-backed adapters a barrier reduction costs far more than it saves,
// and rows are only hidden-size long.

struct Params {
  num_rows: u32,
  hidden: u32,
  eps: f32,
}

override WORKGROUP_SIZE: u32 = 64u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;          // x: [num_rows, hidden]
@group(0) @binding(2) var<storage, read> weight: array<f32>;     // weight: [hidden]
@group(0) @binding(3) var<storage, read_write> out: array<f32>;  // out: [num_rows, hidden]

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let row = gid.x;
  if (row >= params.num_rows) { return; }
  let base = row * params.hidden;
  var sum_squares = 0.0;
  for (var c = 0u; c < params.hidden; c++) {
    let value = x[base + c];
    sum_squares += value * value;
  }
  let scale = inverseSqrt(sum_squares / f32(params.hidden) + params.eps);
  for (var c = 0u; c < params.hidden; c++) {
    out[base + c] = x[base + c] * scale * weight[c];
  }
}
