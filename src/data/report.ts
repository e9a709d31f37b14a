import type { ComparisonSplit, TranscriptNote } from './transcript.ts';

/**
 * Why a line was skipped. The first five are the list; the rest are what else real files do:
 * - `invalid-json`: the line does not parse as JSON.
 * - `not-an-object`: valid JSON but not an object (an array, a string, null).
 * - `missing-key`: no "chosen" or no "rejected".
 * - `wrong-type`: a known key holds the wrong JSON type (e.g. "chosen": 3, "round": "2").
 * - `empty-string`: a string field is empty ("chosen" and "rejected" also when only whitespace).
 * - `bad-value`: right type, impossible value ("task": "red-team", "round": -1, an unpaired surrogate).
 * - `prompt-mismatch`: an explicit "prompt" is not a prefix of both transcripts.
 * - `invalid-utf8`: the line's bytes are not UTF-8.
 * - `line-too-long`: longer than the reader's limit (memory stays bounded).
 * - `unreadable`: the file stopped mid-way (truncated or corrupt gzip); the rest of it is lost.
 */
export type DefectKind =
  | 'invalid-json'
  | 'not-an-object'
  | 'missing-key'
  | 'wrong-type'
  | 'empty-string'
  | 'bad-value'
  | 'prompt-mismatch'
  | 'invalid-utf8'
  | 'line-too-long'
  | 'unreadable';

export const DEFECT_KINDS: readonly DefectKind[] = [
  'invalid-json',
  'not-an-object',
  'missing-key',
  'wrong-type',
  'empty-string',
  'bad-value',
  'prompt-mismatch',
  'invalid-utf8',
  'line-too-long',
  'unreadable',
];

/** Anomalies of records that are kept: the transcript notes plus keys hhkit does not know (dropped). */
export type NoteKind = TranscriptNote | 'unknown-key';

export const NOTE_KINDS: readonly NoteKind[] = [
  'extra-assistant-marker',
  'empty-response',
  'unmarked-human',
  'no-shared-prompt',
  'human-turn-in-response',
  'identical-pair',
  'leading-text',
  'unknown-key',
];

const NOTE_REASONS: Record<TranscriptNote, string> = {
  'extra-assistant-marker': 'a response contains another "\\n\\nAssistant:"; prompt cut at the shared prefix',
  'empty-response': 'a final response is empty; kept (an empty answer can be ranked)',
  'unmarked-human': '"Human:" without "\\n\\n" before it; not a turn boundary unless it opens the text',
  'no-shared-prompt': 'chosen and rejected share no prompt; compared as whole transcripts',
  'human-turn-in-response': 'a response contains "\\n\\nHuman:" after the shared prompt',
  'identical-pair': 'chosen and rejected are identical (no preference signal)',
  'leading-text': 'text before the first "Human:"/"Assistant:" marker',
};

export interface Location {
  file: string;
  line: number;
  reason: string;
}

/**
 * The loud line for a file that stopped mid-way at `where` (file:line): every reader's report (comparisons,
 * corpora, eval files) prints this one, so a lost tail reads the same everywhere.
 *
 * @example lostTailWarning('a.jsonl.gz:137', 'file stops here (unexpected end of file); the rest of the file is lost')
 */
export function lostTailWarning(where: string, reason: string): string {
  return `WARNING: ${where}: ${reason}, only the lines before it were read`;
}

export interface Tally {
  count: number;
  /** The first few occurrences, in file order. */
  examples: Location[];
}

/**
 * Streaming summary of non-negative integers in O(1) memory: exact count/min/max/mean, quantiles
 * from log-scale buckets (exact below 64, then 32 buckets per power of two: within ~3%).
 */
export class Histogram {
  count = 0;
  sum = 0;
  min = Number.POSITIVE_INFINITY;
  max = 0;
  private readonly buckets = new Map<number, number>();

  add(value: number): void {
    const v = Math.max(0, Math.floor(value));
    this.count++;
    this.sum += v;
    if (v < this.min) this.min = v;
    if (v > this.max) this.max = v;
    const b = bucketOf(v);
    this.buckets.set(b, (this.buckets.get(b) ?? 0) + 1);
  }

  /** The q-quantile (0..1), as the lower edge of its bucket. */
  quantile(q: number): number {
    if (this.count === 0) return 0;
    const rank = Math.min(this.count - 1, Math.floor(q * this.count));
    let seen = 0;
    for (const b of [...this.buckets.keys()].sort((x, y) => x - y)) {
      seen += this.buckets.get(b) ?? 0;
      if (seen > rank) return Math.max(this.min, Math.min(this.max, bucketFloor(b)));
    }
    return this.max;
  }

  toJSON(): { count: number; min: number; max: number; mean: number; p50: number; p90: number; p99: number } {
    const empty = this.count === 0;
    return {
      count: this.count,
      min: empty ? 0 : this.min,
      max: this.max,
      mean: empty ? 0 : Math.round((this.sum / this.count) * 100) / 100,
      p50: this.quantile(0.5),
      p90: this.quantile(0.9),
      p99: this.quantile(0.99),
    };
  }
}

function bucketOf(v: number): number {
  if (v < 64) return v;
  const e = Math.floor(Math.log2(v));
  return 64 + (e - 6) * 32 + (Math.floor(v / 2 ** (e - 5)) & 31);
}

function bucketFloor(b: number): number {
  if (b < 64) return b;
  const e = Math.floor((b - 64) / 32) + 6;
  return (32 + ((b - 64) % 32)) * 2 ** (e - 5);
}

/**
 * What a load found, accumulated across files: counts of records, of each defect (skipped lines) and
 * of each note (kept records), the first few file:line locations of each, and size statistics.
 * JSON.stringify(report) gives the stable, machine-readable form.
 *
 * @example
 * const report = new LoadReport();
 * for await (const r of readComparisons('train.jsonl', { report })) use(r);
 * console.log(report.format());
 */
export class LoadReport {
  files: string[] = [];
  /** Physical lines read, blank ones included. */
  lines = 0;
  blankLines = 0;
  /** Non-blank lines: each is a record or a defect. */
  records = 0;
  valid = 0;
  /** File bytes read (compressed bytes for gzipped files). */
  bytes = 0;
  /** Wall time from the first read to the last record, the consumer's time between records included. */
  seconds = 0;
  readonly defects = new Map<DefectKind, Tally>();
  readonly notes = new Map<NoteKind, Tally>();
  readonly stats = {
    /** Turns in the shared prompt (human and assistant, the final "Assistant:" included). */
    promptTurns: new Histogram(),
    promptChars: new Histogram(),
    chosenResponseChars: new Histogram(),
    rejectedResponseChars: new Histogram(),
  };

  constructor(readonly maxExamples = 5) {}

  /** Skipped records: defective lines, and one per file that stopped mid-way (`unreadable`). */
  get skipped(): number {
    return this.records - this.valid;
  }

  /** Where files stopped mid-way (truncated or corrupt gzip): the rest of each such file was lost. */
  get unreadable(): Location[] {
    return this.defects.get('unreadable')?.examples ?? [];
  }

  /**
   * One loud line per file whose tail was lost, then one for the skipped lines: what a command prints
   * to stderr whatever else it prints, so a partial load never passes unseen. Empty for a clean load.
   *
   * @example for (const w of report.warnings()) console.error(w);
   */
  warnings(): string[] {
    const lost = this.defects.get('unreadable');
    const out = this.unreadable.map((e) => lostTailWarning(`${e.file}:${e.line}`, e.reason));
    if (lost && lost.count > lost.examples.length)
      out.push(`WARNING: ${lost.count - lost.examples.length} more files stop mid-way`);
    const bad = this.skipped - (lost?.count ?? 0);
    if (bad > 0) {
      const first = [...this.defects.entries()].filter(([k]) => k !== 'unreadable')[0]?.[1].examples[0];
      const where = first ? `; first at ${first.file}:${first.line}: ${first.reason}` : '';
      out.push(`warning: skipped ${bad} bad line${bad === 1 ? '' : 's'} of ${this.records}${where}`);
    }
    return out;
  }

  /** The counts a command's --json summary carries: records, valid, skipped, files cut short. */
  summary(): { records: number; valid: number; skipped: number; unreadable: string[] } {
    return {
      records: this.records,
      valid: this.valid,
      skipped: this.skipped,
      unreadable: this.unreadable.map((e) => `${e.file}:${e.line}`),
    };
  }

  addDefect(kind: DefectKind, where: Location): void {
    tally(this.defects, kind, where, this.maxExamples);
  }

  addNote(kind: NoteKind, where: Location): void {
    tally(this.notes, kind, where, this.maxExamples);
  }

  /** Counts one valid record: its notes and its sizes. */
  addValid(split: ComparisonSplit, promptTurns: number, file: string, line: number): void {
    this.valid++;
    for (const note of split.notes) this.addNote(note, { file, line, reason: NOTE_REASONS[note] });
    this.stats.promptTurns.add(promptTurns);
    this.stats.promptChars.add(split.prompt.length);
    this.stats.chosenResponseChars.add(split.chosenResponse.length);
    this.stats.rejectedResponseChars.add(split.rejectedResponse.length);
  }

  toJSON(): Record<string, unknown> {
    const kinds = <K extends string>(all: readonly K[], map: Map<K, Tally>) =>
      Object.fromEntries(all.map((k) => [k, map.get(k) ?? { count: 0, examples: [] }]));
    return {
      files: this.files,
      lines: this.lines,
      blankLines: this.blankLines,
      records: this.records,
      valid: this.valid,
      skipped: this.skipped,
      bytes: this.bytes,
      seconds: Math.round(this.seconds * 1000) / 1000,
      defects: kinds(DEFECT_KINDS, this.defects),
      notes: kinds(NOTE_KINDS, this.notes),
      stats: Object.fromEntries(Object.entries(this.stats).map(([k, h]) => [k, h.toJSON()])),
    };
  }

  /** A human-readable summary, a few lines per kind that occurred. */
  format(): string {
    const out = [
      ...this.warnings().filter((w) => w.startsWith('WARNING')),
      `files:   ${this.files.join(', ')}`,
      `records: ${this.records} (${this.valid} valid, ${this.skipped} skipped; ${this.blankLines} blank lines)` +
        `  ${(this.bytes / 2 ** 20).toFixed(1)} MiB in ${this.seconds.toFixed(2)} s`,
    ];
    const section = (title: string, map: Map<string, Tally>) => {
      if (map.size === 0) return out.push(`${title}: none`);
      out.push(`${title}:`);
      for (const [kind, t] of [...map.entries()].sort((a, b) => b[1].count - a[1].count)) {
        out.push(`  ${kind.padEnd(24)} ${String(t.count).padStart(8)}`);
        for (const e of t.examples) out.push(`      ${e.file}:${e.line}  ${e.reason}`);
      }
      return out.length;
    };
    section('skipped lines (defects)', this.defects);
    section('kept with notes', this.notes);
    out.push('statistics:              count      min     mean      p50      p90      p99      max');
    for (const [name, h] of Object.entries(this.stats)) {
      const s = h.toJSON();
      const cols = [s.count, s.min, s.mean, s.p50, s.p90, s.p99, s.max].map((v) => String(v).padStart(8));
      out.push(`  ${name.padEnd(22)}${cols.join(' ')}`);
    }
    return out.join('\n');
  }
}

function tally<K>(map: Map<K, Tally>, kind: K, where: Location, maxExamples: number): void {
  let t = map.get(kind);
  if (!t) {
    t = { count: 0, examples: [] };
    map.set(kind, t);
  }
  t.count++;
  if (t.examples.length < maxExamples) t.examples.push(where);
}
