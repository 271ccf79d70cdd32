/**
 * The browser host for the WebGPU engine: the webview's `navigator.gpu`. The Node hosts beside it
 * reach the same GpuEngine through Dawn (nodeWebGpu.ts); ONNX Runtime runs in Node only (nodeOnnx.ts).
 */
import type { AttentionEngine } from '../engine';
import type { LoadedModel } from '../model/modelTypes';
import { requestEngineDevice } from '../webgpu/gpuDevice';
import { GpuEngine, summarizeAdapter } from '../webgpu/gpuEngine';

/**
 * Creates the WebGPU engine on the page's adapter. Throws with what to do when there is none;
 * `onLost` hears of a lost device (not of one the engine destroyed itself).
 */
export async function createBrowserGpuEngine(model: LoadedModel, onLost: (message: string) => void, onDevice?: (device: GPUDevice) => void): Promise<AttentionEngine> {
  const gpu = typeof navigator !== 'undefined' ? navigator.gpu : undefined;
  const adapter = gpu ? await gpu.requestAdapter({ powerPreference: 'high-performance' }) : null;
  if (!adapter) {
    const reason = gpu ? 'no WebGPU adapter in this webview' : 'WebGPU is not available in this webview';
    throw new Error(`${reason}. Set attentionLens.backend to "auto" or "cpu" to run on the CPU.`);
  }
  const device = await requestEngineDevice(adapter);
  void device.lost.then((info) => {
    if (info.reason !== 'destroyed') onLost(info.message || info.reason);
  });
  onDevice?.(device);
  return GpuEngine.create(device, summarizeAdapter(adapter), model);
}
