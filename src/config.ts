/**
 * Typed view of the `attentionLens.*` settings. Mirrors `contributes.configuration` in
 * package.json (a unit test keeps the two in step). Pure: the caller passes a getter, so this
 * module is tested without VS Code.
 */

import { BACKEND_SETTINGS, type BackendSetting } from '../engine/backendPolicy';

export type Backend = BackendSetting;
export type DistanceMode = 'tokens' | 'tokensOrOtherLine';
export type Weighting = 'attention' | 'valueWeighted';
export type AutoAnalyze = 'off' | 'onOpen' | 'onSave' | 'onIdle';

export interface AttentionLensConfig {
  /** '' for the embedded default model, an absolute local model folder, or a Hugging Face repo id `org/name[@revision]`. */
  readonly model: string;
  readonly backend: Backend;
  /** ONNX Runtime threads in the extension host (0: every core). */
  readonly cpuThreads: number;
  /** Memory the CPU engine keeps for incremental re-analysis, MiB. */
  readonly cacheMegabytes: number;
  readonly topK: number;
  readonly minDistance: number;
  readonly distance: DistanceMode;
  /** What the summaries weigh: attention probabilities, or value-weighted attention. */
  readonly weighting: Weighting;
  /** Smallest attention mass (0-1) the views show. */
  readonly threshold: number;
  readonly autoAnalyze: AutoAnalyze;
  readonly idleDelayMs: number;
  readonly maxFileTokens: number;
  /** Tokens per forward pass (0: automatic, by backend; see engine/backendPolicy.ts windowTokens). */
  readonly contextWindow: number;
  /** Windows of a file longer than the context start with its imports and top-level signatures. */
  readonly windowPrefix: boolean;
  /** List attention sinks as sources after all (by default the views show them apart). */
  readonly showSinks: boolean;
  readonly overlayEnabled: boolean;
  readonly codeLensEnabled: boolean;
  /** The share of the editor area the panel takes when it opens beside the editor. */
  readonly panelWidth: number;
  readonly huggingFaceEndpoint: string;
  /** Where downloaded models are cached; '' for the extension's global storage. */
  readonly cacheDirectory: string;
}

/** Setting keys relative to the `attentionLens` section, as package.json declares them. */
export const SETTING_KEYS = {
  model: 'model',
  backend: 'backend',
  cpuThreads: 'cpuThreads',
  cacheMegabytes: 'cacheMegabytes',
  topK: 'topK',
  minDistance: 'minDistance',
  distance: 'distance',
  weighting: 'weighting',
  threshold: 'threshold',
  autoAnalyze: 'autoAnalyze',
  idleDelayMs: 'idleDelayMs',
  maxFileTokens: 'maxFileTokens',
  contextWindow: 'contextWindow',
  windowPrefix: 'windowPrefix',
  showSinks: 'showSinks',
  overlayEnabled: 'overlay.enabled',
  codeLensEnabled: 'codeLens.enabled',
  panelWidth: 'panel.width',
  huggingFaceEndpoint: 'huggingFaceEndpoint',
  cacheDirectory: 'cacheDirectory',
} as const satisfies Record<keyof AttentionLensConfig, string>;

export const DEFAULT_CONFIG: AttentionLensConfig = {
  model: '',
  backend: 'auto',
  cpuThreads: 0,
  cacheMegabytes: 256,
  topK: 8,
  minDistance: 64,
  distance: 'tokens',
  weighting: 'attention',
  threshold: 0.05,
  autoAnalyze: 'off',
  idleDelayMs: 1500,
  maxFileTokens: 16384,
  contextWindow: 0,
  windowPrefix: true,
  showSinks: false,
  overlayEnabled: true,
  codeLensEnabled: true,
  panelWidth: 0.33,
  huggingFaceEndpoint: 'https://huggingface.co',
  cacheDirectory: '',
};

/** Reads one raw setting value; `undefined` when unset. */
export type SettingGetter = (key: string) => unknown;

function oneOf<T extends string>(value: unknown, allowed: readonly T[], fallback: T): T {
  return typeof value === 'string' && (allowed as readonly string[]).includes(value) ? (value as T) : fallback;
}

function integerIn(value: unknown, min: number, max: number, fallback: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) return fallback;
  return Math.min(max, Math.max(min, Math.round(value)));
}

function numberIn(value: unknown, min: number, max: number, fallback: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) return fallback;
  return Math.min(max, Math.max(min, value));
}

/**
 * Builds the configuration from raw values. Values of the wrong type fall back to the default and
 * numbers are clamped to their declared range, because settings.json is edited by hand.
 */
export function readConfig(get: SettingGetter): AttentionLensConfig {
  const d = DEFAULT_CONFIG;
  const text = (value: unknown, fallback: string) => (typeof value === 'string' ? value.trim() : fallback);
  const flag = (value: unknown, fallback: boolean) => (typeof value === 'boolean' ? value : fallback);
  const endpoint = text(get(SETTING_KEYS.huggingFaceEndpoint), d.huggingFaceEndpoint).replace(/\/+$/, '');
  return {
    model: text(get(SETTING_KEYS.model), d.model),
    backend: oneOf(get(SETTING_KEYS.backend), BACKEND_SETTINGS, d.backend),
    cpuThreads: integerIn(get(SETTING_KEYS.cpuThreads), 0, 256, d.cpuThreads),
    cacheMegabytes: integerIn(get(SETTING_KEYS.cacheMegabytes), 0, 16384, d.cacheMegabytes),
    topK: integerIn(get(SETTING_KEYS.topK), 1, 64, d.topK),
    minDistance: integerIn(get(SETTING_KEYS.minDistance), 0, 1_000_000, d.minDistance),
    distance: oneOf(get(SETTING_KEYS.distance), ['tokens', 'tokensOrOtherLine'], d.distance),
    weighting: oneOf(get(SETTING_KEYS.weighting), ['attention', 'valueWeighted'], d.weighting),
    threshold: numberIn(get(SETTING_KEYS.threshold), 0, 1, d.threshold),
    autoAnalyze: oneOf(get(SETTING_KEYS.autoAnalyze), ['off', 'onOpen', 'onSave', 'onIdle'], d.autoAnalyze),
    idleDelayMs: integerIn(get(SETTING_KEYS.idleDelayMs), 200, 60_000, d.idleDelayMs),
    maxFileTokens: integerIn(get(SETTING_KEYS.maxFileTokens), 256, 262_144, d.maxFileTokens),
    contextWindow: get(SETTING_KEYS.contextWindow) === 0 ? 0 : integerIn(get(SETTING_KEYS.contextWindow), 64, 131_072, d.contextWindow),
    windowPrefix: flag(get(SETTING_KEYS.windowPrefix), d.windowPrefix),
    showSinks: flag(get(SETTING_KEYS.showSinks), d.showSinks),
    overlayEnabled: flag(get(SETTING_KEYS.overlayEnabled), d.overlayEnabled),
    codeLensEnabled: flag(get(SETTING_KEYS.codeLensEnabled), d.codeLensEnabled),
    panelWidth: numberIn(get(SETTING_KEYS.panelWidth), 0.2, 0.5, d.panelWidth),
    huggingFaceEndpoint: /^https?:\/\/[^\s]+$/.test(endpoint) ? endpoint : d.huggingFaceEndpoint,
    cacheDirectory: text(get(SETTING_KEYS.cacheDirectory), d.cacheDirectory),
  };
}
