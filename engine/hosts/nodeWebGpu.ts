/**
 * The Node host for the WebGPU engine: finds an adapter through the npm `webgpu` package (Google's
 * Dawn) and builds the same GpuEngine the webview runs on `navigator.gpu`.
 *
 * Adapter choice:
 *  - `ATTENTION_LENS_ADAPTER=NAME` picks the adapter whose name contains NAME (Dawn's `adapter=`).
 *  - Otherwise the default adapter. When no Vulkan driver is installed and no ICD is named in the
 *    environment, but Debian's chromium ships SwiftShader (/usr/lib/chromium), SwiftShader is used:
 *    a CPU-backed adapter that is slow but exact, which lets tests and the CLI run without a GPU.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { create, globals } from 'webgpu';
import type { AdapterSummary } from '../attention';
import type { AttentionEngine } from '../engine';
import type { LoadedModel } from '../model/modelTypes';
import { GpuEngine, summarizeAdapter, type GpuEngineOptions } from '../webgpu/gpuEngine';
import { NoWebGpuAdapterError, requestEngineDevice } from '../webgpu/gpuDevice';

export { NoWebGpuAdapterError };

const chromiumDir = '/usr/lib/chromium';
const swiftShaderIcd = path.join(chromiumDir, 'vk_swiftshader_icd.json');
const chromiumVulkanLoader = path.join(chromiumDir, 'libvulkan.so.1');
/** Linux dlopen flag that keeps a library loaded after a failed `process.dlopen` (not in os.constants). */
const RTLD_NODELETE = 0x1000;

/**
 * Every GPU object `create()` returned, by its options. Dawn's Node binding crashes the process
 * when this object is garbage-collected while a device lives, so they stay referenced for the life
 * of the process (and are reused by later engines).
 */
const gpuInstances = new Map<string, GPU>();
let globalsInstalled = false;

/** Engine options as the Node host passes them on (kernel family, weight format, binding budget). */
export type NodeGpuEngineOptions = GpuEngineOptions;

/** Creates the WebGPU engine for `model` on the Node adapter. Throws NoWebGpuAdapterError without one. */
export async function createNodeGpuEngine(model: LoadedModel, options: NodeGpuEngineOptions = {}): Promise<AttentionEngine> {
  const { adapter, device } = await requestNodeDevice();
  return GpuEngine.create(device, summarizeAdapter(adapter), model, options);
}

/** Describes the adapter the Node host would use, or undefined when there is none. */
export async function probeNodeAdapter(): Promise<AdapterSummary | undefined> {
  try {
    return summarizeAdapter(await requestNodeAdapter());
  } catch (error) {
    if (error instanceof NoWebGpuAdapterError) return undefined;
    throw error;
  }
}

/** The Node adapter and a device on it with the adapter's own storage limits (the defaults are far lower). */
export async function requestNodeDevice(): Promise<{ adapter: GPUAdapter; device: GPUDevice }> {
  const adapter = await requestNodeAdapter();
  return { adapter, device: await requestEngineDevice(adapter) };
}

/** The adapter the Node host uses; throws NoWebGpuAdapterError (with what to install) without one. */
export async function requestNodeAdapter(): Promise<GPUAdapter> {
  prepareEnvironment();
  const named = process.env.ATTENTION_LENS_ADAPTER?.trim();
  const options = named ? [`adapter=${named}`] : [];
  const canUseSwiftShader =
    !process.env.VK_ICD_FILENAMES && !process.env.VK_DRIVER_FILES && fs.existsSync(swiftShaderIcd);

  // Without any installed Vulkan driver the default search can only fail (and prints a warning),
  // so go straight to SwiftShader when it is the one adapter this machine has.
  if (canUseSwiftShader && !hasInstalledVulkanDriver()) {
    const adapter = await requestAdapterWith(options, true).catch((error: unknown) => {
      throw noAdapter(`ATTENTION_LENS_ADAPTER=${named} matched no adapter: ${(error as Error).message}`);
    });
    if (adapter) return adapter;
    throw noAdapter('SwiftShader from chromium was found but gave no adapter');
  }
  let adapter: GPUAdapter | null;
  try {
    adapter = await requestAdapterWith(options, false);
  } catch (error) {
    // Dawn throws when the named adapter does not exist; its message lists the adapters it has.
    throw noAdapter(`ATTENTION_LENS_ADAPTER=${named} matched no adapter: ${(error as Error).message}`);
  }
  if (adapter) return adapter;
  if (canUseSwiftShader) {
    adapter = await requestAdapterWith(options, true);
    if (adapter) return adapter;
  }
  throw noAdapter(named ? `no adapter named like "${named}"` : 'no Vulkan, Metal or D3D12 adapter was found');
}

async function requestAdapterWith(options: string[], useSwiftShader: boolean): Promise<GPUAdapter | null> {
  if (useSwiftShader) process.env.VK_ICD_FILENAMES = swiftShaderIcd;
  // Without a system Vulkan loader, chromium's copy is the only way to reach any Vulkan driver,
  // including one named by a VK_ICD_FILENAMES the user set.
  preloadChromiumVulkanLoader();
  const key = `${options.join(' ')}|${process.env.VK_ICD_FILENAMES ?? ''}`;
  let gpu = gpuInstances.get(key);
  if (!gpu) {
    gpu = create(options);
    gpuInstances.set(key, gpu);
  }
  return gpu.requestAdapter({ powerPreference: 'high-performance' });
}

/**
 * Debian's chromium ships its own Vulkan loader beside SwiftShader; when the system has no
 * libvulkan.so.1, loading chromium's copy first lets Dawn's dlopen("libvulkan.so.1") find it.
 * `process.dlopen` rejects the library as a Node addon, but RTLD_NODELETE keeps it loaded.
 */
function preloadChromiumVulkanLoader(): void {
  if (!fs.existsSync(chromiumVulkanLoader) || hasSystemVulkanLoader()) return;
  const flags = os.constants.dlopen.RTLD_NOW! | os.constants.dlopen.RTLD_GLOBAL! | RTLD_NODELETE;
  try {
    process.dlopen({ exports: {} } as NodeJS.Module, chromiumVulkanLoader, flags);
  } catch {
    // Expected: "Module did not self-register". The library itself stays loaded.
  }
}

function hasSystemVulkanLoader(): boolean {
  const dirs = ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib', '/lib/x86_64-linux-gnu'];
  return dirs.some((dir) => fs.existsSync(path.join(dir, 'libvulkan.so.1')));
}

function hasInstalledVulkanDriver(): boolean {
  if (process.platform !== 'linux') return true;
  const dirs = ['/usr/share/vulkan/icd.d', '/etc/vulkan/icd.d', '/usr/local/share/vulkan/icd.d'];
  const hasIcd = dirs.some((dir) => fs.existsSync(dir) && fs.readdirSync(dir).some((name) => name.endsWith('.json')));
  return hasIcd && hasSystemVulkanLoader();
}

function prepareEnvironment(): void {
  if (!globalsInstalled) {
    // GPUBufferUsage, GPUShaderStage, GPUMapMode and friends, as a browser defines them.
    Object.assign(globalThis, globals);
    globalsInstalled = true;
  }
  if (!process.env.XDG_RUNTIME_DIR && process.platform === 'linux') {
    // The Vulkan loader logs an error line without a runtime directory; give it a private one.
    const uid = typeof process.getuid === 'function' ? process.getuid() : 0;
    const dir = path.join(os.tmpdir(), `attention-lens-runtime-${uid}`);
    try {
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      process.env.XDG_RUNTIME_DIR = dir;
    } catch {
      // Cosmetic only: without it the loader prints one warning.
    }
  }
}

function noAdapter(reason: string): NoWebGpuAdapterError {
  return new NoWebGpuAdapterError(
    `No WebGPU adapter: ${reason}. Install a Vulkan driver (GPU vendor driver, or mesa-vulkan-drivers for ` +
      `lavapipe), or chromium for SwiftShader (/usr/lib/chromium/vk_swiftshader_icd.json), or set ` +
      `ATTENTION_LENS_ADAPTER to one of the adapters Dawn lists; otherwise use the CPU backend.`,
  );
}
