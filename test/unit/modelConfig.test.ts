import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseModelConfig } from '../../engine/model/modelConfig';
import { ModelFormatError } from '../../engine/model/modelFormatError';
import { fixtureDir } from './fixtureModels';

const FILE = 'models/x/config.json';

function fixtureConfig(name: string): Record<string, unknown> {
  return JSON.parse(fs.readFileSync(path.join(fixtureDir(name), 'config.json'), 'utf8')) as Record<string, unknown>;
}

function rejects(json: unknown, pattern: RegExp): void {
  assert.throws(
    () => parseModelConfig(json, FILE),
    (error: unknown) => {
      assert.ok(error instanceof ModelFormatError);
      assert.equal(error.file, FILE);
      assert.ok(error.message.startsWith(`${FILE}: `), error.message);
      assert.match(error.message, pattern);
      return true;
    },
  );
}

test('reads a Llama config with grouped-query attention and tied embeddings', () => {
  const spec = parseModelConfig(fixtureConfig('llama-f32'), FILE);
  assert.deepEqual(spec, {
    architecture: 'LlamaForCausalLM',
    family: 'llama',
    vocabSize: 300,
    hiddenSize: 64,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 2,
    headDim: 16,
    intermediateSize: 128,
    maxPositions: 128,
    norm: 'rms',
    normEps: 1e-6,
    positional: 'rope',
    ropeTheta: 10000,
    mlp: 'swiglu',
    qkvBias: false,
    outBias: false,
    mlpBias: false,
    tieWordEmbeddings: true,
  });
});

test('Llama defaults: head_dim, kv heads, rope_theta, untied embeddings', () => {
  const config = fixtureConfig('llama-f32');
  for (const key of ['head_dim', 'num_key_value_heads', 'rope_theta', 'tie_word_embeddings']) delete config[key];
  const spec = parseModelConfig(config, FILE);
  assert.equal(spec.headDim, 16);
  assert.equal(spec.numKvHeads, 4);
  assert.equal(spec.ropeTheta, 10000);
  assert.equal(spec.tieWordEmbeddings, false);
});

test('Llama attention_bias and mlp_bias turn on the biases', () => {
  const spec = parseModelConfig({ ...fixtureConfig('llama-f32'), attention_bias: true, mlp_bias: true }, FILE);
  assert.equal(spec.qkvBias, true);
  assert.equal(spec.outBias, true);
  assert.equal(spec.mlpBias, true);
});

test('reads a Qwen2 config: q/k/v bias, rope_theta 1e6', () => {
  const spec = parseModelConfig(fixtureConfig('qwen2-f16'), FILE);
  assert.equal(spec.family, 'qwen2');
  assert.equal(spec.qkvBias, true);
  assert.equal(spec.outBias, false);
  assert.equal(spec.ropeTheta, 1e6);
  assert.equal(spec.headDim, 16);
});

test('reads GPT-2 configs: n_inner null means 4 * n_embd', () => {
  const spec = parseModelConfig(fixtureConfig('gpt2-f32'), FILE);
  assert.equal(spec.family, 'gpt2');
  assert.equal(spec.intermediateSize, 256);
  assert.equal(spec.maxPositions, 64);
  assert.equal(spec.norm, 'layer');
  assert.equal(spec.normEps, 1e-5);
  assert.equal(spec.positional, 'learned');
  assert.equal(spec.numKvHeads, 4);
  assert.equal(spec.tieWordEmbeddings, true);
  assert.equal(parseModelConfig(fixtureConfig('gpt2-f16'), FILE).intermediateSize, 128);
});

test('falls back to model_type when architectures is absent', () => {
  const config = fixtureConfig('qwen2-f16');
  delete config.architectures;
  assert.equal(parseModelConfig(config, FILE).architecture, 'Qwen2ForCausalLM');
});

test('an unknown architecture is refused with the supported list', () => {
  rejects({ architectures: ['GPTNeoXForCausalLM'] }, /architecture "GPTNeoXForCausalLM" is not supported; Attention Lens runs LlamaForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, SmolLM3ForCausalLM, Starcoder2ForCausalLM, Phi3ForCausalLM, GraniteForCausalLM, Gemma2ForCausalLM, Gemma3ForCausalLM, GPT2LMHeadModel/);
  rejects({ model_type: 'mistral' }, /model_type "mistral" is not supported/);
  rejects({}, /neither "architectures" nor "model_type"/);
  rejects('text', /not a JSON object/);
});

test('invalid numbers are refused naming the field', () => {
  rejects({ ...fixtureConfig('llama-f32'), hidden_size: 0 }, /"hidden_size" must be a positive integer, not 0/);
  rejects({ ...fixtureConfig('llama-f32'), num_hidden_layers: 2.5 }, /"num_hidden_layers" must be a positive integer, not 2.5/);
  rejects({ ...fixtureConfig('llama-f32'), vocab_size: undefined }, /required field "vocab_size" is missing/);
  rejects({ ...fixtureConfig('llama-f32'), num_key_value_heads: 3 }, /num_attention_heads 4 is not a multiple of num_key_value_heads 3/);
  rejects({ ...fixtureConfig('llama-f32'), rms_norm_eps: -1 }, /"rms_norm_eps" must be a positive number/);
  rejects({ ...fixtureConfig('gpt2-f32'), n_head: 5 }, /n_embd 64 is not divisible by n_head 5/);
  const noHeadDim = fixtureConfig('llama-f32');
  delete noHeadDim.head_dim;
  rejects({ ...noHeadDim, num_attention_heads: 6, num_key_value_heads: 6 }, /hidden_size 64 is not divisible by num_attention_heads 6/);
});

test('settings that would change the computation are refused, not ignored', () => {
  rejects({ ...fixtureConfig('llama-f32'), rope_scaling: { type: 'su', factor: 2 } }, /rope_scaling type "su" is not supported; Attention Lens implements "default", "linear", "dynamic", "yarn", "longrope", "llama3"/);
  rejects({ ...fixtureConfig('llama-f32'), rope_scaling: { rope_type: 'linear' } }, /rope_scaling: the required field "factor" is missing/);
  rejects({ ...fixtureConfig('llama-f32'), rope_scaling: { rope_type: 'llama3', factor: 8 } }, /rope_scaling: the required field "low_freq_factor" is missing/);
  rejects({ ...fixtureConfig('llama-f32'), rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4 } }, /rope_scaling: the required field "original_max_position_embeddings" is missing/);
  rejects({ ...fixtureConfig('rope-longrope'), rope_scaling: { type: 'longrope', short_factor: [1, 2], long_factor: [1, 2] } }, /"short_factor" must be a list of 8 positive numbers/);
  rejects({ ...fixtureConfig('llama-f32'), rope_parameters: { full_attention: { rope_type: 'default' }, sliding_attention: { rope_type: 'default' } } }, /rope_parameters gives separate rotary parameters per layer type \("full_attention"/);
  rejects({ ...fixtureConfig('llama-f32'), rope_scaling: { rope_type: 'dynamic', factor: 0.5 } }, /a dynamic scaling factor below 1 \(0\.5\)/);
  assert.equal(parseModelConfig({ ...fixtureConfig('llama-f32'), rope_scaling: { rope_type: 'default' } }, FILE).ropeTheta, 10000);
  assert.equal(parseModelConfig({ ...fixtureConfig('llama-f32'), rope_scaling: { rope_type: 'default' } }, FILE).ropeScaling, undefined);
  rejects({ ...fixtureConfig('qwen3-bf16'), use_sliding_window: true, sliding_window: 16, layer_types: ['full_attention'] }, /"layer_types" must list "full_attention" or "sliding_attention" for each of the 2 layers/);
  rejects({ ...fixtureConfig('gemma3-bf16'), num_hidden_layers: 2 ** 30 }, /num_hidden_layers 1073741824 is more than any model has/);
  rejects({ ...fixtureConfig('smollm3-f32'), no_rope_layers: [1, 2] }, /"no_rope_layers" must list 0 or 1 for each of the 2 layers/);
  rejects({ ...fixtureConfig('llama-f32'), hidden_act: 'gelu' }, /hidden_act "gelu" is not supported/);
  rejects({ ...fixtureConfig('gpt2-f32'), activation_function: 'relu' }, /activation_function "relu" is not supported/);
  rejects({ ...fixtureConfig('gpt2-f32'), scale_attn_by_inverse_layer_idx: true }, /scale_attn_by_inverse_layer_idx/);
});

test('reads a Qwen3 config: per-head q/k norm, head_dim apart from hidden / heads (128 when absent), no biases', () => {
  const spec = parseModelConfig(fixtureConfig('qwen3-bf16'), FILE);
  assert.equal(spec.family, 'qwen3');
  assert.equal(spec.headDim, 32);
  assert.equal(spec.hiddenSize / spec.numHeads, 16);
  assert.equal(spec.qkNorm, true);
  assert.equal(spec.qkvBias, false);
  assert.equal(spec.outBias, false);
  const noHeadDim = fixtureConfig('qwen3-bf16');
  delete noHeadDim.head_dim;
  assert.equal(parseModelConfig(noHeadDim, FILE).headDim, 128);
  assert.equal(parseModelConfig({ ...fixtureConfig('qwen3-bf16'), attention_bias: true }, FILE).qkvBias, true);
  assert.equal(parseModelConfig({ architectures: undefined, ...fixtureConfig('qwen3-bf16'), model_type: 'qwen3' }, FILE).architecture, 'Qwen3ForCausalLM');
});

test('reads every rotary scaling transformers implements, from rope_scaling and from rope_parameters', () => {
  assert.deepEqual(parseModelConfig(fixtureConfig('rope-linear'), FILE).ropeScaling, { type: 'linear', factor: 4 });
  const dynamic = parseModelConfig(fixtureConfig('rope-dynamic'), FILE);
  assert.deepEqual(dynamic.ropeScaling, { type: 'dynamic', factor: 2, originalMaxPositions: 24 });
  assert.equal(dynamic.maxPositions, 48, 'dynamic NTK runs sequences up to factor x the trained length');
  const yarn = parseModelConfig(fixtureConfig('rope-yarn'), FILE);
  assert.equal(yarn.ropeTheta, 10000, 'rope_theta inside rope_parameters');
  assert.deepEqual(yarn.ropeScaling, { type: 'yarn', factor: 4, attentionFactor: 0.1 * Math.log(4) + 1, betaFast: 32, betaSlow: 1, originalMaxPositions: 32, truncate: true });
  const longrope = parseModelConfig(fixtureConfig('rope-longrope'), FILE);
  assert.equal(longrope.ropeScaling?.type, 'longrope');
  assert.equal(longrope.ropeScaling?.type === 'longrope' && longrope.ropeScaling.originalMaxPositions, 16, 'Phi-3 keeps original_max_position_embeddings at the top level');
  assert.equal(longrope.ropeScaling?.type === 'longrope' && longrope.ropeScaling.attentionFactor, Math.sqrt(1 + Math.log(64 / 16) / Math.log(16)));
  assert.deepEqual(parseModelConfig(fixtureConfig('rope-llama3'), FILE).ropeScaling, { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 64 });

  // Qwen3's documented YaRN settings: transformers 5 keeps the factor as written (4), not the ratio of the lengths.
  const qwen3Yarn = parseModelConfig({ ...fixtureConfig('qwen3-bf16'), max_position_embeddings: 40960, rope_scaling: { rope_type: 'yarn', factor: 4, original_max_position_embeddings: 32768 } }, FILE);
  assert.equal(qwen3Yarn.ropeScaling?.type === 'yarn' && qwen3Yarn.ropeScaling.factor, 4);
  // DeepSeek's mscale pair: the attention factor is their ratio.
  const mscaled = parseModelConfig({ ...fixtureConfig('llama-f32'), rope_scaling: { type: 'yarn', factor: 40, mscale: 1, mscale_all_dim: 0.5, original_max_position_embeddings: 4096, beta_fast: 0 } }, FILE);
  assert.ok(mscaled.ropeScaling?.type === 'yarn');
  assert.equal(mscaled.ropeScaling.attentionFactor, (0.1 * Math.log(40) + 1) / (0.05 * Math.log(40) + 1));
  assert.equal(mscaled.ropeScaling.betaFast, 32, 'beta_fast 0 means the default, as `or 32` does in transformers');
});

test('sliding windows: Qwen2/Qwen3 from max_window_layers on or by layer_types, SmolLM3 on its NoPE layers, none unless use_sliding_window', () => {
  assert.deepEqual(parseModelConfig(fixtureConfig('qwen2-sliding'), FILE).slidingWindow, [0, 12]);
  assert.equal(parseModelConfig({ ...fixtureConfig('qwen2-sliding'), use_sliding_window: false }, FILE).slidingWindow, undefined);
  assert.deepEqual(parseModelConfig({ ...fixtureConfig('qwen3-bf16'), use_sliding_window: true, sliding_window: 16, max_window_layers: 0 }, FILE).slidingWindow, [16, 16]);
  assert.deepEqual(parseModelConfig({ ...fixtureConfig('qwen3-bf16'), use_sliding_window: true, sliding_window: 16, layer_types: ['sliding_attention', 'full_attention'] }, FILE).slidingWindow, [16, 0]);
  // A window as long as the context never hides anything: no sliding layers.
  assert.equal(parseModelConfig({ ...fixtureConfig('qwen2-f16'), use_sliding_window: true, sliding_window: 256, max_window_layers: 0 }, FILE).slidingWindow, undefined);
  assert.deepEqual(parseModelConfig({ ...fixtureConfig('smollm3-f32'), use_sliding_window: true, sliding_window: 8, layer_types: undefined }, FILE).slidingWindow, [0, 8]);
});

test('reads a SmolLM3 config: NoPE layers from no_rope_layers or every no_rope_layer_interval-th layer, head_dim from hidden / heads, tied by default', () => {
  const spec = parseModelConfig(fixtureConfig('smollm3-f32'), FILE);
  assert.equal(spec.family, 'smollm3');
  assert.deepEqual(spec.ropeLayers, [true, false]);
  const eight = { ...fixtureConfig('smollm3-f32'), num_hidden_layers: 8, no_rope_layers: undefined, tie_word_embeddings: undefined };
  const parsed = parseModelConfig(eight, FILE);
  assert.deepEqual(parsed.ropeLayers, [true, true, true, false, true, true, true, false]);
  assert.equal(parsed.tieWordEmbeddings, true);
  assert.equal(parseModelConfig({ ...fixtureConfig('smollm3-f32'), no_rope_layers: [1, 1] }, FILE).ropeLayers, undefined, 'every layer rotates: nothing to say');
});

test('reads a StarCoder2 config: LayerNorm with bias, biases everywhere, a plain tanh-GELU MLP, every layer in the sliding window', () => {
  const spec = parseModelConfig(fixtureConfig('starcoder2-bf16'), FILE);
  assert.equal(spec.family, 'starcoder2');
  assert.equal(spec.norm, 'layer');
  assert.equal(spec.normEps, 1e-5);
  assert.equal(spec.mlp, 'gelu');
  assert.equal(spec.positional, 'rope');
  assert.deepEqual([spec.qkvBias, spec.outBias, spec.mlpBias], [true, true, true]);
  assert.deepEqual(spec.slidingWindow, [16, 16]);
  assert.equal(parseModelConfig({ ...fixtureConfig('starcoder2-bf16'), sliding_window: null }, FILE).slidingWindow, undefined);
  assert.equal(parseModelConfig({ ...fixtureConfig('starcoder2-bf16'), use_bias: false }, FILE).qkvBias, false);
  rejects({ ...fixtureConfig('starcoder2-bf16'), hidden_act: 'gelu' }, /hidden_act "gelu" is not supported; only the tanh GELU/);
});

test('reads a Phi-3 config: partial rotary from partial_rotary_factor, no biases, every layer in the sliding window, longrope factors per rotary frequency', () => {
  const spec = parseModelConfig(fixtureConfig('phi3-f32'), FILE);
  assert.equal(spec.family, 'phi3');
  assert.equal(spec.headDim, 16);
  assert.equal(spec.rotaryDim, 12);
  assert.deepEqual([spec.qkvBias, spec.outBias, spec.mlpBias], [false, false, false]);
  assert.deepEqual(spec.slidingWindow, [24, 24]);
  assert.equal(parseModelConfig({ ...fixtureConfig('phi3-f32'), partial_rotary_factor: 1 }, FILE).rotaryDim, undefined);
  rejects({ ...fixtureConfig('phi3-f32'), partial_rotary_factor: 0.7 }, /partial_rotary_factor gives 11 rotary dimensions of 16/);
  // Phi-3's longrope lists one factor per rotary frequency: 6 here, not head_dim / 2.
  const longrope = { ...fixtureConfig('phi3-f32'), rope_scaling: { type: 'longrope', short_factor: [1, 1, 1, 1, 1, 1], long_factor: [1, 2, 3, 4, 5, 6] }, original_max_position_embeddings: 32 };
  assert.equal(parseModelConfig(longrope, FILE).ropeScaling?.type, 'longrope');
  rejects({ ...longrope, rope_scaling: { type: 'longrope', short_factor: [1, 1, 1, 1, 1, 1, 1, 1], long_factor: [1, 2, 3, 4, 5, 6, 7, 8] } }, /"short_factor" must be a list of 6 positive numbers/);
});

test('reads a Granite config: its four multipliers, folded into the weights at load', () => {
  const spec = parseModelConfig(fixtureConfig('granite-bf16'), FILE);
  assert.equal(spec.family, 'granite');
  assert.deepEqual(spec.multipliers, { embedding: 12, attention: 0.125, residual: 0.22, logits: 8 });
  rejects({ ...fixtureConfig('granite-bf16'), logits_scaling: 0 }, /"logits_scaling" must be a positive number, not 0/);
});

test('reads a Gemma 3 text config: local and global layers with their own rotary bases, q/k and post norms, GeGLU, the scalars folded at load', () => {
  const spec = parseModelConfig(fixtureConfig('gemma3-bf16'), FILE);
  assert.equal(spec.family, 'gemma3');
  assert.equal(spec.headDim, 32);
  assert.deepEqual(spec.slidingWindow, [12, 0]);
  assert.equal(spec.localRopeTheta, 10000);
  assert.equal(spec.ropeTheta, 1e6);
  assert.deepEqual(spec.ropeScaling, { type: 'linear', factor: 8 });
  assert.equal(spec.qkNorm, true);
  assert.equal(spec.postNorms, true);
  assert.equal(spec.gateActivation, 'gelu_tanh');
  assert.deepEqual(spec.multipliers, { embedding: 8, attention: 1 / Math.sqrt(24), residual: 1, logits: 1 });
  // Without layer_types, every sliding_window_pattern-th layer is global.
  const six = parseModelConfig({ ...fixtureConfig('gemma3-bf16'), num_hidden_layers: 7, layer_types: undefined, sliding_window_pattern: 6 }, FILE);
  assert.deepEqual(six.slidingWindow, [12, 12, 12, 12, 12, 0, 12]);
  // transformers 5: rope_parameters per layer type.
  const v5 = parseModelConfig(
    { ...fixtureConfig('gemma3-bf16'), rope_scaling: undefined, rope_theta: undefined, rope_local_base_freq: undefined, rope_parameters: { full_attention: { rope_type: 'linear', factor: 8, rope_theta: 1e6 }, sliding_attention: { rope_type: 'default', rope_theta: 10000 } } },
    FILE,
  );
  assert.deepEqual([v5.ropeTheta, v5.localRopeTheta, v5.ropeScaling], [1e6, 10000, { type: 'linear', factor: 8 }]);
  assert.equal(parseModelConfig({ ...fixtureConfig('gemma3-bf16'), final_logit_softcapping: 30 }, FILE).logitSoftcap, 30);
  rejects({ ...fixtureConfig('gemma3-bf16'), hidden_activation: 'gelu' }, /hidden_activation "gelu" is not supported/);
});

test('reads a Gemma 2 config: soft-capped scores and logits (50 and 30 by default), every other layer local, one rotary base, no q/k norms', () => {
  const spec = parseModelConfig(fixtureConfig('gemma2-f32'), FILE);
  assert.equal(spec.family, 'gemma2');
  assert.deepEqual([spec.attentionSoftcap, spec.logitSoftcap], [2, 5]);
  assert.deepEqual(spec.slidingWindow, [12, 0]);
  assert.equal(spec.localRopeTheta, undefined);
  assert.equal(spec.qkNorm, undefined);
  assert.equal(spec.postNorms, true);
  const defaults = parseModelConfig({ ...fixtureConfig('gemma2-f32'), attn_logit_softcapping: undefined, final_logit_softcapping: undefined, layer_types: undefined, num_hidden_layers: 4 }, FILE);
  assert.deepEqual([defaults.attentionSoftcap, defaults.logitSoftcap], [50, 30]);
  assert.deepEqual(defaults.slidingWindow, [12, 0, 12, 0]);
  assert.equal(parseModelConfig({ ...fixtureConfig('gemma2-f32'), attn_logit_softcapping: null }, FILE).attentionSoftcap, undefined);
  rejects({ ...fixtureConfig('gemma2-f32'), final_logit_softcapping: -1 }, /"final_logit_softcapping" must be a positive number, not -1/);
});
