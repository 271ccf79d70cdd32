/**
 * Getting a device for the engine from any WebGPU implementation: the browser's navigator.gpu in
 * the webview, or the npm `webgpu` GPU object in Node (engine/hosts/nodeWebGpu.ts). Both request the
 * adapter's own storage limits, because the defaults (128 MiB bindings, 256 MiB buffers) are lower
 * than what long sequences need on most GPUs.
 */
import type { LoadedModel } from '../model/modelTypes';
import { GpuEngine, summarizeAdapter, type GpuEngineOptions } from './gpuEngine';

/** Thrown when no WebGPU adapter exists; callers fall back to the CPU engine. */
export class NoWebGpuAdapterError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NoWebGpuAdapterError';
  }
}

/**
 * Requests a device with the adapter's storage limits, plus `shader-f16` (selects f16 weight
 * storage) and `timestamp-query` (times the summary passes) when the adapter has them.
 */
export async function requestEngineDevice(adapter: GPUAdapter): Promise<GPUDevice> {
  const limits = adapter.limits;
  const wanted: GPUFeatureName[] = ['shader-f16', 'timestamp-query'];
  const requiredFeatures = wanted.filter((feature) => adapter.features.has(feature));
  return adapter.requestDevice({
    label: 'attention-lens device',
    requiredFeatures,
    requiredLimits: {
      maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize,
      maxBufferSize: limits.maxBufferSize,
      maxComputeWorkgroupStorageSize: limits.maxComputeWorkgroupStorageSize,
      maxStorageBuffersPerShaderStage: limits.maxStorageBuffersPerShaderStage,
    },
  });
}

/**
 * Builds the engine on `gpu` (navigator.gpu in the webview). Throws NoWebGpuAdapterError when the
 * browser has WebGPU but no adapter, or no WebGPU at all (gpu undefined).
 */
export async function createGpuEngineOn(gpu: GPU | undefined, model: LoadedModel, options: GpuEngineOptions = {}): Promise<GpuEngine> {
  if (!gpu) throw new NoWebGpuAdapterError('No WebGPU adapter: this environment has no navigator.gpu; the CPU engine will run instead.');
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new NoWebGpuAdapterError('No WebGPU adapter: navigator.gpu.requestAdapter() returned none; the CPU engine will run instead.');
  const device = await requestEngineDevice(adapter);
  return GpuEngine.create(device, summarizeAdapter(adapter), model, options);
}
