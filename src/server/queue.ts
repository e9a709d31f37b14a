// A bounded job queue with a per-job deadline: what keeps the server answering when the models cannot
// keep up. A full queue refuses at once (the HTTP layer answers 503 "busy"), and a job that misses its
// deadline rejects (504) instead of holding the request open.

/** The queue is full; try again later. */
export class BusyError extends Error {
  override name = 'BusyError';
}

/** A job did not finish within its deadline (waiting included). */
export class TimeoutError extends Error {
  override name = 'TimeoutError';
}

export interface QueueOptions {
  /** Jobs run at the same time (one per worker thread). */
  concurrency: number;
  /** Jobs that may wait beyond the running ones; more are refused with BusyError. */
  maxWaiting: number;
  /** Deadline per job in ms, from submission. */
  timeoutMs: number;
}

interface Entry<J, R> {
  job: J;
  resolve(value: R): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
  settled: boolean;
}

/**
 * Runs jobs through `run` with bounded concurrency and a bounded wait list.
 *
 * @example
 * const q = new JobQueue((n: number) => slowSquare(n), { concurrency: 1, maxWaiting: 4, timeoutMs: 10_000 });
 * await q.submit(3); // 9, or BusyError when 5 jobs are already in, or TimeoutError after 10 s
 */
export class JobQueue<J, R> {
  private readonly waiting: Entry<J, R>[] = [];
  private running = 0;

  constructor(
    private readonly run: (job: J) => Promise<R>,
    readonly opts: QueueOptions,
  ) {}

  /** Jobs running plus waiting. A timed-out job keeps its slot until `run` returns: the worker is still busy. */
  get size(): number {
    return this.running + this.waiting.length;
  }

  /** How many more jobs would be accepted now. */
  get free(): number {
    return this.opts.concurrency + this.opts.maxWaiting - this.size;
  }

  submit(job: J): Promise<R> {
    if (this.free < 1) return Promise.reject(new BusyError('the model queue is full'));
    return new Promise<R>((resolve, reject) => {
      const entry: Entry<J, R> = {
        job,
        resolve,
        reject,
        settled: false,
        timer: setTimeout(() => {
          const at = this.waiting.indexOf(entry);
          if (at >= 0) this.waiting.splice(at, 1);
          this.settle(entry, () => reject(new TimeoutError(`no response within ${this.opts.timeoutMs} ms`)));
        }, this.opts.timeoutMs),
      };
      this.waiting.push(entry);
      this.pump();
    });
  }

  private settle(entry: Entry<J, R>, fn: () => void): void {
    if (entry.settled) return;
    entry.settled = true;
    clearTimeout(entry.timer);
    fn();
  }

  private pump(): void {
    while (this.running < this.opts.concurrency) {
      const entry = this.waiting.shift();
      if (!entry) return;
      this.running++;
      this.run(entry.job)
        .then(
          (value) => this.settle(entry, () => entry.resolve(value)),
          (err: unknown) => this.settle(entry, () => entry.reject(err as Error)),
        )
        .finally(() => {
          this.running--;
          this.pump();
        });
    }
  }
}
