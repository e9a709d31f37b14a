// metrics.jsonl upkeep for resumable runs.
import { existsSync, readFileSync } from 'node:fs';
import { writeFileAtomicSync } from '../util/atomic.ts';

/**
 * Drops metric lines past `step` (written after the last checkpoint by a run that then crashed), so a
 * resumed run's file reads as if it had never been interrupted.
 *
 * @example truncateMetrics('runs/pm/metrics.jsonl', 200);
 */
export function truncateMetrics(path: string, step: number): void {
  if (!existsSync(path)) return;
  const kept = readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => {
      if (!line.trim()) return false;
      try {
        const s = (JSON.parse(line) as { step?: number }).step;
        return typeof s === 'number' && s <= step;
      } catch {
        return false;
      }
    });
  writeFileAtomicSync(path, kept.map((l) => `${l}\n`).join(''));
}
