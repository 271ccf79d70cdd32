/**
 * Probes WebGPU in the webview: adapter info, features and the limits the engine plans with.
 * Never throws: a missing API or adapter becomes `{ ok: false, error }` for the host to show.
 */
import { summarizeAdapter } from '../engine/webgpu/gpuEngine';
import type { WebGpuProbeResult } from '../src/shared/protocol';

export async function probeWebGpu(gpu: GPU | undefined = globalThis.navigator?.gpu): Promise<WebGpuProbeResult> {
  if (!gpu) {
    return { ok: false, error: 'navigator.gpu is not available in this webview (WebGPU is disabled or unsupported by this VS Code build)' };
  }
  let adapter: GPUAdapter | null;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  } catch (error) {
    return { ok: false, error: `requestAdapter failed: ${error instanceof Error ? error.message : String(error)}` };
  }
  if (!adapter) return { ok: false, error: 'requestAdapter returned no adapter (no usable GPU or software adapter)' };
  return { ok: true, adapter: summarizeAdapter(adapter) };
}
