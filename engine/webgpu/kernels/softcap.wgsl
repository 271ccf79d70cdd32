// Soft-capping in place (Gemma 2's final_logit_softcapping): x = cap * tanh(x / cap). The tanh
// argument is clamped as in gelu.wgsl (tanh(15) is 1 in f32; some tanh implementations return NaN
// past that).

struct Params {
  num_elements: u32,
  cap: f32,
}

override WORKGROUP_SIZE: u32 = 64u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;    // x: [rows, vocab]

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let index = gid.x + gid.y * groups.x * WORKGROUP_SIZE;
  if (index >= params.num_elements) { return; }
  x[index] = params.cap * tanh(clamp(x[index] / params.cap, -15.0, 15.0));
}
