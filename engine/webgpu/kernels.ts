/**
 * The WGSL kernels of the engine, their compute pipelines (created once per set of override
 * constants, inside error scopes so that a failure becomes an Error the caller receives), and the
 * small helpers every dispatch shares: uniform parameter buffers and 1-D dispatch grids.
 */
import addSource from './kernels/add.wgsl';
import addRowSource from './kernels/add_row.wgsl';
import attentionOutputSource from './kernels/attention_output.wgsl';
import attentionRowMaskedSource from './kernels/attention_row_masked.wgsl';
import attentionScoresMaskedSource from './kernels/attention_scores_masked.wgsl';
import attentionScoresRegisterSource from './kernels/attention_scores_register.wgsl';
import attentionScoresTiledSource from './kernels/attention_scores_tiled.wgsl';
import copyBlockSource from './kernels/copy_block.wgsl';
import embeddingSource from './kernels/embedding.wgsl';
import geluSource from './kernels/gelu.wgsl';
import geluMulSource from './kernels/gelu_mul.wgsl';
import headReduceSource from './kernels/head_reduce.wgsl';
import headRmsNormSource from './kernels/head_rmsnorm.wgsl';
import layerNormSource from './kernels/layernorm.wgsl';
import linearRegisterSource from './kernels/linear_register.wgsl';
import linearTiledSource from './kernels/linear_tiled.wgsl';
import nextTokenDivergenceSource from './kernels/next_token_divergence.wgsl';
import rmsNormSource from './kernels/rmsnorm.wgsl';
import ropeSource from './kernels/rope.wgsl';
import siluMulSource from './kernels/silu_mul.wgsl';
import softcapSource from './kernels/softcap.wgsl';
import spanMassSource from './kernels/span_mass.wgsl';
import topKSource from './kernels/topk.wgsl';
import valueNormsSource from './kernels/value_norms.wgsl';
import valueWeightingSource from './kernels/value_weighting.wgsl';

export const KERNEL_SOURCES = {
  add: addSource,
  add_row: addRowSource,
  attention_output: attentionOutputSource,
  attention_row_masked: attentionRowMaskedSource,
  attention_scores_masked: attentionScoresMaskedSource,
  attention_scores_register: attentionScoresRegisterSource,
  attention_scores_tiled: attentionScoresTiledSource,
  copy_block: copyBlockSource,
  embedding: embeddingSource,
  gelu: geluSource,
  gelu_mul: geluMulSource,
  head_reduce: headReduceSource,
  head_rmsnorm: headRmsNormSource,
  layernorm: layerNormSource,
  linear_register: linearRegisterSource,
  linear_tiled: linearTiledSource,
  next_token_divergence: nextTokenDivergenceSource,
  rmsnorm: rmsNormSource,
  rope: ropeSource,
  silu_mul: siluMulSource,
  softcap: softcapSource,
  span_mass: spanMassSource,
  topk: topKSource,
  value_norms: valueNormsSource,
  value_weighting: valueWeightingSource,
} as const;

export type KernelName = keyof typeof KERNEL_SOURCES;

/** Override constants of one pipeline (booleans are passed as 0 / 1, as WebGPU requires numbers). */
export type KernelConstants = Readonly<Record<string, number>>;

/** Invocations per workgroup of the 1-D kernels (those with `override WORKGROUP_SIZE`). */
export const WORKGROUP_SIZE = 64;
/** The most workgroups one dimension of a dispatch may have on every adapter. */
const MAX_WORKGROUPS_PER_DIMENSION = 65535;

/** A kernel failed to compile or its pipeline failed to build. */
export class GpuKernelError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GpuKernelError';
  }
}

export class KernelLibrary {
  private readonly modules = new Map<KernelName, GPUShaderModule>();
  private readonly pipelines = new Map<string, Promise<GPUComputePipeline>>();
  private readonly uniforms = new Map<string, GPUBuffer>();
  private uniformBytes = 0;

  constructor(private readonly device: GPUDevice) {}

  /** The pipeline of `name` with these override constants, built once and cached. */
  pipeline(name: KernelName, constants: KernelConstants = {}): Promise<GPUComputePipeline> {
    const key = `${name}${JSON.stringify(constants)}`;
    let pipeline = this.pipelines.get(key);
    if (!pipeline) {
      pipeline = this.createPipeline(name, constants, key);
      this.pipelines.set(key, pipeline);
      // A failed build is not cached: the caller sees the error, a later call retries.
      pipeline.catch(() => this.pipelines.delete(key));
    }
    return pipeline;
  }

  /**
   * A uniform buffer holding `u32s` followed by `f32s` (the field order of every kernel's Params
   * struct). Buffers are cached by content, so a run with the same shapes reuses them.
   */
  uniform(u32s: readonly number[], f32s: readonly number[] = []): GPUBuffer {
    const key = `${u32s.join(',')}|${f32s.join(',')}`;
    const cached = this.uniforms.get(key);
    if (cached) return cached;
    const size = Math.max(16, Math.ceil(((u32s.length + f32s.length) * 4) / 16) * 16);
    const buffer = this.device.createBuffer({
      label: `params ${key}`,
      size,
      usage: GPUBufferUsage.UNIFORM,
      mappedAtCreation: true,
    });
    const words = buffer.getMappedRange();
    new Uint32Array(words, 0, u32s.length).set(u32s);
    new Float32Array(words, u32s.length * 4, f32s.length).set(f32s);
    buffer.unmap();
    this.uniforms.set(key, buffer);
    this.uniformBytes += size;
    return buffer;
  }

  /** Bytes held by cached uniform buffers. */
  get uniformBufferBytes(): number {
    return this.uniformBytes;
  }

  /** Drops the cached uniforms when a new sequence length makes them stale (called between runs). */
  trimUniforms(maxEntries = 4096): void {
    if (this.uniforms.size <= maxEntries) return;
    for (const buffer of this.uniforms.values()) buffer.destroy();
    this.uniforms.clear();
    this.uniformBytes = 0;
  }

  dispose(): void {
    for (const buffer of this.uniforms.values()) buffer.destroy();
    this.uniforms.clear();
    this.pipelines.clear();
    this.modules.clear();
  }

  private module(name: KernelName): GPUShaderModule {
    let module = this.modules.get(name);
    if (!module) {
      module = this.device.createShaderModule({ label: `${name}.wgsl`, code: KERNEL_SOURCES[name] });
      this.modules.set(name, module);
    }
    return module;
  }

  private async createPipeline(name: KernelName, constants: KernelConstants, label: string): Promise<GPUComputePipeline> {
    this.device.pushErrorScope('validation');
    const module = this.module(name);
    let pipeline: GPUComputePipeline | undefined;
    let buildError: unknown;
    try {
      pipeline = await this.device.createComputePipelineAsync({
        label,
        layout: 'auto',
        compute: { module, entryPoint: 'main', constants: { ...constants } },
      });
    } catch (error) {
      buildError = error;
    }
    const scopeError = await this.device.popErrorScope();
    if (pipeline && !scopeError) return pipeline;
    const messages = await compilationMessages(module);
    const reason = messages || scopeError?.message || (buildError instanceof Error ? buildError.message : String(buildError));
    throw new GpuKernelError(`The WebGPU kernel ${name}.wgsl failed to build on this adapter: ${reason}`);
  }
}

async function compilationMessages(module: GPUShaderModule): Promise<string> {
  try {
    const info = await module.getCompilationInfo();
    return info.messages
      .filter((message) => message.type === 'error')
      .map((message) => `line ${message.lineNum}:${message.linePos} ${message.message}`)
      .join('; ');
  } catch {
    return '';
  }
}

/**
 * Workgroup counts covering `invocations` 1-D invocations of a WORKGROUP_SIZE kernel. Large counts
 * spill into the y dimension; the kernels rebuild the flat index from num_workgroups.
 */
export function grid1d(invocations: number, workgroupSize = WORKGROUP_SIZE): [number, number] {
  const groups = Math.max(1, Math.ceil(invocations / workgroupSize));
  const x = Math.min(groups, MAX_WORKGROUPS_PER_DIMENSION);
  return [x, Math.ceil(groups / x)];
}

/** A whole buffer, or a range of one (rows of a [rows, width] tensor: see rowRange). */
export type Binding = GPUBuffer | GPUBufferBinding;

/**
 * Rows [row0, row0 + rows) of a [*, width] f32 tensor held in `buffer`, as a binding the kernels see
 * from row 0. Binding offsets must be multiples of minStorageBufferOffsetAlignment (at most 256
 * bytes), which row0 being a multiple of ROW_ALIGNMENT guarantees for every width.
 */
export function rowRange(buffer: GPUBuffer, row0: number, rows: number, width: number): GPUBufferBinding {
  if (row0 % ROW_ALIGNMENT !== 0) throw new Error(`row ranges start at multiples of ${ROW_ALIGNMENT} rows, not ${row0}`);
  return { buffer, offset: row0 * width * 4, size: Math.max(4, rows * width * 4) };
}

/** Row ranges start at multiples of this many rows: 64 f32 rows of any width span a multiple of 256 bytes. */
export const ROW_ALIGNMENT = 64;

/** Records one dispatch of `pipeline` with the buffers bound at 0, 1, 2, ... in order. */
export function dispatch(
  device: GPUDevice,
  pass: GPUComputePassEncoder,
  pipeline: GPUComputePipeline,
  buffers: readonly Binding[],
  workgroups: readonly [number, number?, number?],
): void {
  const bindGroup = device.createBindGroup({
    label: `${pipeline.label} bindings`,
    layout: pipeline.getBindGroupLayout(0),
    entries: buffers.map((buffer, binding) => ({ binding, resource: 'buffer' in buffer ? buffer : { buffer } })),
  });
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bindGroup);
  pass.dispatchWorkgroups(workgroups[0], workgroups[1] ?? 1, workgroups[2] ?? 1);
}
