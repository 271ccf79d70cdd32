/**
 * The backend policy the editor and the CLI share: which engine runs for each setting on each kind
 * of machine, and the reason the user is shown.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import type { AdapterSummary } from '../../engine/attention';
import { ENGINE_CAPABILITIES, chooseBackend, windowTokens, type BackendFacts } from '../../engine/backendPolicy';

function adapter(isFallbackAdapter: boolean, vendor: string, architecture: string): AdapterSummary {
  return {
    vendor,
    architecture,
    device: '',
    description: '',
    isFallbackAdapter,
    features: [],
    limits: { maxBufferSize: 1 << 30, maxStorageBufferBindingSize: 1 << 27, maxComputeInvocationsPerWorkgroup: 256, maxComputeWorkgroupStorageSize: 16384, maxStorageBuffersPerShaderStage: 8 },
  };
}

const hardware: BackendFacts = { adapter: adapter(false, 'nvidia', 'ada') };
const software: BackendFacts = { adapter: adapter(true, 'google', 'swiftshader') };
const none: BackendFacts = { adapterProblem: 'WebGPU is not available in this webview' };
const noOnnx = (facts: BackendFacts): BackendFacts => ({ ...facts, onnxProblem: 'onnxruntime-node has no native binary for darwin-x64' });

test('auto: WebGPU on a hardware adapter, ONNX Runtime on a software adapter or none', () => {
  assert.deepEqual(chooseBackend('auto', hardware), { kind: 'webgpu', reason: 'hardware WebGPU adapter (nvidia ada)' });
  assert.deepEqual(chooseBackend('auto', software), { kind: 'onnxruntime', reason: 'the only WebGPU adapter is a software one (google swiftshader)' });
  assert.deepEqual(chooseBackend('auto', none), { kind: 'onnxruntime', reason: 'no WebGPU adapter (WebGPU is not available in this webview)' });
});

test('auto: the reference engine only where ONNX Runtime cannot load, and it says why', () => {
  const choice = chooseBackend('auto', noOnnx(software));
  assert.equal(choice.kind, 'reference');
  assert.match(choice.kind === 'reference' ? choice.reason : '', /software one \(google swiftshader\); ONNX Runtime cannot load \(onnxruntime-node has no native binary for darwin-x64\)/);
  assert.equal(chooseBackend('auto', noOnnx(hardware)).kind, 'webgpu');
});

test('explicit settings: webgpu needs an adapter, cpu is ONNX Runtime, reference is the oracle', () => {
  assert.equal(chooseBackend('webgpu', software).kind, 'webgpu');
  assert.match(chooseBackend('webgpu', none).error ?? '', /no WebGPU adapter \(WebGPU is not available in this webview\), and the backend is set to "webgpu"/);
  assert.deepEqual(chooseBackend('cpu', hardware), { kind: 'onnxruntime', reason: 'requested (backend "cpu")' });
  assert.equal(chooseBackend('cpu', noOnnx(none)).kind, 'reference');
  assert.deepEqual(chooseBackend('reference', hardware), { kind: 'reference', reason: 'requested (backend "reference")' });
});

test('value weighting and the causal checks run on every engine, so they do not change the choice', () => {
  for (const kind of ['webgpu', 'onnxruntime', 'reference'] as const) {
    assert.deepEqual(ENGINE_CAPABILITIES[kind], { valueWeighting: true, causalChecks: true }, kind);
  }
  const needs = { valueWeighting: true };
  assert.deepEqual(chooseBackend('auto', hardware, needs), chooseBackend('auto', hardware));
  assert.equal(chooseBackend('auto', hardware, needs).kind, 'webgpu');
  assert.equal(chooseBackend('auto', software, needs).kind, 'onnxruntime');
  assert.equal(chooseBackend('auto', noOnnx(hardware), needs).kind, 'webgpu');
  assert.equal(chooseBackend('webgpu', hardware, needs).kind, 'webgpu');
  assert.equal(chooseBackend('cpu', hardware, needs).kind, 'onnxruntime');
});

test('automatic windows: the full context on fast engines, 1024 tokens on slow ones; a set size wins', () => {
  assert.equal(windowTokens(0, { kind: 'onnxruntime' }, 2048), 2048);
  assert.equal(windowTokens(0, { kind: 'webgpu', adapter: hardware.adapter }, 32768), 32768);
  assert.equal(windowTokens(0, { kind: 'webgpu', adapter: software.adapter }, 2048), 1024);
  assert.equal(windowTokens(0, { kind: 'reference' }, 2048), 1024);
  assert.equal(windowTokens(0, { kind: 'reference' }, 512), 512);
  assert.equal(windowTokens(512, { kind: 'onnxruntime' }, 2048), 512);
  assert.equal(windowTokens(4096, { kind: 'onnxruntime' }, 2048), 2048);
});
