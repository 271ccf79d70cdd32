/**
 * What the engine and the backend policy need to know of a WebGPU adapter: a plain description
 * (vendor, whether it is a software/fallback adapter, its limits) and the kernel family that suits it.
 * Shared by the webview's probe, the Node hosts and the engine.
 */
import type { AdapterSummary } from '../attention';
import type { KernelVariant } from './layerOps';

/** Describes a GPUAdapter in the project's shared form. */
export function summarizeAdapter(adapter: GPUAdapter): AdapterSummary {
  const info = adapter.info as GPUAdapterInfo & { isFallbackAdapter?: boolean };
  const legacy = adapter as GPUAdapter & { isFallbackAdapter?: boolean };
  const limits = adapter.limits;
  return {
    vendor: info.vendor ?? '',
    architecture: info.architecture ?? '',
    device: info.device ?? '',
    description: info.description ?? '',
    isFallbackAdapter: !!(info.isFallbackAdapter ?? legacy.isFallbackAdapter) || isSoftwareAdapterName(info),
    features: [...adapter.features].sort(),
    limits: {
      maxBufferSize: limits.maxBufferSize,
      maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize,
      maxComputeInvocationsPerWorkgroup: limits.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupStorageSize: limits.maxComputeWorkgroupStorageSize,
      maxStorageBuffersPerShaderStage: limits.maxStorageBuffersPerShaderStage,
    },
  };
}

function isSoftwareAdapterName(info: GPUAdapterInfo): boolean {
  const text = `${info.vendor} ${info.architecture} ${info.device} ${info.description}`;
  return /swiftshader|llvmpipe|lavapipe|softpipe|warp|microsoft basic render/i.test(text);
}

/** The kernel family that suits an adapter: CPU-backed adapters run register-blocked kernels faster. */
export function defaultKernelVariant(adapter: AdapterSummary): KernelVariant {
  return adapter.isFallbackAdapter ? 'register' : 'tiled';
}
