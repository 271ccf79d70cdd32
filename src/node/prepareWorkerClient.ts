/**
 * The extension host's side of src/node/prepareWorker.ts: one worker thread, started on first use,
 * answering parse and prepare requests in order. When the worker cannot start or dies, the caller
 * is told (the request rejects) and does the work on its own thread; the next request starts a new
 * worker.
 */
import { Worker } from 'node:worker_threads';
import type { SourceDefinition, TextRange } from '../analysis/definitions';
import type { PreparedDocument } from '../analysis/documentAnalysis';
import type { CodeReference } from '../analysis/references';
import type { PrepareRequest, PrepareResponse } from './prepareWorker';

type Pending = { resolve: (value: unknown) => void; reject: (error: Error) => void };

/** Distributes `Omit` over a union (each request kind keeps its own fields). */
type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

export class PrepareWorkerClient {
  private worker: Worker | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();

  constructor(
    private readonly script: string,
    private readonly wasmDir: string,
  ) {}

  parse(languageId: string, text: string): Promise<{ definitions: SourceDefinition[]; references: CodeReference[]; comments: TextRange[] }> {
    return this.request({ type: 'parse', languageId, text }) as Promise<{ definitions: SourceDefinition[]; references: CodeReference[]; comments: TextRange[] }>;
  }

  prepare(text: string, tokenizerFile: string, definitions: readonly SourceDefinition[], references: readonly CodeReference[], comments: readonly TextRange[]): Promise<PreparedDocument> {
    return this.request({ type: 'prepare', text, tokenizerFile, definitions, references, comments }) as Promise<PreparedDocument>;
  }

  dispose(): void {
    const worker = this.worker;
    this.worker = undefined;
    this.failAll(new Error('the preparation worker was stopped'));
    void worker?.terminate();
  }

  private request(message: WithoutId<PrepareRequest>): Promise<unknown> {
    const worker = this.started();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      // Kept alive while it owes an answer, never otherwise.
      worker.ref();
      worker.postMessage({ ...message, id });
    });
  }

  private started(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(this.script, { workerData: { wasmDir: this.wasmDir } });
    worker.on('message', (response: PrepareResponse) => {
      const waiting = this.pending.get(response.id);
      if (!waiting) return;
      this.pending.delete(response.id);
      if (this.pending.size === 0) worker.unref();
      if (response.ok) waiting.resolve(response.value);
      else waiting.reject(new Error(response.error));
    });
    const gone = (error: Error) => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      this.failAll(error);
    };
    worker.on('error', gone);
    worker.on('exit', (code) => gone(new Error(`the preparation worker exited (code ${code})`)));
    // It never keeps the extension host (or a test process) alive by itself.
    worker.unref();
    this.worker = worker;
    return worker;
  }

  private failAll(error: Error): void {
    const waiting = [...this.pending.values()];
    this.pending.clear();
    for (const entry of waiting) entry.reject(error);
  }
}
