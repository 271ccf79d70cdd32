/**
 * Uploads a model's weights to the device once; they stay resident for the engine's life.
 *
 * Matrices (linear weights and the embedding table) are stored as f32 bits or as packed f16 pairs
 * in `array<u32>` buffers, so one kernel source reads both through `override WEIGHT_F16`
 * (unpack2x16float is core WGSL; no `shader-f16` needed to read halves). A matrix larger than the
 * storage-binding budget is split by rows into chunks, each its own buffer; kernels run once per
 * chunk. Norm weights, biases and position embeddings are small and always f32.
 */
import type { HostTensor, LayerWeights, LoadedModel, NormWeights } from '../model/modelTypes';
import { toFloat16Bits, toFloat32 } from '../model/tensorData';

/** One row chunk of a matrix: rows rowStart .. rowStart + rowCount of the full [rows, cols]. */
export interface MatrixChunk {
  readonly buffer: GPUBuffer;
  readonly rowStart: number;
  readonly rowCount: number;
}

/** A matrix [rows, cols] (nn.Linear's [out, in]) on the device. */
export interface DeviceMatrix {
  readonly name: string;
  readonly rows: number;
  readonly cols: number;
  /** True when stored as f16 pairs; false for f32. */
  readonly f16: boolean;
  readonly chunks: readonly MatrixChunk[];
}

export interface DeviceLinear {
  readonly weight: DeviceMatrix;
  /** `[out]` f32, when the layer has a bias. */
  readonly bias?: GPUBuffer;
}

export interface DeviceNorm {
  /** `[hidden]` f32. */
  readonly weight: GPUBuffer;
  /** `[hidden]` f32, LayerNorm only. */
  readonly bias?: GPUBuffer;
}

export interface DeviceLayer {
  readonly attnNorm: DeviceNorm;
  readonly q: DeviceLinear;
  readonly k: DeviceLinear;
  readonly v: DeviceLinear;
  readonly o: DeviceLinear;
  /** `[head_dim]` f32: Qwen3's per-head query norm. */
  readonly qNorm?: DeviceNorm;
  /** `[head_dim]` f32: Qwen3's per-head key norm. */
  readonly kNorm?: DeviceNorm;
  /** `[hidden]` f32: Gemma's norms of the attention output and the MLP output. */
  readonly postAttnNorm?: DeviceNorm;
  readonly postMlpNorm?: DeviceNorm;
  readonly mlpNorm: DeviceNorm;
  readonly gate?: DeviceLinear;
  readonly up: DeviceLinear;
  readonly down: DeviceLinear;
}

export interface DeviceWeights {
  readonly tokenEmbedding: DeviceMatrix;
  /** `[maxPositions, hidden]` f32, learned positions only. */
  readonly positionEmbedding?: GPUBuffer;
  readonly layers: readonly DeviceLayer[];
  readonly finalNorm: DeviceNorm;
  /** The same object as tokenEmbedding when embeddings are tied. */
  readonly lmHead: DeviceMatrix;
  /** Bytes of every buffer above. */
  readonly bytes: number;
  /** True when at least one matrix is stored as f16. */
  readonly anyF16: boolean;
}

export interface UploadOptions {
  /** Store matrices as f16 pairs (a matrix whose values overflow f16 stays f32). */
  readonly f16: boolean;
  /** Largest buffer one binding may see; bigger matrices are split by rows. */
  readonly maxBindingBytes: number;
}

export function uploadWeights(device: GPUDevice, model: LoadedModel, options: UploadOptions): DeviceWeights {
  let bytes = 0;
  let anyF16 = false;
  const createBuffer = (label: string, data: ArrayBufferView, byteLength: number): GPUBuffer => {
    const size = Math.max(4, Math.ceil(byteLength / 4) * 4);
    const buffer = device.createBuffer({ label, size, usage: GPUBufferUsage.STORAGE, mappedAtCreation: true });
    new Uint8Array(buffer.getMappedRange()).set(new Uint8Array(data.buffer, data.byteOffset, byteLength));
    buffer.unmap();
    bytes += size;
    return buffer;
  };
  const vector = (tensor: HostTensor): GPUBuffer => {
    const values = toFloat32(tensor);
    return createBuffer(tensor.name, values, values.byteLength);
  };
  const matrix = (tensor: HostTensor): DeviceMatrix => {
    if (tensor.shape.length !== 2) throw new Error(`weight ${tensor.name} should be a matrix, but has shape [${tensor.shape.join(', ')}]`);
    const [rows, cols] = tensor.shape;
    let halves: Uint16Array | undefined;
    if (options.f16) {
      halves = toFloat16Bits(tensor);
      if (hasOverflow(halves, tensor)) halves = undefined;
    }
    const values = halves ?? toFloat32(tensor);
    const width = halves ? 2 : 4;
    // Whole rows per chunk; f16 chunks start on a word boundary because each is its own buffer.
    const rowsPerChunk = Math.max(1, Math.floor(options.maxBindingBytes / (cols * width)));
    const chunks: MatrixChunk[] = [];
    for (let rowStart = 0; rowStart < rows; rowStart += rowsPerChunk) {
      const rowCount = Math.min(rowsPerChunk, rows - rowStart);
      const part = values.subarray(rowStart * cols, (rowStart + rowCount) * cols);
      const label = rows > rowsPerChunk ? `${tensor.name} rows ${rowStart}..${rowStart + rowCount}` : tensor.name;
      chunks.push({ buffer: createBuffer(label, part, part.byteLength), rowStart, rowCount });
    }
    if (halves) anyF16 = true;
    return { name: tensor.name, rows, cols, f16: !!halves, chunks };
  };
  const linear = (weights: { weight: HostTensor; bias?: HostTensor }): DeviceLinear => ({
    weight: matrix(weights.weight),
    bias: weights.bias ? vector(weights.bias) : undefined,
  });
  const norm = (weights: NormWeights): DeviceNorm => ({
    weight: vector(weights.weight),
    bias: weights.bias ? vector(weights.bias) : undefined,
  });
  const layer = (weights: LayerWeights): DeviceLayer => ({
    attnNorm: norm(weights.attnNorm),
    q: linear(weights.q),
    k: linear(weights.k),
    v: linear(weights.v),
    o: linear(weights.o),
    qNorm: weights.qNorm ? norm(weights.qNorm) : undefined,
    kNorm: weights.kNorm ? norm(weights.kNorm) : undefined,
    postAttnNorm: weights.postAttnNorm ? norm(weights.postAttnNorm) : undefined,
    postMlpNorm: weights.postMlpNorm ? norm(weights.postMlpNorm) : undefined,
    mlpNorm: norm(weights.mlpNorm),
    gate: weights.gate ? linear(weights.gate) : undefined,
    up: linear(weights.up),
    down: linear(weights.down),
  });

  const w = model.weights;
  const tokenEmbedding = matrix(w.tokenEmbedding);
  const positionEmbedding = w.positionEmbedding ? vector(w.positionEmbedding) : undefined;
  const layers = w.layers.map(layer);
  const finalNorm = norm(w.finalNorm);
  const lmHead = w.lmHead === w.tokenEmbedding ? tokenEmbedding : matrix(w.lmHead);
  return { tokenEmbedding, positionEmbedding, layers, finalNorm, lmHead, bytes, anyF16 };
}

/** Destroys every buffer of `weights`. */
export function destroyWeights(weights: DeviceWeights): void {
  const destroyMatrix = (m: DeviceMatrix): void => m.chunks.forEach((chunk) => chunk.buffer.destroy());
  const destroyLinear = (l?: DeviceLinear): void => {
    if (!l) return;
    destroyMatrix(l.weight);
    l.bias?.destroy();
  };
  const destroyNorm = (n: DeviceNorm): void => {
    n.weight.destroy();
    n.bias?.destroy();
  };
  destroyMatrix(weights.tokenEmbedding);
  if (weights.lmHead !== weights.tokenEmbedding) destroyMatrix(weights.lmHead);
  weights.positionEmbedding?.destroy();
  destroyNorm(weights.finalNorm);
  for (const layer of weights.layers) {
    destroyNorm(layer.attnNorm);
    destroyNorm(layer.mlpNorm);
    if (layer.qNorm) destroyNorm(layer.qNorm);
    if (layer.kNorm) destroyNorm(layer.kNorm);
    if (layer.postAttnNorm) destroyNorm(layer.postAttnNorm);
    if (layer.postMlpNorm) destroyNorm(layer.postMlpNorm);
    [layer.q, layer.k, layer.v, layer.o, layer.gate, layer.up, layer.down].forEach(destroyLinear);
  }
}

/** True when a finite value became infinite in f16 (|x| > 65504): such a matrix stays f32. */
function hasOverflow(halves: Uint16Array, tensor: HostTensor): boolean {
  if (tensor.dtype === 'F16') return false;
  for (let i = 0; i < halves.length; i++) {
    if ((halves[i] & 0x7fff) === 0x7c00) return true;
  }
  return false;
}
