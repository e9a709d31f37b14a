// metrics.jsonl upkeep for resumable runs.
import { existsSync, readFileSync } from 'node:fs';
import { writeFileAtomicSync } from './atomic.ts';

/**
 * Drops the lines of a metrics.jsonl whose `step` is past `step` (written after the last checkpoint by a
 * run that then crashed), so a resumed run's file reads as if it had never been interrupted. Unparseable
 * lines (a torn last write) go too; lines without a `step` are kept only with `keepUnstepped`. With
 * `closingEval`, an `eval` line at `step` itself (step > 0) goes too: the closing evaluation a run writes
 * after its last checkpoint (distillation's), which the resumed run writes again.
 *
 * @example truncateMetrics('runs/pm/metrics.jsonl', 200);
 */
export function truncateMetrics(
  path: string,
  step: number,
  opts: { keepUnstepped?: boolean; closingEval?: boolean } = {},
): void {
  if (!existsSync(path)) return;
  const kept = readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => {
      if (!line.trim()) return false;
      try {
        const m = JSON.parse(line) as { step?: unknown; type?: unknown };
        if (opts.closingEval && step > 0 && m.type === 'eval' && m.step === step) return false;
        return typeof m.step === 'number'
          ? m.step <= step
          : m.step === undefined && opts.keepUnstepped === true;
      } catch {
        return false;
      }
    });
  writeFileAtomicSync(path, kept.map((l) => `${l}\n`).join(''));
}
