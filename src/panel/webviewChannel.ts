/**
 * The host side of the webview message channel: queues outgoing messages until the webview's
 * `ready` handshake, checks the protocol version, and pairs requests with their responses by id.
 * Free of `vscode` imports so it is unit-tested in plain Node; the panel gives it a `post` function.
 */
import {
  type AnalysisResultMessage,
  type AttentionRowMessage,
  type HostToWebviewMessage,
  type KnockoutResultMessage,
  type MemoryReportMessage,
  type ModelLoadedMessage,
  type SpanEffectResultMessage,
  type ProbeResultMessage,
  type WebviewToHostMessage,
  handshakeFor,
  parseWebviewMessage,
} from '../shared/protocol';

/** Host messages that expect an answer, without their id (the channel assigns it). */
type RequestWithoutId = Omit<Extract<HostToWebviewMessage, { requestId: number }>, 'requestId'>;

/** The responses that answer requests, keyed by their request id. */
type ResponseMessage = ProbeResultMessage | ModelLoadedMessage | AnalysisResultMessage | AttentionRowMessage | KnockoutResultMessage | SpanEffectResultMessage | MemoryReportMessage;

/** The response type each request gets. */
interface ResponseFor {
  probeWebGpu: ProbeResultMessage;
  loadModel: ModelLoadedMessage;
  analyze: AnalysisResultMessage;
  attentionRow: AttentionRowMessage;
  knockout: KnockoutResultMessage;
  spanEffect: SpanEffectResultMessage;
  reportMemory: MemoryReportMessage;
}

interface PendingRequest {
  resolve(message: ResponseMessage): void;
  reject(error: Error): void;
  timer: ReturnType<typeof setTimeout>;
}

export interface ChannelEvents {
  /** A message from the webview that is not a response (ready, errors, commands). */
  onMessage(message: WebviewToHostMessage): void;
  /** A malformed message or a protocol mismatch, for the log. */
  onProblem(problem: string): void;
}

export class WebviewChannel {
  private ready = false;
  private closed = false;
  private readonly queue: HostToWebviewMessage[] = [];
  private readonly pending = new Map<number, PendingRequest>();
  private nextRequestId = 1;
  /** Set when the webview did not say ready in time: requests fail at once instead of waiting. */
  private startFailure: string | undefined;
  private startTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly post: (message: HostToWebviewMessage) => PromiseLike<boolean>,
    private readonly events: ChannelEvents,
  ) {}

  /** True once the webview said `ready` with the right protocol version. */
  get isReady(): boolean {
    return this.ready;
  }

  /**
   * Fails everything that waits, and every later request, when the webview has not said `ready`
   * within `ms` (its script did not load, or crashed before the handshake). A late `ready` heals.
   */
  expectReadyWithin(ms: number, message: string): void {
    clearTimeout(this.startTimer);
    this.startTimer = setTimeout(() => {
      if (this.ready || this.closed) return;
      this.startFailure = message;
      this.failPending(message);
    }, ms);
  }

  /** Sends now if the webview is ready, else queues in order until it is. */
  send(message: HostToWebviewMessage): void {
    if (this.closed) return;
    if (this.ready) void this.post(message);
    else this.queue.push(message);
  }

  /**
   * Sends a request and resolves with the webview's response carrying the same id. `onId` learns
   * the id at once, so the caller can cancel the request.
   */
  request<R extends RequestWithoutId>(message: R, timeoutMs: number, onId?: (requestId: number) => void): Promise<ResponseFor[R['type']]> {
    if (this.closed) return Promise.reject(new Error('The Attention Lens panel is closed.'));
    if (this.startFailure) return Promise.reject(new Error(this.startFailure));
    const requestId = this.nextRequestId++;
    onId?.(requestId);
    return new Promise<ResponseFor[R['type']]>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(requestId);
        reject(new Error(`The Attention Lens panel did not answer "${message.type}" within ${Math.round(timeoutMs / 1000)} s.`));
      }, timeoutMs);
      this.pending.set(requestId, { resolve: resolve as (message: ResponseMessage) => void, reject, timer });
      this.send({ ...message, requestId } as HostToWebviewMessage);
    });
  }

  /** Feeds one raw message from the webview into the channel. */
  receive(raw: unknown): void {
    const message = parseWebviewMessage(raw);
    if ('invalid' in message) {
      this.events.onProblem(`Ignored a malformed message from the panel: ${message.invalid}.`);
      return;
    }
    if (message.type === 'ready') {
      const handshake = handshakeFor(message.protocolVersion);
      void this.post(handshake);
      if (!handshake.accepted) {
        this.events.onProblem(handshake.error ?? 'Protocol version mismatch.');
        return;
      }
      // A reloaded webview says ready again; whatever it had pending is gone with it.
      this.ready = true;
      this.startFailure = undefined;
      clearTimeout(this.startTimer);
      for (const queued of this.queue.splice(0)) void this.post(queued);
      this.events.onMessage(message);
      return;
    }
    if ('requestId' in message) {
      const pending = this.pending.get(message.requestId);
      if (!pending) {
        this.events.onProblem(`Ignored a "${message.type}" answer to unknown request ${message.requestId}.`);
        return;
      }
      this.pending.delete(message.requestId);
      clearTimeout(pending.timer);
      pending.resolve(message);
      return;
    }
    this.events.onMessage(message);
  }

  /** The webview went away (panel closed or reloading): fail what waits and queue again. */
  reset(reason: string): void {
    this.ready = false;
    this.failPending(reason);
  }

  private failPending(reason: string): void {
    for (const [id, pending] of this.pending) {
      clearTimeout(pending.timer);
      pending.reject(new Error(reason));
      this.pending.delete(id);
    }
    // Requests that never went out are answered already: do not send them later.
    const unanswered = this.queue.filter((message) => !('requestId' in message));
    this.queue.splice(0, this.queue.length, ...unanswered);
  }


  dispose(reason = 'The Attention Lens panel was closed.'): void {
    clearTimeout(this.startTimer);
    this.reset(reason);
    this.closed = true;
    this.queue.length = 0;
  }
}
