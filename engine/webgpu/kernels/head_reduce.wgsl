// Mean and maximum over heads of one layer's span masses: one invocation per (query, span).

struct Params {
  num_tokens: u32,
  num_heads: u32,
  num_spans: u32,
}

override WORKGROUP_SIZE: u32 = 64u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> span_mass: array<f32>;        // span_mass: [num_heads, n, num_spans]
@group(0) @binding(2) var<storage, read_write> span_mean: array<f32>;  // span_mean: [n, num_spans]
@group(0) @binding(3) var<storage, read_write> span_max: array<f32>;   // span_max: [n, num_spans]

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let index = gid.x + gid.y * groups.x * WORKGROUP_SIZE;
  let per_head = params.num_tokens * params.num_spans;
  if (index >= per_head) { return; }
  var total = 0.0;
  var largest = 0.0;
  for (var h = 0u; h < params.num_heads; h++) {
    let mass = span_mass[h * per_head + index];
    total += mass;
    largest = max(largest, mass);
  }
  span_mean[index] = total / f32(params.num_heads);
  span_max[index] = largest;
}
