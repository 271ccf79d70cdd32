/**
 * GPU time of selected compute passes, from timestamp queries (the `timestamp-query` feature). The
 * engine times its summary passes with it, so that a forward pass's wall time can be split into
 * the transformer itself and the on-device summaries that run interleaved with it.
 */

/** The most passes one run may time: a query set holds at most 4096 queries, two per pass. */
export const MAX_TIMED_PASSES = 2048;

export class PassTimer {
  private readonly querySet: GPUQuerySet;
  private readonly resolveBuffer: GPUBuffer;
  private readonly staging: GPUBuffer;
  private used = 0;
  private overflowed = false;

  constructor(
    device: GPUDevice,
    readonly capacity: number,
  ) {
    this.querySet = device.createQuerySet({ label: 'summary pass timestamps', type: 'timestamp', count: capacity * 2 });
    this.resolveBuffer = device.createBuffer({
      label: 'summary pass timestamps resolved [passes, 2] u64',
      size: capacity * 16,
      usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
    });
    this.staging = device.createBuffer({
      label: 'summary pass timestamps staging',
      size: capacity * 16,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
  }

  /** Bytes of the timer's buffers. */
  get bytes(): number {
    return this.resolveBuffer.size + this.staging.size;
  }

  /** Starts a new run's measurements. */
  reset(): void {
    this.used = 0;
    this.overflowed = false;
  }

  /**
   * Timestamp writes for one more pass, or undefined once the timer is full: the pass then runs
   * untimed and `complete` turns false (a run split into very many blocks is not timed).
   */
  nextPass(): GPUComputePassTimestampWrites | undefined {
    if (this.used >= this.capacity) {
      this.overflowed = true;
      return undefined;
    }
    const index = this.used++;
    return { querySet: this.querySet, beginningOfPassWriteIndex: index * 2, endOfPassWriteIndex: index * 2 + 1 };
  }

  /** Whether every pass asked for since reset() was timed. */
  get complete(): boolean {
    return !this.overflowed;
  }

  /** Records the copy of this run's timestamps to the mappable buffer. */
  resolve(encoder: GPUCommandEncoder): void {
    if (this.used === 0) return;
    encoder.resolveQuerySet(this.querySet, 0, this.used * 2, this.resolveBuffer, 0);
    encoder.copyBufferToBuffer(this.resolveBuffer, 0, this.staging, 0, this.used * 16);
  }

  /** Total GPU milliseconds of the timed passes (after the resolving submission completed). */
  async totalMs(): Promise<number> {
    if (this.used === 0) return 0;
    await this.staging.mapAsync(GPUMapMode.READ, 0, this.used * 16);
    const stamps = new BigUint64Array(this.staging.getMappedRange(0, this.used * 16).slice(0));
    this.staging.unmap();
    let totalNs = 0;
    for (let i = 0; i < this.used; i++) {
      // Timestamps may be zero or go backwards on some implementations; such passes count as 0.
      const elapsed = Number(stamps[i * 2 + 1] - stamps[i * 2]);
      if (elapsed > 0) totalNs += elapsed;
    }
    return totalNs / 1e6;
  }

  destroy(): void {
    this.querySet.destroy();
    this.resolveBuffer.destroy();
    this.staging.destroy();
  }
}
