/**
 * The engine a Node process runs (the CLI, tests, benchmarks), chosen by the backend policy from
 * what this machine has: a WebGPU adapter through Dawn, ONNX Runtime's native binary.
 */
import type { AdapterSummary } from '../attention';
import { chooseBackend, needsAdapterProbe, type BackendFacts, type BackendNeeds, type BackendSetting } from '../backendPolicy';
import type { AttentionEngine } from '../engine';
import type { LoadedModel } from '../model/modelTypes';
import { ReferenceEngine } from '../reference/referenceEngine';
import { summarizeAdapter } from '../webgpu/gpuEngine';
import { NodeOnnxEngine, OnnxRuntimeUnavailableError, onnxRuntimeProblem } from './nodeOnnx';
import { createNodeGpuEngine, NoWebGpuAdapterError, requestNodeAdapter } from './nodeWebGpu';

/** The setting asks for an engine this machine cannot run (e.g. "webgpu" without an adapter). */
export class BackendUnavailableError extends Error {
  override readonly name = 'BackendUnavailableError';
}

export interface NodeEngineOptions {
  /** ONNX Runtime threads (0 or undefined: every core). */
  readonly threads?: number;
  /** What the run needs from the engine (value weighting). */
  readonly needs?: BackendNeeds;
}

/** What this process has, as the policy needs it. Probes Dawn only when the setting needs an adapter. */
export async function nodeBackendFacts(setting: BackendSetting): Promise<BackendFacts> {
  const onnxProblem = onnxRuntimeProblem();
  if (!needsAdapterProbe(setting)) return { onnxProblem };
  try {
    const adapter: AdapterSummary = summarizeAdapter(await requestNodeAdapter());
    return { adapter, onnxProblem };
  } catch (error) {
    if (!(error instanceof NoWebGpuAdapterError)) throw error;
    return { adapterProblem: error.message.replace(/^no webgpu adapter:?\s*/i, ''), onnxProblem };
  }
}

/** Creates the engine the policy picks for `setting`; falls back to the reference when ONNX Runtime fails to start, and says so. */
export async function createNodeEngine(model: LoadedModel, setting: BackendSetting, options: NodeEngineOptions = {}): Promise<AttentionEngine> {
  const facts = await nodeBackendFacts(setting);
  const choice = chooseBackend(setting, facts, options.needs);
  if (choice.error !== undefined) throw new BackendUnavailableError(choice.error);
  switch (choice.kind) {
    case 'webgpu':
      return createNodeGpuEngine(model);
    case 'reference':
      return new ReferenceEngine(model, choice.reason);
    case 'onnxruntime':
      try {
        return await NodeOnnxEngine.create(model, { threads: options.threads, reason: choice.reason });
      } catch (error) {
        if (!(error instanceof OnnxRuntimeUnavailableError)) throw error;
        return new ReferenceEngine(model, `${choice.reason}; ONNX Runtime could not start (${error.message}), so the slow TypeScript reference engine runs`);
      }
  }
}
