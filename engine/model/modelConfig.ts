/**
 * Reads a Hugging Face config.json into the engine's architecture-neutral ModelSpec. Supports the
 * three families the engines implement (Llama, Qwen2, GPT-2) and refuses, with a message naming the
 * field, every setting that would make our forward pass differ from the model's own.
 */
import { ModelFormatError } from './modelFormatError';
import type { ModelFamily, ModelSpec } from './modelTypes';

/** config.json `architectures` values the engines run, with their family. */
export const SUPPORTED_ARCHITECTURES: Readonly<Record<string, ModelFamily>> = {
  LlamaForCausalLM: 'llama',
  Qwen2ForCausalLM: 'qwen2',
  GPT2LMHeadModel: 'gpt2',
};

/** config.json `model_type` values, used when `architectures` is absent. */
const MODEL_TYPES: Readonly<Record<string, string>> = {
  llama: 'LlamaForCausalLM',
  qwen2: 'Qwen2ForCausalLM',
  gpt2: 'GPT2LMHeadModel',
};

/** Builds a ModelSpec from a parsed config.json. `fileName` names the file in error messages. */
export function parseModelConfig(json: unknown, fileName: string): ModelSpec {
  const fail = (problem: string): never => {
    throw new ModelFormatError(fileName, `${fileName}: ${problem}`);
  };
  if (typeof json !== 'object' || json === null || Array.isArray(json)) fail('the file is not a JSON object');
  const config = new ConfigReader(json as Record<string, unknown>, fail);

  const architecture = readArchitecture(json as Record<string, unknown>, fail);
  const family = SUPPORTED_ARCHITECTURES[architecture];
  if (!family) {
    fail(
      `architecture "${architecture}" is not supported; Attention Lens runs ${Object.keys(SUPPORTED_ARCHITECTURES).join(', ')}. Choose a model with one of these architectures.`,
    );
  }
  return family === 'gpt2' ? gpt2Spec(config, architecture, fail) : llamaSpec(config, architecture, family, fail);
}

function readArchitecture(json: Record<string, unknown>, fail: (problem: string) => never): string {
  const architectures = json.architectures;
  if (Array.isArray(architectures) && architectures.length > 0) {
    if (typeof architectures[0] !== 'string') fail('"architectures" must be a list of strings');
    return architectures[0] as string;
  }
  if (architectures !== undefined && architectures !== null && !Array.isArray(architectures)) {
    fail('"architectures" must be a list of strings');
  }
  const modelType = json.model_type;
  if (typeof modelType === 'string') {
    const fromType = MODEL_TYPES[modelType];
    if (fromType) return fromType;
    fail(
      `model_type "${modelType}" is not supported; Attention Lens runs ${Object.keys(SUPPORTED_ARCHITECTURES).join(', ')}. Choose a model with one of these architectures.`,
    );
  }
  return fail('neither "architectures" nor "model_type" says which architecture the model has');
}

function llamaSpec(
  config: ConfigReader,
  architecture: string,
  family: ModelFamily,
  fail: (problem: string) => never,
): ModelSpec {
  const hiddenSize = config.positiveInt('hidden_size');
  const numHeads = config.positiveInt('num_attention_heads');
  const numKvHeads = config.positiveInt('num_key_value_heads', numHeads);
  if (hiddenSize % numHeads !== 0 && config.optional('head_dim') === undefined) {
    fail(`hidden_size ${hiddenSize} is not divisible by num_attention_heads ${numHeads} and no head_dim is given`);
  }
  const headDim = config.positiveInt('head_dim', hiddenSize / numHeads);
  if (numHeads % numKvHeads !== 0) {
    fail(`num_attention_heads ${numHeads} is not a multiple of num_key_value_heads ${numKvHeads}`);
  }
  if (headDim % 2 !== 0) fail(`head_dim ${headDim} is odd; rotary embeddings need an even head size`);
  const activation = config.string('hidden_act', 'silu');
  if (activation !== 'silu') fail(`hidden_act "${activation}" is not supported; only "silu" (SwiGLU) is implemented for ${architecture}`);
  checkRopeScaling(config.optional('rope_scaling'), fail);
  if (family === 'qwen2' && config.boolean('use_sliding_window', false)) {
    fail('use_sliding_window is true; sliding-window attention is not implemented, so this model cannot be run exactly');
  }
  const attentionBias = config.boolean('attention_bias', false);
  return {
    architecture,
    family,
    vocabSize: config.positiveInt('vocab_size'),
    hiddenSize,
    numLayers: config.positiveInt('num_hidden_layers'),
    numHeads,
    numKvHeads,
    headDim,
    intermediateSize: config.positiveInt('intermediate_size'),
    maxPositions: config.positiveInt('max_position_embeddings'),
    norm: 'rms',
    normEps: config.positiveNumber('rms_norm_eps', 1e-6),
    positional: 'rope',
    ropeTheta: config.positiveNumber('rope_theta', 10000),
    mlp: 'swiglu',
    // Qwen2 always has q/k/v biases and no output bias; Llama's attention_bias covers q, k, v and o.
    qkvBias: family === 'qwen2' ? true : attentionBias,
    outBias: family === 'qwen2' ? false : attentionBias,
    mlpBias: family === 'qwen2' ? false : config.boolean('mlp_bias', false),
    tieWordEmbeddings: config.boolean('tie_word_embeddings', false),
  };
}

function gpt2Spec(config: ConfigReader, architecture: string, fail: (problem: string) => never): ModelSpec {
  const hiddenSize = config.positiveInt('n_embd');
  const numHeads = config.positiveInt('n_head');
  if (hiddenSize % numHeads !== 0) fail(`n_embd ${hiddenSize} is not divisible by n_head ${numHeads}`);
  const activation = config.string('activation_function', 'gelu_new');
  if (activation !== 'gelu_new' && activation !== 'gelu_pytorch_tanh') {
    fail(`activation_function "${activation}" is not supported; only the tanh GELU ("gelu_new") is implemented for GPT-2`);
  }
  if (!config.boolean('scale_attn_weights', true)) fail('scale_attn_weights is false; only scaled attention is implemented');
  if (config.boolean('scale_attn_by_inverse_layer_idx', false)) {
    fail('scale_attn_by_inverse_layer_idx is true; this attention scaling is not implemented');
  }
  const innerRaw = config.optional('n_inner');
  return {
    architecture,
    family: 'gpt2',
    vocabSize: config.positiveInt('vocab_size'),
    hiddenSize,
    numLayers: config.positiveInt('n_layer'),
    numHeads,
    numKvHeads: numHeads,
    headDim: hiddenSize / numHeads,
    intermediateSize: innerRaw === undefined || innerRaw === null ? 4 * hiddenSize : config.positiveInt('n_inner'),
    maxPositions: config.positiveInt('n_positions'),
    norm: 'layer',
    normEps: config.positiveNumber('layer_norm_epsilon', 1e-5),
    positional: 'learned',
    ropeTheta: 0,
    mlp: 'gelu',
    qkvBias: true,
    outBias: true,
    mlpBias: true,
    tieWordEmbeddings: config.boolean('tie_word_embeddings', true),
  };
}

/**
 * Rope scaling changes the rotation frequencies; running a scaled model with plain frequencies
 * would give wrong attention, so every scaling type is refused rather than ignored.
 */
function checkRopeScaling(raw: unknown, fail: (problem: string) => never): void {
  if (raw === undefined || raw === null) return;
  if (typeof raw !== 'object' || Array.isArray(raw)) fail('rope_scaling must be an object or null');
  const scaling = raw as Record<string, unknown>;
  const type = scaling.rope_type ?? scaling.type;
  if (type === 'default') return;
  fail(
    `rope_scaling type ${JSON.stringify(type)} is not supported; Attention Lens implements plain rotary embeddings only. Choose a model without rope_scaling.`,
  );
}

/** Typed access to config fields, with errors naming the field and the value found. */
class ConfigReader {
  constructor(
    private readonly json: Record<string, unknown>,
    private readonly fail: (problem: string) => never,
  ) {}

  optional(key: string): unknown {
    return this.json[key];
  }

  positiveInt(key: string, fallback?: number): number {
    const value = this.json[key] ?? fallback;
    if (value === undefined) return this.fail(`the required field "${key}" is missing`);
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
      return this.fail(`"${key}" must be a positive integer, not ${JSON.stringify(value)}`);
    }
    return value;
  }

  positiveNumber(key: string, fallback: number): number {
    const value = this.json[key] ?? fallback;
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
      return this.fail(`"${key}" must be a positive number, not ${JSON.stringify(value)}`);
    }
    return value;
  }

  boolean(key: string, fallback: boolean): boolean {
    const value = this.json[key] ?? fallback;
    if (typeof value !== 'boolean') return this.fail(`"${key}" must be true or false, not ${JSON.stringify(value)}`);
    return value;
  }

  string(key: string, fallback: string): string {
    const value = this.json[key] ?? fallback;
    if (typeof value !== 'string') return this.fail(`"${key}" must be a string, not ${JSON.stringify(value)}`);
    return value;
  }
}
