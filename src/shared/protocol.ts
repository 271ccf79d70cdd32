/**
 * The typed message protocol between the extension host and the Attention Lens webview.
 * Shared by both sides; imports neither `vscode` nor the DOM.
 *
 * Rules every message follows:
 * - A discriminated union on `type`; each payload belongs to its type.
 * - Requests carry `requestId`; their response echoes it. Results carry `error?: string`, so a
 *   failed request still answers and the UI never waits forever.
 * - The webview sends `ready` (with its PROTOCOL_VERSION) first. The host queues its messages until
 *   `ready` arrives, and refuses a webview speaking another protocol version.
 */
import type { AdapterSummary, AttentionSummary, BackendInfo, ForwardStats, TokenSpan } from '../../engine/attention';
import type { KnockoutResult, SpanEffectResult } from '../../engine/causal';

/** Bumped whenever a message shape changes incompatibly. */
export const PROTOCOL_VERSION = 4;

/** What the webview found when it probed WebGPU. */
export type WebGpuProbeResult =
  | { readonly ok: true; readonly adapter: AdapterSummary }
  | { readonly ok: false; readonly error: string };

// ---------------------------------------------------------------------------------------------
// Webview -> host

export interface ReadyMessage {
  readonly type: 'ready';
  readonly protocolVersion: number;
}

/** The result of a `probeWebGpu` request. */
export interface ProbeResultMessage {
  readonly type: 'probeResult';
  readonly requestId: number;
  readonly probe: WebGpuProbeResult;
  readonly error?: string;
}

/** Something failed in the webview outside any request (device lost, uncaught error). */
export interface WebviewErrorMessage {
  readonly type: 'webviewError';
  readonly message: string;
}

/** The user asked the panel to run a host command (e.g. "Analyze Current File"). */
export interface RunCommandMessage {
  readonly type: 'runCommand';
  readonly command: PanelCommand;
}

/** The answer to `loadModel`. */
export interface ModelLoadedMessage {
  readonly type: 'modelLoaded';
  readonly requestId: number;
  readonly model?: LoadedModelInfo;
  readonly error?: string;
}

/** The answer to `analyze`. */
export interface AnalysisResultMessage {
  readonly type: 'analysisResult';
  readonly requestId: number;
  readonly result?: AnalysisPayload;
  readonly error?: string;
  /** True when the request was cancelled (then `error` says so too). */
  readonly cancelled?: boolean;
}

/** The answer to `attentionRow`: `query + 1` probabilities. */
export interface AttentionRowMessage {
  readonly type: 'attentionRowResult';
  readonly requestId: number;
  readonly probs?: Float32Array;
  readonly error?: string;
}

/** The answer to `reportMemory`: the webview's memory as it can see it. */
export interface MemoryReportMessage {
  readonly type: 'memoryReport';
  readonly requestId: number;
  /** JavaScript heap in use (Chromium's performance.memory), or null where the browser does not say. */
  readonly jsHeapBytes: number | null;
  /** Bytes of the WebGPU engine's device buffers, or null without a WebGPU engine. */
  readonly gpuBufferBytes: number | null;
  /** True when a garbage collection ran first (the browser exposes gc(), as the test harness asks). */
  readonly collected: boolean;
  readonly error?: string;
}

/** The answer to `knockout`. */
export interface KnockoutResultMessage {
  readonly type: 'knockoutResult';
  readonly requestId: number;
  readonly result?: KnockoutResult;
  readonly error?: string;
}

/** The answer to `spanEffect`. */
export interface SpanEffectResultMessage {
  readonly type: 'spanEffectResult';
  readonly requestId: number;
  readonly result?: SpanEffectResult;
  readonly error?: string;
}

/** The user clicked (or chose with the keyboard) a token in the panel: select it in the editor. */
export interface SelectTokenMessage {
  readonly type: 'selectToken';
  readonly uri: string;
  readonly token: number;
}

/** The user changed the layer/head view or the threshold in the panel. */
export interface SetViewMessage {
  readonly type: 'setView';
  readonly layer: number | 'all';
  readonly head: number | 'mean' | 'max' | 'definition';
  readonly threshold: number;
}

/** The panel drew a query view: what it shows, so the host (and tests) know the panel answered. */
export interface ViewRenderedMessage {
  readonly type: 'viewRendered';
  readonly uri: string;
  readonly queryName: string | null;
  /** The definitions listed, in order, with the weights shown. */
  readonly sources: readonly { readonly name: string; readonly weight: number }[];
  /** Tokens painted in the heatmap, and grid cells drawn. */
  readonly heatedTokens: number;
  readonly heatSource: 'exact' | 'topK';
  readonly gridCells: number;
  /** The dependency table's rows as drawn (after "Check dependencies"): name, attention, KL. */
  readonly dependencies?: readonly { readonly name: string; readonly attention: number; readonly kl: number }[];
}

/** The panel drew the dependency map (or the heads table): what it shows, for the host and tests. */
export interface MapRenderedMessage {
  readonly type: 'mapRendered';
  readonly uri: string;
  /** The document version of the map drawn. */
  readonly version: number;
  readonly threshold: number;
  /** Node labels in the order drawn ("kind name"). */
  readonly nodes: readonly string[];
  /** Edges drawn at the threshold, with how they compare with the code's references. */
  readonly edges: readonly { readonly from: number; readonly to: number; readonly weight: number; readonly agreement: 'both' | 'attentionOnly' | 'referenceOnly' }[];
  /** Rows of the definition-heads table as drawn ("L1 H7"), best first. */
  readonly heads: readonly string[];
}

/** The user brought a tab of the panel to the front (the host then keeps that tab's data current). */
export interface TabShownMessage {
  readonly type: 'tabShown';
  readonly tab: PanelTab;
}

export type WebviewToHostMessage =
  | MemoryReportMessage
  | KnockoutResultMessage
  | SpanEffectResultMessage
  | TabShownMessage
  | MapRenderedMessage
  | ViewRenderedMessage
  | SelectTokenMessage
  | SetViewMessage
  | ReadyMessage
  | ProbeResultMessage
  | ModelLoadedMessage
  | AnalysisResultMessage
  | AttentionRowMessage
  | WebviewErrorMessage
  | RunCommandMessage;

/** What the webview reports about a model it loaded. */
export interface LoadedModelInfo {
  readonly label: string;
  readonly architecture: string;
  readonly numLayers: number;
  readonly numHeads: number;
  readonly vocabSize: number;
  readonly maxPositions: number;
  readonly backend: BackendInfo;
  readonly loadMs: number;
}

/** The summaries of one forward pass, as sent from the webview to the host. */
export interface AnalysisPayload {
  readonly summary: AttentionSummary;
  readonly backend: BackendInfo;
  readonly stats: ForwardStats;
}

// ---------------------------------------------------------------------------------------------
// Host -> webview

/** Sent once after `ready`: whether the host accepted the webview's protocol version. */
export interface HandshakeMessage {
  readonly type: 'handshake';
  readonly protocolVersion: number;
  readonly accepted: boolean;
  readonly error?: string;
}

export interface ProbeWebGpuRequest {
  readonly type: 'probeWebGpu';
  readonly requestId: number;
}

/** What the panel shows about the current editor and analysis state. */
export interface PanelStateMessage {
  readonly type: 'panelState';
  readonly documentName?: string;
  readonly status: string;
}

/** Where the webview fetches a model's files: a webview URI for a folder the panel may read. */
export interface ModelLocation {
  /** Shown in messages, e.g. "embedded default model" or the folder path. */
  readonly label: string;
  /** Webview-fetchable URL of the folder, ending in '/'. */
  readonly baseUri: string;
  /** Names of the files present in the folder, so the webview never guesses. */
  readonly files: readonly string[];
}

export interface LoadModelRequest {
  readonly type: 'loadModel';
  readonly requestId: number;
  readonly model: ModelLocation;
  /**
   * The engine the host's backend policy chose for the panel (engine/backendPolicy.ts): WebGPU, or
   * the TypeScript reference. ONNX Runtime runs in the extension host, never in the webview.
   */
  readonly backend: 'webgpu' | 'reference';
  /** Why the reference runs, shown to the user (unused for WebGPU). */
  readonly reason: string;
}

/** Runs the forward pass on tokens the host produced and summarises attention over `spans`. */
export interface AnalyzeRequest {
  readonly type: 'analyze';
  readonly requestId: number;
  readonly tokenIds: readonly number[];
  readonly spans: readonly TokenSpan[];
  readonly topK: number;
  readonly layers?: readonly number[];
  /** Value-weighted summaries (Kobayashi et al. 2020); every engine computes them. */
  readonly weighting?: 'attention' | 'valueWeighted';
  /**
   * The document window this run belongs to: an engine with a run cache recomputes only from the
   * first token that differs from its last run under this key (engine/attention.ts).
   */
  readonly cacheKey?: string;
}

/** Asks the webview how much memory it holds (for the endurance tests and the log). */
export interface ReportMemoryRequest {
  readonly type: 'reportMemory';
  readonly requestId: number;
}

/** For tests only (the extension sends it in development and test mode): destroy the engine's GPU device as a driver reset would. */
export interface SimulateDeviceLossMessage {
  readonly type: 'simulateDeviceLoss';
  /** `now`, or once the next analysis has started (so the loss lands mid-run, deterministically). */
  readonly when: 'now' | 'duringNextAnalysis';
}

/** Forget the engine's cached runs of these keys (a closed document). */
export interface ReleaseCacheMessage {
  readonly type: 'releaseCache';
  readonly keys: readonly string[];
}

/** One exact probability row of the most recent analysis. */
export interface AttentionRowRequest {
  readonly type: 'attentionRow';
  readonly requestId: number;
  /** The `analyze` request whose run the row must come from; the answer is an error if the engine ran another since. */
  readonly afterRun: number;
  readonly layer: number;
  readonly head: number;
  readonly query: number;
}

/**
 * Knockout on the panel's engine (engine/causal.ts), after the run of `analyze` request `afterRun`:
 * the answer is an error if the engine ran another since.
 */
export interface KnockoutRequestMessage {
  readonly type: 'knockout';
  readonly requestId: number;
  readonly afterRun: number;
  readonly query: number;
  readonly spans: readonly { readonly start: number; readonly end: number }[];
  readonly layers?: { readonly start: number; readonly end: number };
}

/** A span hidden from every later token, on the panel's engine, after the run of `afterRun`. */
export interface SpanEffectRequestMessage {
  readonly type: 'spanEffect';
  readonly requestId: number;
  readonly afterRun: number;
  readonly span: TokenSpan;
}

/** Cancels the request with id `target` (an `analyze`); its answer then says `cancelled`. */
export interface CancelMessage {
  readonly type: 'cancel';
  readonly target: number;
}

/** The analysed document as the panel draws it: every token's text, and the definitions. */
export interface DocumentViewMessage {
  readonly type: 'documentView';
  readonly uri: string;
  readonly documentName: string;
  /** Text of each token (whitespace included), in order; concatenated they give the analysed text. */
  readonly tokens: readonly string[];
  /** For each token, the index of the identifier it belongs to, or -1 (keywords and punctuation). */
  readonly identifierOf: Int32Array;
  readonly definitions: readonly { readonly kind: string; readonly name: string; readonly tokenStart: number; readonly tokenEnd: number }[];
  readonly numLayers: number;
  readonly numHeads: number;
  /** Layers the summaries hold (all, unless the model was too large to summarise every layer). */
  readonly layers: readonly number[];
  /** Per entry of `layers`: what the layer sees when it is not every earlier token ("sees only the last 512 tokens"), else null. */
  readonly layerScopes?: readonly (string | null)[];
  readonly topK: number;
}

/** What the selected token attends to, for the heatmap and the layers x heads grid. */
export interface QueryViewMessage {
  readonly type: 'queryView';
  readonly uri: string;
  readonly query: { readonly name: string; readonly tokens: readonly number[] } | null;
  readonly view: { readonly layer: number | 'all'; readonly head: number | 'mean' | 'max' | 'definition' };
  readonly threshold: number;
  /**
   * Per document token: the attention weight the view gives it. 'exact': the head's full
   * probability row (a single layer and head of a one-window analysis); 'topK': the top-k positions
   * of the viewed heads.
   */
  readonly heat: Float32Array;
  readonly heatSource: 'exact' | 'topK';
  /**
   * Distant definitions and imports the query attends to, strongest first, with what each is for
   * the query's name (its definition, an earlier use of the name, unrelated; absent outside identifiers).
   */
  readonly sources: readonly { readonly definition: number; readonly weight: number; readonly relation?: 'definition' | 'earlierUse' | 'unrelated' }[];
  /** [layerIndex][head]: the largest mass the head puts on any distant definition or import. */
  readonly cellMass: Float32Array;
  /** [layerIndex][head][k]: the head's top source positions for the query (-1: none) and their weights. */
  readonly cellTop: Int32Array;
  readonly cellTopWeights: Float32Array;
  /** [layerIndex][head]: the head's mean share of attention on attention sinks over the file (src/analysis/sinks.ts). */
  readonly cellSinkShare?: Float32Array;
  /** [layerIndex][head]: 1 where the view reads the head (the definition heads, a chosen head, ...). */
  readonly cellRead?: Uint8Array;
  /** The view in words (which heads, sinks apart or not). */
  readonly reading?: string;
  /**
   * After "Check dependencies" on this query: per earlier definition or import, its attention,
   * value-weighted attention and knockout effect (KL in nats, change in log p of the next token),
   * strongest effect first.
   */
  readonly dependencies?: readonly DependencyRow[];
}

export interface DependencyRow {
  readonly definition: number;
  readonly attention: number;
  readonly valueWeighted: number;
  readonly kl: number;
  readonly deltaLogProb: number | null;
  readonly verdict: 'agrees' | 'attendedNoEffect' | 'effectWithoutAttention' | 'neither';
}

/** The dependency map of the analysed document under the current view (src/analysis/dependencyMap.ts). */
export interface DependencyMapMessage {
  readonly type: 'dependencyMap';
  readonly uri: string;
  /** The document version the map is of. */
  readonly version: number;
  readonly view: { readonly layer: number | 'all'; readonly head: number | 'mean' | 'max' | 'definition' };
  readonly nodes: readonly { readonly kind: string; readonly name: string; readonly line: number; readonly tokenStart: number; readonly identifiers: number }[];
  readonly edges: readonly {
    readonly from: number;
    readonly to: number;
    readonly weight: number;
    readonly meanMass: number;
    readonly references: number;
    readonly effect?: number;
    readonly tokens: readonly { readonly name: string; readonly line: number; readonly token: number; readonly weight: number }[];
  }[];
  /** Where the code's references come from, in words (tree-sitter, and a language server when one answered). */
  readonly referenceSource: string;
  /** Layers that see only part of the window or have no positions, in words ("layers 1-25 see only the last 512 tokens"). */
  readonly layerNote?: string;
}

/** Which heads follow the code's references in this document (src/analysis/definitionHeads.ts). */
export interface HeadsTableMessage {
  readonly type: 'headsTable';
  readonly uri: string;
  readonly uses: number;
  readonly minDistance: number;
  readonly topK: number;
  /** Best first. */
  readonly heads: readonly { readonly layer: number; readonly head: number; readonly precision: number; readonly recall: number }[];
  readonly baselines: { readonly nearestOccurrence: { readonly precision: number; readonly recall: number }; readonly uniform: { readonly precision: number; readonly recall: number } };
}

/** Brings a tab of the panel to the front. */
export interface ShowTabMessage {
  readonly type: 'showTab';
  readonly tab: PanelTab;
}

export type PanelTab = 'token' | 'map' | 'heads';

export type HostToWebviewMessage =
  | ReportMemoryRequest
  | SimulateDeviceLossMessage
  | ReleaseCacheMessage
  | KnockoutRequestMessage
  | SpanEffectRequestMessage
  | DependencyMapMessage
  | HeadsTableMessage
  | ShowTabMessage
  | DocumentViewMessage
  | QueryViewMessage
  | HandshakeMessage
  | ProbeWebGpuRequest
  | LoadModelRequest
  | AnalyzeRequest
  | AttentionRowRequest
  | CancelMessage
  | PanelStateMessage;

/** Host commands the panel may ask for; the host maps each to a registered command id. */
export type PanelCommand = 'analyzeFile' | 'chooseModel';

// ---------------------------------------------------------------------------------------------
// Validation of what arrives from the other side (messages cross a trust boundary as plain JSON).

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isAdapterSummary(value: unknown): value is AdapterSummary {
  if (!isRecord(value)) return false;
  const limits = value.limits;
  return (
    typeof value.vendor === 'string' &&
    typeof value.architecture === 'string' &&
    typeof value.device === 'string' &&
    typeof value.description === 'string' &&
    typeof value.isFallbackAdapter === 'boolean' &&
    Array.isArray(value.features) &&
    value.features.every((feature) => typeof feature === 'string') &&
    isRecord(limits) &&
    ['maxBufferSize', 'maxStorageBufferBindingSize', 'maxComputeInvocationsPerWorkgroup', 'maxComputeWorkgroupStorageSize', 'maxStorageBuffersPerShaderStage'].every(
      (key) => typeof limits[key] === 'number',
    )
  );
}

function isProbeResult(value: unknown): value is WebGpuProbeResult {
  if (!isRecord(value)) return false;
  if (value.ok === true) return isAdapterSummary(value.adapter);
  return value.ok === false && typeof value.error === 'string';
}

function isBackendInfo(value: unknown): value is BackendInfo {
  if (!isRecord(value)) return false;
  if (value.kind === 'reference') return typeof value.reason === 'string';
  if (value.kind === 'onnxruntime') return typeof value.reason === 'string' && typeof value.version === 'string' && typeof value.threads === 'number';
  return value.kind === 'webgpu' && isAdapterSummary(value.adapter) && typeof value.f16Storage === 'boolean' && (value.kernelVariant === 'tiled' || value.kernelVariant === 'register');
}

function isLoadedModelInfo(value: unknown): value is LoadedModelInfo {
  return (
    isRecord(value) &&
    typeof value.label === 'string' &&
    typeof value.architecture === 'string' &&
    ['numLayers', 'numHeads', 'vocabSize', 'maxPositions', 'loadMs'].every((key) => typeof value[key] === 'number') &&
    isBackendInfo(value.backend)
  );
}

const isInt = (x: unknown): x is number => Number.isInteger(x);
const isNum = (x: unknown): x is number => typeof x === 'number' && !Number.isNaN(x);
const isChoices = (x: unknown) => Array.isArray(x) && x.every((c) => isRecord(c) && isInt(c.token) && isNum(c.prob));

/** Why a knockout result from the webview is unusable, or undefined when it is well-formed. */
export function knockoutProblem(value: unknown): string | undefined {
  if (!isRecord(value)) return 'not an object';
  if (!isInt(value.query) || !(value.nextToken === null || isInt(value.nextToken)) || !isChoices(value.top)) return 'bad query, next token or top tokens';
  if (!Array.isArray(value.spans)) return 'no spans';
  for (const span of value.spans) {
    if (!isRecord(span) || !isInt(span.start) || !isInt(span.end) || !isNum(span.kl) || !(span.deltaLogProb === null || isNum(span.deltaLogProb)) || !isChoices(span.top)) return 'a malformed span';
  }
  return undefined;
}

/** Checks the summary's arrays have the lengths its counts imply, so indexing them is safe. */
export function summaryProblem(value: unknown): string | undefined {
  if (!isRecord(value)) return 'summary is not an object';
  const { numTokens: n, numHeads: H, topK: k, numSpans: S, layers } = value;
  if (![n, H, k, S].every((x) => typeof x === 'number' && Number.isInteger(x) && x >= 0)) return 'summary counts are not integers';
  if (!Array.isArray(layers) || !layers.every((l) => typeof l === 'number')) return 'summary layers are not numbers';
  const L = layers.length;
  const expect: Array<[string, unknown, new (...args: never[]) => ArrayLike<number>, number]> = [
    ['topIndices', value.topIndices, Int32Array, L * (H as number) * (n as number) * (k as number)],
    ['topWeights', value.topWeights, Float32Array, L * (H as number) * (n as number) * (k as number)],
    ['spanMass', value.spanMass, Float32Array, L * (H as number) * (n as number) * (S as number)],
    ['spanMassMean', value.spanMassMean, Float32Array, L * (n as number) * (S as number)],
    ['spanMassMax', value.spanMassMax, Float32Array, L * (n as number) * (S as number)],
  ];
  for (const [name, array, type, length] of expect) {
    if (!(array instanceof type)) return `summary.${name} is not a ${type.name}`;
    if (array.length !== length) return `summary.${name} has ${array.length} values, expected ${length}`;
  }
  return undefined;
}

/**
 * Returns the message if it is a well-formed webview -> host message, otherwise a reason why not.
 * The host logs and drops malformed messages instead of acting on them.
 */
export function parseWebviewMessage(value: unknown): WebviewToHostMessage | { readonly invalid: string } {
  if (!isRecord(value) || typeof value.type !== 'string') return { invalid: 'message without a string "type"' };
  switch (value.type) {
    case 'ready':
      return typeof value.protocolVersion === 'number'
        ? { type: 'ready', protocolVersion: value.protocolVersion }
        : { invalid: '"ready" without a numeric protocolVersion' };
    case 'probeResult':
      if (typeof value.requestId !== 'number') return { invalid: '"probeResult" without a numeric requestId' };
      if (!isProbeResult(value.probe)) return { invalid: '"probeResult" with a malformed probe' };
      return {
        type: 'probeResult',
        requestId: value.requestId,
        probe: value.probe,
        ...(typeof value.error === 'string' ? { error: value.error } : {}),
      };
    case 'modelLoaded':
      if (typeof value.requestId !== 'number') return { invalid: '"modelLoaded" without a numeric requestId' };
      if (typeof value.error === 'string') return { type: 'modelLoaded', requestId: value.requestId, error: value.error };
      return isLoadedModelInfo(value.model) ? { type: 'modelLoaded', requestId: value.requestId, model: value.model } : { invalid: '"modelLoaded" with a malformed model' };
    case 'analysisResult': {
      if (typeof value.requestId !== 'number') return { invalid: '"analysisResult" without a numeric requestId' };
      if (typeof value.error === 'string') return { type: 'analysisResult', requestId: value.requestId, error: value.error, cancelled: value.cancelled === true };
      const result = value.result;
      if (!isRecord(result) || !isBackendInfo(result.backend) || !isRecord(result.stats)) return { invalid: '"analysisResult" with a malformed result' };
      const problem = summaryProblem(result.summary);
      if (problem) return { invalid: `"analysisResult" with a malformed summary: ${problem}` };
      return { type: 'analysisResult', requestId: value.requestId, result: result as unknown as AnalysisPayload };
    }
    case 'attentionRowResult':
      if (typeof value.requestId !== 'number') return { invalid: '"attentionRowResult" without a numeric requestId' };
      if (typeof value.error === 'string') return { type: 'attentionRowResult', requestId: value.requestId, error: value.error };
      return value.probs instanceof Float32Array ? { type: 'attentionRowResult', requestId: value.requestId, probs: value.probs } : { invalid: '"attentionRowResult" without Float32Array probs' };
    case 'memoryReport': {
      if (typeof value.requestId !== 'number') return { invalid: '"memoryReport" without a numeric requestId' };
      const bytes = (x: unknown) => (typeof x === 'number' && Number.isFinite(x) && x >= 0 ? x : null);
      return { type: 'memoryReport', requestId: value.requestId, jsHeapBytes: bytes(value.jsHeapBytes), gpuBufferBytes: bytes(value.gpuBufferBytes), collected: value.collected === true };
    }
    case 'knockoutResult': {
      if (typeof value.requestId !== 'number') return { invalid: '"knockoutResult" without a numeric requestId' };
      if (typeof value.error === 'string') return { type: 'knockoutResult', requestId: value.requestId, error: value.error };
      const problem = knockoutProblem(value.result);
      return problem ? { invalid: `"knockoutResult" with a malformed result: ${problem}` } : { type: 'knockoutResult', requestId: value.requestId, result: value.result as KnockoutResult };
    }
    case 'spanEffectResult': {
      if (typeof value.requestId !== 'number') return { invalid: '"spanEffectResult" without a numeric requestId' };
      if (typeof value.error === 'string') return { type: 'spanEffectResult', requestId: value.requestId, error: value.error };
      const result = value.result;
      const ok = isRecord(result) && isRecord(result.span) && isInt(result.span.start) && isInt(result.span.end) && Array.isArray(result.tokens) && result.tokens.every((t) => isRecord(t) && isInt(t.position) && isNum(t.kl) && (t.deltaLogProb === null || isNum(t.deltaLogProb)));
      return ok ? { type: 'spanEffectResult', requestId: value.requestId, result: result as unknown as SpanEffectResult } : { invalid: '"spanEffectResult" with a malformed result' };
    }
    case 'viewRendered':
      return typeof value.uri === 'string' && Array.isArray(value.sources) && typeof value.heatedTokens === 'number' && typeof value.gridCells === 'number'
        ? {
            type: 'viewRendered',
            uri: value.uri,
            queryName: typeof value.queryName === 'string' ? value.queryName : null,
            sources: (value.sources as unknown[]).filter(isRecord).map((s) => ({ name: String(s.name), weight: Number(s.weight) })),
            heatedTokens: value.heatedTokens,
            heatSource: value.heatSource === 'exact' ? 'exact' : 'topK',
            gridCells: value.gridCells,
            dependencies: Array.isArray(value.dependencies) ? (value.dependencies as unknown[]).filter(isRecord).map((d) => ({ name: String(d.name), attention: Number(d.attention), kl: Number(d.kl) })) : undefined,
          }
        : { invalid: '"viewRendered" with missing fields' };
    case 'mapRendered': {
      const agreements = ['both', 'attentionOnly', 'referenceOnly'];
      if (typeof value.uri !== 'string' || typeof value.version !== 'number' || typeof value.threshold !== 'number' || !Array.isArray(value.nodes) || !Array.isArray(value.edges) || !Array.isArray(value.heads)) return { invalid: '"mapRendered" with missing fields' };
      const edges = (value.edges as unknown[]).filter(isRecord);
      if (edges.some((e) => !Number.isInteger(e.from) || !Number.isInteger(e.to) || typeof e.weight !== 'number' || !agreements.includes(e.agreement as string))) return { invalid: '"mapRendered" with a malformed edge' };
      return {
        type: 'mapRendered',
        uri: value.uri,
        version: value.version,
        threshold: value.threshold,
        nodes: (value.nodes as unknown[]).map(String),
        edges: edges.map((e) => ({ from: e.from as number, to: e.to as number, weight: e.weight as number, agreement: e.agreement as 'both' | 'attentionOnly' | 'referenceOnly' })),
        heads: (value.heads as unknown[]).map(String),
      };
    }
    case 'tabShown':
      return value.tab === 'token' || value.tab === 'map' || value.tab === 'heads' ? { type: 'tabShown', tab: value.tab } : { invalid: `"tabShown" with unknown tab ${JSON.stringify(value.tab)}` };
    case 'selectToken':
      return typeof value.uri === 'string' && Number.isInteger(value.token) && (value.token as number) >= 0
        ? { type: 'selectToken', uri: value.uri, token: value.token as number }
        : { invalid: '"selectToken" without a uri and a token index' };
    case 'setView': {
      const layerOk = value.layer === 'all' || (Number.isInteger(value.layer) && (value.layer as number) >= 0);
      const headOk = value.head === 'mean' || value.head === 'max' || value.head === 'definition' || (Number.isInteger(value.head) && (value.head as number) >= 0);
      const thresholdOk = typeof value.threshold === 'number' && value.threshold >= 0 && value.threshold <= 1;
      return layerOk && headOk && thresholdOk
        ? { type: 'setView', layer: value.layer as number | 'all', head: value.head as number | 'mean' | 'max' | 'definition', threshold: value.threshold as number }
        : { invalid: '"setView" with an invalid layer, head or threshold' };
    }
    case 'webviewError':
      return typeof value.message === 'string'
        ? { type: 'webviewError', message: value.message }
        : { invalid: '"webviewError" without a message' };
    case 'runCommand':
      return value.command === 'analyzeFile' || value.command === 'chooseModel'
        ? { type: 'runCommand', command: value.command }
        : { invalid: `"runCommand" with unknown command ${JSON.stringify(value.command)}` };
    default:
      return { invalid: `unknown message type ${JSON.stringify(value.type)}` };
  }
}

/** The handshake answer for a webview that says it speaks `protocolVersion`. */
export function handshakeFor(protocolVersion: number): HandshakeMessage {
  if (protocolVersion === PROTOCOL_VERSION) return { type: 'handshake', protocolVersion: PROTOCOL_VERSION, accepted: true };
  return {
    type: 'handshake',
    protocolVersion: PROTOCOL_VERSION,
    accepted: false,
    error: `The Attention Lens panel speaks protocol version ${protocolVersion}, the extension speaks ${PROTOCOL_VERSION}. Close the panel and run "Attention Lens: Show Attention Panel" again (reload the window if it persists).`,
  };
}
