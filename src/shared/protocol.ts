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
import type { AdapterSummary } from './attention';

/** Bumped whenever a message shape changes incompatibly. */
export const PROTOCOL_VERSION = 1;

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

export type WebviewToHostMessage = ReadyMessage | ProbeResultMessage | WebviewErrorMessage | RunCommandMessage;

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

export type HostToWebviewMessage = HandshakeMessage | ProbeWebGpuRequest | PanelStateMessage;

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
