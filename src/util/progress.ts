/**
 * A terminal progress bar with rate and ETA, written to stderr so `--json` summaries on stdout stay clean.
 *
 * @example
 * const bar = new Progress({ total: 100, label: 'pretrain', unit: 'step' });
 * for (let i = 0; i < 100; i++) bar.tick(1, { loss: 2.31 });
 * bar.done();
 */
export interface ProgressOptions {
  total: number;
  label?: string;
  unit?: string;
  /** Stream to draw on; defaults to process.stderr. */
  stream?: NodeJS.WriteStream;
  /** Minimum milliseconds between redraws. */
  intervalMs?: number;
}

/**
 * Seconds as mm:ss, or h:mm:ss from an hour on; '--:--' when unknown (not finite or negative).
 *
 * @example formatDuration(3725) // '1:02:05'
 */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  const mm = String(m).padStart(2, '0');
  const ss = String(sec).padStart(2, '0');
  return h > 0 ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

function formatValue(v: number | string): string {
  if (typeof v === 'string') return v;
  if (Number.isInteger(v)) return String(v);
  return Math.abs(v) >= 100 ? v.toFixed(1) : v.toPrecision(4);
}

export class Progress {
  readonly total: number;
  current = 0;
  private readonly label: string;
  private readonly unit: string;
  private readonly stream: NodeJS.WriteStream;
  private readonly intervalMs: number;
  private readonly startedAt = performance.now();
  private lastDraw = 0;
  private startCount = 0;
  private fields: Record<string, number | string> = {};
  private drawnAt = -1;

  constructor(opts: ProgressOptions) {
    this.total = opts.total;
    this.label = opts.label ?? '';
    this.unit = opts.unit ?? 'it';
    this.stream = opts.stream ?? process.stderr;
    this.intervalMs = opts.intervalMs ?? (this.stream.isTTY ? 100 : 2000);
  }

  /** Starts counting from `n` (e.g. after resuming), so the rate only covers work done in this run. */
  resumeAt(n: number): void {
    this.current = n;
    this.startCount = n;
  }

  tick(n = 1, fields?: Record<string, number | string>): void {
    this.current += n;
    if (fields) this.fields = { ...this.fields, ...fields };
    const now = performance.now();
    if (now - this.lastDraw >= this.intervalMs || this.current >= this.total) {
      this.lastDraw = now;
      this.draw();
    }
  }

  /** The line as drawn; exposed for tests. */
  line(): string {
    const elapsed = (performance.now() - this.startedAt) / 1000;
    const done = this.current - this.startCount;
    const rate = elapsed > 0 ? done / elapsed : 0;
    const eta = rate > 0 ? (this.total - this.current) / rate : Number.NaN;
    const frac = this.total > 0 ? Math.min(1, this.current / this.total) : 0;
    const width = 24;
    const filled = Math.round(frac * width);
    const bar = `${'█'.repeat(filled)}${'░'.repeat(width - filled)}`;
    const extra = Object.entries(this.fields)
      .map(([k, v]) => `${k} ${formatValue(v)}`)
      .join(' · ');
    const head = this.label ? `${this.label} ` : '';
    return (
      `${head}${bar} ${this.current}/${this.total} ${(frac * 100).toFixed(0)}% ` +
      `${formatValue(rate)} ${this.unit}/s eta ${formatDuration(eta)}` +
      (extra ? ` · ${extra}` : '')
    );
  }

  private draw(): void {
    this.drawnAt = this.current;
    const text = this.line();
    if (this.stream.isTTY) this.stream.write(`\r\x1b[2K${text}`);
    else this.stream.write(`${text}\n`);
  }

  done(): void {
    if (this.drawnAt !== this.current) this.draw();
    if (this.stream.isTTY) this.stream.write('\n');
  }
}
