// What every command that reads data prints to stderr after a load, so no load loses records unseen: a
// loud WARNING line for each file that stopped mid-way (file:line), then the skipped lines (file:line: why).
import { type LoadReport, lostTailWarning } from '../data/report.ts';
import { type CorpusReport, corpusWarnings } from '../train/corpus.ts';

/**
 * Prints a comparison load's warnings (see LoadReport.warnings) to stderr.
 *
 * @example warnLoad(report); // WARNING: a.jsonl.gz:137: the file stops here; …
 */
export function warnLoad(report: LoadReport): void {
  for (const line of report.warnings()) console.error(line);
}

/** Prints a corpus load's warnings to stderr: the lost tail loudly, then the skipped lines. */
export function warnCorpus(report: CorpusReport): void {
  for (const line of corpusWarnings(report)) console.error(line);
}

/** A skipped line as the eval, prompt and Elo readers list them: `where` is file:line. */
export interface SkippedLine {
  where: string;
  reason: string;
  /** The file stopped here (truncated or corrupt gzip): the rest of it was lost. */
  lost?: boolean;
}

/**
 * Prints a file's skipped lines to stderr, a lost tail first and loudly, at most `max` others.
 *
 * @example warnSkipped(loaded.skipped, 'arc.jsonl.gz');
 */
export function warnSkipped(skipped: readonly SkippedLine[], file: string, max = 20): void {
  for (const s of skipped.filter((x) => x.lost)) console.error(lostTailWarning(s.where, s.reason));
  const rest = skipped.filter((x) => !x.lost);
  for (const s of rest.slice(0, max)) console.error(`${s.where}: skipped: ${s.reason}`);
  if (rest.length > max) console.error(`… and ${rest.length - max} more skipped in ${file}`);
}
