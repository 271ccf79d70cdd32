/**
 * Splitting GPU work into submissions of bounded duration. Windows resets a GPU whose submission
 * runs longer than about 2 s (TDR) and the device is lost, so a forward pass on a slow adapter must
 * not go to the queue as one or two command buffers of several seconds each.
 *
 * The engine cuts its work into units (a row chunk's projections, one block of attention
 * probabilities with its summaries, a row chunk of the MLP, ...), each of a kind and with an
 * estimate of its cost in arithmetic operations, and hands them to a Submitter. The Submitter packs
 * units into one command buffer until the next would take it past what the SubmissionPacer expects
 * to run in the target time, then submits it. The pacer learns milliseconds per cost unit for each
 * kind (kernels differ in speed per operation, and by adapter) from each submission's measured
 * duration (performance.now() around queue.onSubmittedWorkDone()). It starts small: a unit of a
 * kind not measured yet goes alone and is cut as small as the engine cuts, and a submission holds
 * at most GROWTH times the cost of each kind that the largest one measured within the target held.
 * On a fast GPU it soon packs whole runs into a few submissions, so the overhead stays negligible;
 * the estimates live as long as the engine.
 *
 * One submission is kept queued ahead while the host waits for the previous one, so the device
 * does not idle between them. Each boundary is also where the caller's AbortSignal is checked.
 *
 * Only submission boundaries and the size of the blocks the engine cuts change with the budget:
 * every kernel computes each output element the same way whatever block it is in, so results are
 * bit-identical for any budget.
 */

/** Duration one submission is packed for by default, ms: well below the ~2 s of Windows' TDR. */
export const DEFAULT_SUBMISSION_MS = 300;
/** A submission holds at most this many times the cost of each kind of unit the largest one measured within target held. */
const GROWTH = 4;
/** The engine sizes units at most this fraction of a submission's budget, so submissions pack several. */
const UNITS_PER_SUBMISSION = 4;

/** What the submissions of one call (a run, a knockout, a span effect) looked like. */
export interface SubmissionStats {
  /** Command buffers submitted. */
  readonly submissions: number;
  /** Units of work they held. */
  readonly units: number;
  /** Measured duration of the longest submission, ms (0 when none completed). */
  readonly longestSubmissionMs: number;
  /** Sum of the measured durations, ms. */
  readonly totalSubmissionMs: number;
}

/** One submission as measured, for SubmissionPacer observers (tests, logs). */
export interface SubmissionRecord {
  /** 0 for the first submission of the call. */
  readonly index: number;
  readonly units: number;
  /** What the units were, in order (for logs). */
  readonly labels: readonly string[];
  /** Estimated cost of the units it held. */
  readonly cost: number;
  /** From submit (or the previous submission's completion, if later) to completion, ms. */
  readonly ms: number;
}

/** The engine's estimate of its device's speed, per kind of unit, shared by all its calls. */
export class SubmissionPacer {
  /** Estimated ms per cost unit, by kind of unit; absent until a submission with that kind was measured. */
  private readonly msPerCost = new Map<string, number>();
  /** Cost of the largest share of a submission each kind had, among submissions that completed within the target. */
  private readonly largestMeasuredCost = new Map<string, number>();

  /** @param targetMs duration one submission is packed for; Infinity submits everything at once. */
  constructor(readonly targetMs: number = DEFAULT_SUBMISSION_MS) {
    if (!(targetMs > 0)) throw new Error(`the submission budget must be a positive number of milliseconds, not ${targetMs}`);
  }

  /** Estimated duration of `cost` of work of `kind`, ms; Infinity for a kind not measured yet. */
  estimateMs(kind: string, cost: number): number {
    if (this.targetMs === Infinity) return 0;
    const rate = this.msPerCost.get(kind);
    return rate === undefined ? Infinity : cost * rate;
  }

  /** The most cost of `kind` one submission may hold: GROWTH times the most measured within target. */
  growthLimit(kind: string): number {
    if (this.targetMs === Infinity) return Infinity;
    return (this.largestMeasuredCost.get(kind) ?? 0) * GROWTH;
  }

  /**
   * The most cost the engine should put in one unit of `kind`: a fraction of what one submission
   * may hold, so that submissions pack several; 0 (the smallest units) before the kind is measured.
   */
  unitCost(kind: string): number {
    if (this.targetMs === Infinity) return Infinity;
    const rate = this.msPerCost.get(kind);
    if (rate === undefined) return 0;
    return Math.min(this.targetMs / rate, this.growthLimit(kind)) / UNITS_PER_SUBMISSION;
  }

  /**
   * Learns from one measured submission holding `costs` by kind. Kinds not measured before always
   * go alone, so their rate is the submission's. For the others the estimate is off by the ratio
   * of measured to estimated time, which each kind present takes on: a slower rate is believed at
   * once (so the next submissions shrink before one can run long), a faster one halfway.
   */
  record(costs: ReadonlyMap<string, number>, ms: number): void {
    if (this.targetMs === Infinity) return;
    const elapsed = Math.max(ms, 1e-3);
    let estimated = 0;
    for (const [kind, cost] of costs) estimated += this.estimateMs(kind, cost);
    for (const [kind, cost] of costs) {
      if (!(cost > 0)) continue;
      const previous = this.msPerCost.get(kind);
      const measured = previous === undefined || !Number.isFinite(estimated) ? elapsed / cost : previous * (elapsed / Math.max(estimated, 1e-9));
      this.msPerCost.set(kind, previous === undefined || measured > previous ? measured : (previous + measured) / 2);
      if (ms <= this.targetMs) this.largestMeasuredCost.set(kind, Math.max(this.largestMeasuredCost.get(kind) ?? 0, cost));
    }
  }
}

/**
 * The submissions of one call. Units go into the current command encoder; when the next unit
 * would take the submission past the pacer's target (or past its growth limit, or is of a kind not
 * measured yet) the encoder is submitted, the host waits for the submission before it (one stays
 * queued ahead), and `check` runs (device lost? aborted?).
 */
export class Submitter {
  private encoder?: GPUCommandEncoder;
  private pendingMs = 0;
  private pendingCosts = new Map<string, number>();
  private pendingLabels: string[] = [];
  private submissions = 0;
  private units = 0;
  private longestMs = 0;
  private totalMs = 0;
  /** Resolves with the completion time of the latest submission, once it and all before it are measured. */
  private inFlight?: Promise<number>;

  constructor(
    private readonly device: GPUDevice,
    private readonly pacer: SubmissionPacer,
    private readonly label: string,
    private readonly check: () => void,
    private readonly onSubmitted?: (record: SubmissionRecord) => void,
  ) {}

  /** The most cost one unit of `kind` should hold now (0: the smallest units the caller makes). */
  unitCost(kind: string): number {
    return this.pacer.unitCost(kind);
  }

  /**
   * Adds one unit of work of `kind` (units of one kind cost alike per cost unit) and estimated
   * `cost`, encoded by `encode` into the current command encoder.
   */
  async unit(kind: string, label: string, cost: number, encode: (encoder: GPUCommandEncoder) => void): Promise<void> {
    const ms = this.pacer.estimateMs(kind, cost);
    const kindCost = (this.pendingCosts.get(kind) ?? 0) + cost;
    if (this.pendingLabels.length > 0 && (this.pendingMs + ms > this.pacer.targetMs || kindCost > this.pacer.growthLimit(kind))) await this.flush();
    this.encoder ??= this.device.createCommandEncoder({ label: `${this.label} submission ${this.submissions}` });
    encode(this.encoder);
    this.pendingMs += ms;
    this.pendingCosts.set(kind, (this.pendingCosts.get(kind) ?? 0) + cost);
    this.pendingLabels.push(label);
  }

  /** Submits what is pending and waits until every submission has completed. */
  async finish(): Promise<void> {
    await this.flush();
    if (this.inFlight) await this.inFlight;
    this.check();
  }

  /** The submissions so far. */
  stats(): SubmissionStats {
    return { submissions: this.submissions, units: this.units, longestSubmissionMs: this.longestMs, totalSubmissionMs: this.totalMs };
  }

  /** Submits the pending units, then waits for the submission before them and runs the check. */
  private async flush(): Promise<void> {
    if (!this.encoder) return;
    const commands = this.encoder.finish();
    const costs = this.pendingCosts;
    let cost = 0;
    for (const value of costs.values()) cost += value;
    const record = { index: this.submissions, units: this.pendingLabels.length, labels: this.pendingLabels, cost };
    this.encoder = undefined;
    this.pendingMs = 0;
    this.pendingCosts = new Map();
    this.pendingLabels = [];
    this.submissions++;
    this.units += record.units;
    this.device.queue.submit([commands]);
    const submittedAt = now();
    // A lost device rejects onSubmittedWorkDone; the loss itself reaches the caller through `check`.
    const doneAt = this.device.queue.onSubmittedWorkDone().then(now, now);
    const previous = this.inFlight;
    this.inFlight = Promise.all([previous ?? Promise.resolve(0), doneAt]).then(([previousDoneAt, completedAt]) => {
      // The queue runs submissions in order: this one started when it was submitted or when the previous one ended.
      const ms = completedAt - Math.max(submittedAt, previousDoneAt);
      this.pacer.record(costs, ms);
      this.longestMs = Math.max(this.longestMs, ms);
      this.totalMs += ms;
      this.onSubmitted?.({ ...record, ms });
      return completedAt;
    });
    if (previous) await previous;
    this.check();
  }
}

function now(): number {
  return typeof performance !== 'undefined' ? performance.now() : Date.now();
}
