/**
 * Reads a Hugging Face config.json into the engine's architecture-neutral ModelSpec. Supports the
 * families the engines implement (Llama, Qwen2, Qwen3, SmolLM3, StarCoder2, Phi-3, Granite, Gemma 2,
 * Gemma 3, GPT-2) with every rotary scaling transformers implements (linear, dynamic, yarn,
 * longrope, llama3; from the legacy `rope_scaling` or transformers 5's `rope_parameters`), and
 * refuses, with a message naming the field, every setting that would make our forward pass differ
 * from the model's own.
 */
import { ModelFormatError } from './modelFormatError';
import type { ModelFamily, ModelSpec, RopeScaling } from './modelTypes';

/** config.json `architectures` values the engines run, with their family. */
export const SUPPORTED_ARCHITECTURES: Readonly<Record<string, ModelFamily>> = {
  LlamaForCausalLM: 'llama',
  Qwen2ForCausalLM: 'qwen2',
  Qwen3ForCausalLM: 'qwen3',
  SmolLM3ForCausalLM: 'smollm3',
  Starcoder2ForCausalLM: 'starcoder2',
  Phi3ForCausalLM: 'phi3',
  GraniteForCausalLM: 'granite',
  Gemma2ForCausalLM: 'gemma2',
  Gemma3ForCausalLM: 'gemma3',
  GPT2LMHeadModel: 'gpt2',
};

/** config.json `model_type` values, used when `architectures` is absent. */
const MODEL_TYPES: Readonly<Record<string, string>> = {
  llama: 'LlamaForCausalLM',
  qwen2: 'Qwen2ForCausalLM',
  qwen3: 'Qwen3ForCausalLM',
  smollm3: 'SmolLM3ForCausalLM',
  starcoder2: 'Starcoder2ForCausalLM',
  phi3: 'Phi3ForCausalLM',
  granite: 'GraniteForCausalLM',
  gemma2: 'Gemma2ForCausalLM',
  gemma3_text: 'Gemma3ForCausalLM',
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
  if (family === 'gpt2') return gpt2Spec(config, architecture, fail);
  if (family === 'starcoder2') return starcoder2Spec(config, architecture, fail);
  if (family === 'gemma3' || family === 'gemma2') return gemmaSpec(config, architecture, family, fail);
  return llamaSpec(config, architecture, family, fail);
}

/**
 * Gemma 3 text models (Gemma3TextConfig, modeling_gemma3.py): (1 + w) RMSNorms (folded at load),
 * four per layer (input, post-attention, pre- and post-feedforward), per-head q/k norms, GeGLU,
 * embeddings x sqrt(hidden), scores x query_pre_attn_scalar^-0.5, sliding-window (local) layers in
 * their pattern with their own rotary base, global layers with rope_theta and its scaling.
 * Gemma 2 (Gemma2Config, modeling_gemma2.py): the same without q/k norms and with one rotary base,
 * every other layer local (the first of each pair), and soft-capped attention scores and logits.
 */
function gemmaSpec(config: ConfigReader, architecture: string, family: 'gemma2' | 'gemma3', fail: (problem: string) => never): ModelSpec {
  const hiddenSize = config.positiveInt('hidden_size');
  const numHeads = config.positiveInt('num_attention_heads');
  const numKvHeads = config.positiveInt('num_key_value_heads', numHeads);
  if (numHeads % numKvHeads !== 0) fail(`num_attention_heads ${numHeads} is not a multiple of num_key_value_heads ${numKvHeads}`);
  const headDim = config.positiveInt('head_dim', 256);
  if (headDim % 2 !== 0) fail(`head_dim ${headDim} is odd; rotary embeddings need an even head size`);
  const activation = config.string('hidden_activation', 'gelu_pytorch_tanh');
  if (activation !== 'gelu_pytorch_tanh') fail(`hidden_activation "${activation}" is not supported; only "gelu_pytorch_tanh" (GeGLU) is implemented for ${architecture}`);
  // Gemma2Config defaults the caps to 50 (scores) and 30 (logits); Gemma3TextConfig to none.
  const softcap = (key: string, fallback: number | null): number | undefined => {
    const value = config.optional(key) === undefined ? fallback : config.optional(key);
    return value === null ? undefined : config.with({ [key]: value }).positiveNumber(key);
  };
  const attentionSoftcap = softcap('attn_logit_softcapping', family === 'gemma2' ? 50 : null);
  const logitSoftcap = softcap('final_logit_softcapping', family === 'gemma2' ? 30 : null);
  const numLayers = layerCount(config, fail);
  const trainedPositions = config.positiveInt('max_position_embeddings', family === 'gemma2' ? 8192 : 131072);
  // transformers 5 gives rope_parameters per layer type; 4.x rope_theta + rope_scaling for the
  // global layers and rope_local_base_freq for the sliding ones.
  const parameters = config.optional('rope_parameters');
  let global = config;
  let localTheta = config.positiveNumber('rope_local_base_freq', 10000);
  if (parameters && typeof parameters === 'object' && !Array.isArray(parameters) && 'full_attention' in parameters) {
    const perType = parameters as Record<string, unknown>;
    global = config.with({ rope_parameters: perType.full_attention });
    const local = perType.sliding_attention;
    if (local && typeof local === 'object') {
      const localValues = local as Record<string, unknown>;
      const localType = localValues.rope_type ?? 'default';
      if (localType !== 'default') fail(`rope_parameters.sliding_attention type ${JSON.stringify(localType)} is not supported; Gemma 3's local layers turn with plain rotary embeddings`);
      localTheta = new ConfigReader(localValues, (problem) => fail(`rope_parameters.sliding_attention: ${problem}`)).positiveNumber('rope_theta', localTheta);
    }
  }
  const rope = readRope(global, headDim, trainedPositions, fail);
  const window = config.positiveInt('sliding_window', 4096);
  if (family === 'gemma2') localTheta = rope.theta; // one rotary base for every layer
  let sliding = readLayerTypes(config, numLayers, fail);
  if (!sliding) {
    // Gemma3TextConfig: every sliding_window_pattern-th layer is global, the others local;
    // Gemma2Config: every other layer, the first of each pair local.
    const pattern = family === 'gemma2' ? 2 : config.positiveInt('sliding_window_pattern', 6);
    sliding = Array.from({ length: numLayers }, (_, l) => (l + 1) % pattern !== 0);
  }
  const slidingWindow = sliding.map((local) => (local && window < rope.maxPositions ? window : 0));
  const attentionBias = config.boolean('attention_bias', false);
  return {
    architecture,
    family,
    vocabSize: config.positiveInt('vocab_size'),
    hiddenSize,
    numLayers,
    numHeads,
    numKvHeads,
    headDim,
    intermediateSize: config.positiveInt('intermediate_size'),
    maxPositions: rope.maxPositions,
    norm: 'rms',
    normEps: config.positiveNumber('rms_norm_eps', 1e-6),
    positional: 'rope',
    ropeTheta: rope.theta,
    ...(rope.scaling ? { ropeScaling: rope.scaling } : {}),
    ...(slidingWindow.some((w) => w > 0) ? { slidingWindow, ...(family === 'gemma3' ? { localRopeTheta: localTheta } : {}) } : {}),
    ...(family === 'gemma3' ? { qkNorm: true } : {}),
    ...(attentionSoftcap ? { attentionSoftcap } : {}),
    ...(logitSoftcap ? { logitSoftcap } : {}),
    postNorms: true,
    mlp: 'swiglu',
    gateActivation: 'gelu_tanh',
    // sqrt(hidden) on the embeddings (in float32, as transformers computes a float32 model), and
    // query_pre_attn_scalar^-0.5 on the scores: folded into the weights at load (modelLoader.ts).
    multipliers: {
      embedding: Math.sqrt(hiddenSize),
      attention: 1 / Math.sqrt(config.positiveNumber('query_pre_attn_scalar', 256)),
      residual: 1,
      logits: 1,
    },
    qkvBias: attentionBias,
    outBias: attentionBias,
    mlpBias: false,
    tieWordEmbeddings: config.boolean('tie_word_embeddings', true),
  };
}

/**
 * StarCoder2 (Starcoder2Config, modeling_starcoder2.py): LayerNorm with bias (norm_epsilon), biases on
 * every linear (use_bias), a non-gated tanh-GELU MLP (c_fc, c_proj), rotary positions, and every
 * layer attending through the sliding window when one is set.
 */
function starcoder2Spec(config: ConfigReader, architecture: string, fail: (problem: string) => never): ModelSpec {
  const hiddenSize = config.positiveInt('hidden_size');
  const numHeads = config.positiveInt('num_attention_heads');
  const numKvHeads = config.positiveInt('num_key_value_heads', numHeads);
  if (hiddenSize % numHeads !== 0) fail(`hidden_size ${hiddenSize} is not divisible by num_attention_heads ${numHeads}`);
  if (numHeads % numKvHeads !== 0) fail(`num_attention_heads ${numHeads} is not a multiple of num_key_value_heads ${numKvHeads}`);
  const headDim = hiddenSize / numHeads;
  if (headDim % 2 !== 0) fail(`head_dim ${headDim} is odd; rotary embeddings need an even head size`);
  const activation = config.string('hidden_act', 'gelu_pytorch_tanh');
  if (activation !== 'gelu_pytorch_tanh' && activation !== 'gelu_new') {
    fail(`hidden_act "${activation}" is not supported; only the tanh GELU ("gelu_pytorch_tanh") is implemented for ${architecture}`);
  }
  const numLayers = layerCount(config, fail);
  const trainedPositions = config.positiveInt('max_position_embeddings');
  const rope = readRope(config, headDim, trainedPositions, fail);
  const windowRaw = config.optional('sliding_window');
  const window = windowRaw === undefined || windowRaw === null ? 0 : config.positiveInt('sliding_window');
  const bias = config.boolean('use_bias', true);
  return {
    architecture,
    family: 'starcoder2',
    vocabSize: config.positiveInt('vocab_size'),
    hiddenSize,
    numLayers,
    numHeads,
    numKvHeads,
    headDim,
    intermediateSize: config.positiveInt('intermediate_size'),
    maxPositions: rope.maxPositions,
    norm: 'layer',
    normEps: config.positiveNumber('norm_epsilon', 1e-5),
    positional: 'rope',
    ropeTheta: rope.theta,
    ...(rope.scaling ? { ropeScaling: rope.scaling } : {}),
    ...(window > 0 && window < rope.maxPositions ? { slidingWindow: Array.from({ length: numLayers }, () => window) } : {}),
    mlp: 'gelu',
    qkvBias: bias,
    outBias: bias,
    mlpBias: bias,
    tieWordEmbeddings: config.boolean('tie_word_embeddings', true),
  };
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
  // Qwen3Config defaults head_dim to 128 (not hidden / heads); SmolLM3Config always derives it; the others derive it when absent.
  const headDim = family === 'smollm3' ? hiddenSize / numHeads : config.positiveInt('head_dim', family === 'qwen3' ? 128 : hiddenSize / numHeads);
  if (!Number.isInteger(headDim)) fail(`hidden_size ${hiddenSize} is not divisible by num_attention_heads ${numHeads}`);
  if (numHeads % numKvHeads !== 0) {
    fail(`num_attention_heads ${numHeads} is not a multiple of num_key_value_heads ${numKvHeads}`);
  }
  if (headDim % 2 !== 0) fail(`head_dim ${headDim} is odd; rotary embeddings need an even head size`);
  const activation = config.string('hidden_act', 'silu');
  if (activation !== 'silu') fail(`hidden_act "${activation}" is not supported; only "silu" (SwiGLU) is implemented for ${architecture}`);
  // Phi-3 / Phi-4-mini rotate only int(head_dim x partial_rotary_factor) dimensions of each head.
  const rotaryDim = family === 'phi3' ? Math.floor(headDim * config.positiveNumber('partial_rotary_factor', 1)) : headDim;
  if (rotaryDim % 2 !== 0 || rotaryDim > headDim) fail(`partial_rotary_factor gives ${rotaryDim} rotary dimensions of ${headDim}; they must be even and at most head_dim`);
  const trainedPositions = config.positiveInt('max_position_embeddings');
  const rope = readRope(config, rotaryDim, trainedPositions, fail);
  const numLayers = layerCount(config, fail);
  const ropeLayers = family === 'smollm3' ? readNoRopeLayers(config, numLayers, fail) : undefined;
  const slidingWindow =
    family === 'qwen2' || family === 'qwen3' || family === 'smollm3'
      ? readSlidingWindows(config, family, numLayers, ropeLayers, fail)
      : family === 'phi3'
        ? everyLayerWindow(config, numLayers)
        : undefined;
  const attentionBias = config.boolean('attention_bias', false);
  return {
    architecture,
    family,
    vocabSize: config.positiveInt('vocab_size'),
    hiddenSize,
    numLayers,
    numHeads,
    numKvHeads,
    headDim,
    intermediateSize: config.positiveInt('intermediate_size'),
    maxPositions: rope.maxPositions,
    norm: 'rms',
    // Phi3Config's default is 1e-5; the others' 1e-6.
    normEps: config.positiveNumber('rms_norm_eps', family === 'phi3' ? 1e-5 : 1e-6),
    positional: 'rope',
    ropeTheta: rope.theta,
    ...(rope.scaling ? { ropeScaling: rope.scaling } : {}),
    ...(family === 'qwen3' ? { qkNorm: true } : {}),
    ...(rotaryDim < headDim ? { rotaryDim } : {}),
    ...(family === 'granite'
      ? {
          multipliers: {
            embedding: config.positiveNumber('embedding_multiplier', 1),
            attention: config.positiveNumber('attention_multiplier', 1),
            residual: config.positiveNumber('residual_multiplier', 1),
            logits: config.positiveNumber('logits_scaling', 1),
          },
        }
      : {}),
    ...(ropeLayers && ropeLayers.some((rotates) => !rotates) ? { ropeLayers } : {}),
    ...(slidingWindow && slidingWindow.some((window) => window > 0 && window < rope.maxPositions) ? { slidingWindow } : {}),
    mlp: 'swiglu',
    // Qwen2 always has q/k/v biases and no output bias; Phi-3 none; Llama's attention_bias covers q, k, v and o.
    qkvBias: family === 'qwen2' ? true : family === 'phi3' ? false : attentionBias,
    outBias: family === 'qwen2' || family === 'phi3' ? false : attentionBias,
    mlpBias: family === 'qwen2' || family === 'phi3' ? false : config.boolean('mlp_bias', false),
    // SmolLM3Config ties the embeddings by default; LlamaConfig and Qwen2/Qwen3Config do not.
    tieWordEmbeddings: config.boolean('tie_word_embeddings', family === 'smollm3'),
  };
}

/**
 * Which layers attend through a sliding window, as the Qwen2, Qwen3 and SmolLM3 configs decide:
 * none unless `use_sliding_window`; then `layer_types` when given ("sliding_attention" /
 * "full_attention" per layer), else Qwen2/Qwen3's layers from `max_window_layers` on, or SmolLM3's
 * NoPE layers. A window of `sliding_window` positions (the query and those before it).
 */
function readSlidingWindows(
  config: ConfigReader,
  family: ModelFamily,
  numLayers: number,
  ropeLayers: readonly boolean[] | undefined,
  fail: (problem: string) => never,
): number[] | undefined {
  if (!config.boolean('use_sliding_window', false)) return undefined;
  if (config.optional('sliding_window') === null) return undefined;
  const window = config.positiveInt('sliding_window');
  const sliding = readLayerTypes(config, numLayers, fail);
  if (sliding) return sliding.map((local) => (local ? window : 0));
  if (family === 'smollm3') return (ropeLayers ?? []).map((rotates) => (rotates ? 0 : window));
  const raw = config.optional('max_window_layers') ?? numLayers;
  if (typeof raw !== 'number' || !Number.isSafeInteger(raw) || raw < 0) return fail(`"max_window_layers" must be a whole number, not ${JSON.stringify(raw)}`);
  const first = raw;
  return Array.from({ length: numLayers }, (_, l) => (l >= first ? window : 0));
}

/** Phi-3's sliding_window: every layer, when it is set. */
function everyLayerWindow(config: ConfigReader, numLayers: number): number[] | undefined {
  const raw = config.optional('sliding_window');
  if (raw === undefined || raw === null) return undefined;
  const window = config.positiveInt('sliding_window');
  return Array.from({ length: numLayers }, () => window);
}

/** `layer_types` ("sliding_attention" / "full_attention" per layer) as whether each layer is local; undefined when absent. */
function readLayerTypes(config: ConfigReader, numLayers: number, fail: (problem: string) => never): boolean[] | undefined {
  const types = config.optional('layer_types');
  if (types === undefined || types === null) return undefined;
  if (!Array.isArray(types) || types.length !== numLayers || types.some((t) => t !== 'sliding_attention' && t !== 'full_attention')) {
    return fail(`"layer_types" must list "full_attention" or "sliding_attention" for each of the ${numLayers} layers, not ${JSON.stringify(types)}`);
  }
  return types.map((t) => t === 'sliding_attention');
}

/**
 * SmolLM3's NoPE layers: `no_rope_layers` (1 = the layer rotates, 0 = no positional encoding), or,
 * when absent, every `no_rope_layer_interval`-th layer (default 4) without, as SmolLM3Config builds it.
 */
function readNoRopeLayers(config: ConfigReader, numLayers: number, fail: (problem: string) => never): boolean[] {
  const raw = config.optional('no_rope_layers');
  if (raw === undefined || raw === null) {
    const interval = config.positiveInt('no_rope_layer_interval', 4);
    return Array.from({ length: numLayers }, (_, l) => (l + 1) % interval !== 0);
  }
  if (!Array.isArray(raw) || raw.length !== numLayers || raw.some((v) => v !== 0 && v !== 1)) {
    return fail(`"no_rope_layers" must list 0 or 1 for each of the ${numLayers} layers, not ${JSON.stringify(raw)}`);
  }
  return raw.map((v) => v === 1);
}

/** More layers than any model has: a config.json claiming more is damaged (and per-layer tables of that length would exhaust memory). */
const MAX_LAYERS = 4096;

function layerCount(config: ConfigReader, fail: (problem: string) => never): number {
  const layers = config.positiveInt('num_hidden_layers');
  if (layers > MAX_LAYERS) fail(`num_hidden_layers ${layers} is more than any model has (at most ${MAX_LAYERS} here); the config.json looks damaged`);
  return layers;
}

const ROPE_TYPES = ['default', 'linear', 'dynamic', 'yarn', 'longrope', 'llama3'];

/**
 * The rotary base and scaling, from transformers 5's `rope_parameters` (rope_theta inside) or the
 * legacy `rope_scaling` (`rope_type`, or `type` in older files) beside `rope_theta`, following
 * transformers' modeling_rope_utils.py. `maxPositions` is the longest sequence the engines accept:
 * max_position_embeddings, except for dynamic NTK scaling, which exists to run sequences longer than
 * that by `factor` (transformers itself sets no limit), so it accepts max_position_embeddings x factor.
 */
function readRope(
  config: ConfigReader,
  headDim: number,
  trainedPositions: number,
  fail: (problem: string) => never,
): { theta: number; scaling?: RopeScaling; maxPositions: number } {
  const parameters = config.optional('rope_parameters');
  const legacy = config.optional('rope_scaling');
  const field = parameters !== undefined && parameters !== null ? 'rope_parameters' : 'rope_scaling';
  const raw = field === 'rope_parameters' ? parameters : legacy;
  let theta = config.positiveNumber('rope_theta', 10000);
  if (raw === undefined || raw === null) return { theta, maxPositions: trainedPositions };
  if (typeof raw !== 'object' || Array.isArray(raw)) return fail(`${field} must be an object or null`);
  const values = raw as Record<string, unknown>;
  const perLayerType = Object.entries(values).find(([, value]) => typeof value === 'object' && value !== null && !Array.isArray(value));
  if (perLayerType) {
    fail(`${field} gives separate rotary parameters per layer type ("${perLayerType[0]}", ...), which only architectures Attention Lens does not run use`);
  }
  const read = new ConfigReader(values, (problem) => fail(`${field}: ${problem}`));
  if (field === 'rope_parameters' && values.rope_theta !== undefined) theta = read.positiveNumber('rope_theta', 10000);
  const type = values.rope_type ?? values.type ?? 'default';
  if (typeof type !== 'string' || !ROPE_TYPES.includes(type)) {
    return fail(
      `${field} type ${JSON.stringify(type)} is not supported; Attention Lens implements ${ROPE_TYPES.map((t) => `"${t}"`).join(', ')}. Choose a model with one of these.`,
    );
  }
  // Where the scalings that need the pretrained context length read it: the rope fields first, then
  // the top level (Phi-3 keeps it there), then max_position_embeddings, as transformers standardises.
  const original = (): number =>
    values.original_max_position_embeddings !== undefined
      ? read.positiveInt('original_max_position_embeddings')
      : config.positiveInt('original_max_position_embeddings', trainedPositions);
  const attention = (fallback: number): number => (values.attention_factor === undefined || values.attention_factor === null ? fallback : read.positiveNumber('attention_factor', 1));
  const same = { theta, maxPositions: trainedPositions };
  switch (type) {
    case 'default':
      return same;
    case 'linear':
      return { ...same, scaling: { type, factor: read.positiveNumber('factor') } };
    case 'dynamic': {
      const factor = read.positiveNumber('factor');
      if (factor < 1) fail(`${field}: a dynamic scaling factor below 1 (${factor}) would shrink the context`);
      return { ...same, scaling: { type, factor, originalMaxPositions: trainedPositions }, maxPositions: Math.floor(trainedPositions * factor) };
    }
    case 'yarn': {
      const originalMaxPositions = original();
      // transformers 5: the factor as given; the ratio of the context lengths only when it is absent.
      const factor = values.factor === undefined || values.factor === null ? trainedPositions / originalMaxPositions : read.positiveNumber('factor');
      const mscale = (scale: number, m: number) => (scale <= 1 ? 1 : 0.1 * m * Math.log(scale) + 1);
      const m = values.mscale === undefined || values.mscale === null ? 0 : read.positiveNumber('mscale', 1);
      const mAll = values.mscale_all_dim === undefined || values.mscale_all_dim === null ? 0 : read.positiveNumber('mscale_all_dim', 1);
      const attentionFactor = attention(m && mAll ? mscale(factor, m) / mscale(factor, mAll) : mscale(factor, 1));
      // `beta_fast or 32` in transformers: a zero or null means the default too.
      const beta = (key: string, fallback: number) => (values[key] ? read.positiveNumber(key, fallback) : fallback);
      return {
        ...same,
        scaling: { type, factor, attentionFactor, betaFast: beta('beta_fast', 32), betaSlow: beta('beta_slow', 1), originalMaxPositions, truncate: read.boolean('truncate', true) },
      };
    }
    case 'longrope': {
      const originalMaxPositions = original();
      const factors = (key: string): number[] => {
        const list = values[key];
        if (!Array.isArray(list) || list.length !== headDim / 2 || list.some((v) => typeof v !== 'number' || !Number.isFinite(v) || v <= 0)) {
          return fail(`${field}: "${key}" must be a list of ${headDim / 2} positive numbers (one per rotary frequency)`);
        }
        return list as number[];
      };
      const factor = values.factor === undefined || values.factor === null ? trainedPositions / originalMaxPositions : read.positiveNumber('factor');
      const attentionFactor = attention(factor <= 1 ? 1 : Math.sqrt(1 + Math.log(factor) / Math.log(originalMaxPositions)));
      return { ...same, scaling: { type, shortFactor: factors('short_factor'), longFactor: factors('long_factor'), attentionFactor, originalMaxPositions } };
    }
    case 'llama3': {
      const lowFreqFactor = read.positiveNumber('low_freq_factor');
      const highFreqFactor = read.positiveNumber('high_freq_factor');
      if (highFreqFactor <= lowFreqFactor) fail(`${field}: high_freq_factor (${highFreqFactor}) must exceed low_freq_factor (${lowFreqFactor})`);
      return { ...same, scaling: { type, factor: read.positiveNumber('factor'), lowFreqFactor, highFreqFactor, originalMaxPositions: read.positiveInt('original_max_position_embeddings') } };
    }
  }
  return fail(`${field} type ${JSON.stringify(type)} is not supported`);
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

/** Typed access to config fields, with errors naming the field and the value found. */
class ConfigReader {
  constructor(
    private readonly json: Record<string, unknown>,
    private readonly fail: (problem: string) => never,
  ) {}

  optional(key: string): unknown {
    return this.json[key];
  }

  /** A reader of the same config with some fields replaced. */
  with(overrides: Record<string, unknown>): ConfigReader {
    return new ConfigReader({ ...this.json, ...overrides }, this.fail);
  }

  positiveInt(key: string, fallback?: number): number {
    const value = this.json[key] ?? fallback;
    if (value === undefined) return this.fail(`the required field "${key}" is missing`);
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
      return this.fail(`"${key}" must be a positive integer, not ${JSON.stringify(value)}`);
    }
    return value;
  }

  positiveNumber(key: string, fallback?: number): number {
    const value = this.json[key] ?? fallback;
    if (value === undefined) return this.fail(`the required field "${key}" is missing`);
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
