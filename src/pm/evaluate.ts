// Evaluating a preference model on held-out comparisons (Bai et al. 2022 §3.3, Figures 9–10): accuracy
// per task and per number of turns, calibration against σ(Δ) with its ECE, accuracy against the mean
// score level, and — where a gold judge exists (the world) — accuracy against gold labels beside the
// noisy crowd labels, with the response-length heuristic as the baseline to beat.
import {
  accuracyByGroup,
  accuracyByScoreLevel,
  type Calibration,
  calibrationCurve,
  type GroupAccuracy,
  humanTurns,
  preferenceAccuracy,
  preferenceLoss,
  type ScoreLevelBin,
  pairAgreement,
} from '../eval/calibration.ts';
import { splitComparison } from '../data/transcript.ts';
import type { ComparisonRecord, ComparisonTask } from '../data/types.ts';
import type { Tokenizer } from '../tokenizer/index.ts';
import type { TaskedComparison } from './data.ts';
import { encodeComparisons } from './data.ts';
import type { PreferenceModel } from './model.ts';
import { scoreSequences } from './score.ts';

/**
 * Gold preference of a comparison: +1 when `chosen` is truly better, −1 when `rejected` is, 0 on a
 * gold tie (skipped). Supplied by the caller (the CLI wires the world's gold judge in), so pm/ does
 * not depend on the world.
 */
export type GoldPreference = (record: ComparisonRecord, task: ComparisonTask) => -1 | 0 | 1;

/** One held-out comparison with its PM scores. */
export interface ScoredRecord {
  record: ComparisonRecord;
  task: ComparisonTask;
  turns: number;
  chosen: number;
  rejected: number;
  /** Gold preference, when a gold judge was given. */
  gold?: -1 | 0 | 1;
}

export interface HeuristicAccuracy {
  /** 'longer' (the longer response wins) or 'shorter'; the better of the two on these labels. */
  rule: 'longer' | 'shorter';
  accuracy: number;
}

export interface LabelAccuracy {
  count: number;
  accuracy: number;
  byTask: GroupAccuracy[];
  /** Best single-feature heuristic (response length, in words) on the same comparisons. */
  lengthBaseline: HeuristicAccuracy;
  /**
   * Per comparison, in order: whether the PM (1, ½ on a tie, 0) and the length rule (same) agree with the
   * labels — for paired intervals on the PM's margin over the heuristic.
   */
  perItem: { task: string; pm: number; length: number }[];
}

export interface PMEvalReport {
  count: number;
  /** Against the file's labels (the crowd's, on the world). */
  accuracy: number;
  loss: number;
  byTask: GroupAccuracy[];
  byTurns: GroupAccuracy[];
  calibration: Calibration;
  /** Calibration per task (the paper plots helpful-only PMs; HH PMs are less calibrated on harmless data). */
  calibrationByTask: Record<string, Calibration>;
  scoreLevels: ScoreLevelBin[];
  crowd: LabelAccuracy;
  /** Against gold labels, over comparisons whose gold values differ; absent without a gold judge. */
  gold?: LabelAccuracy;
}

/**
 * Scores held-out comparisons (chosen and rejected) with `pm`.
 *
 * @example const scored = await scoreComparisons(pm, tok, items, { gold: worldGold });
 */
export async function scoreComparisons(
  pm: PreferenceModel,
  tokenizer: Tokenizer,
  items: readonly TaskedComparison[],
  opts: {
    maxLength?: number;
    gold?: GoldPreference;
    batchSize?: number;
    onProgress?: (done: number) => void;
  } = {},
): Promise<ScoredRecord[]> {
  const maxLength = Math.min(opts.maxLength || pm.config.maxPositions, pm.config.maxPositions);
  const { encoded } = await encodeComparisons(tokenizer, items, maxLength);
  const scores = scoreSequences(
    pm,
    encoded.flatMap((e) => [e.chosen, e.rejected]),
    tokenizer.padId,
    { batchSize: opts.batchSize, onProgress: opts.onProgress },
  );
  return items.map((item, i) => ({
    record: item.record,
    task: item.task,
    turns: humanTurns(item.record.chosen),
    chosen: scores[2 * i]!,
    rejected: scores[2 * i + 1]!,
    ...(opts.gold ? { gold: opts.gold(item.record, item.task) } : {}),
  }));
}

/** Words in the final responses of a comparison: [chosen, rejected]. */
function responseWords(record: ComparisonRecord): [number, number] {
  const split = splitComparison(record.chosen, record.rejected, record.prompt);
  const words = (s: string) => s.match(/\S+/g)?.length ?? 0;
  return split
    ? [words(split.chosenResponse), words(split.rejectedResponse)]
    : [words(record.chosen), words(record.rejected)];
}

/**
 * Accuracy of "the longer response is better" and of its opposite on `items`; returns the better one
 * (ties in length count ½), the strongest single-feature baseline on HH-style data.
 *
 * @example lengthHeuristic(items).accuracy // e.g. 0.58
 */
export function lengthHeuristic(items: readonly { record: ComparisonRecord }[]): HeuristicAccuracy {
  const scored = items.map(({ record }) => {
    const [chosen, rejected] = responseWords(record);
    return { chosen, rejected };
  });
  const longer = preferenceAccuracy(scored);
  return longer >= 1 - longer
    ? { rule: 'longer', accuracy: longer }
    : { rule: 'shorter', accuracy: 1 - longer };
}

/** Scored records relabelled by gold: chosen/rejected swapped where gold disagrees with the file; ties dropped. */
function goldRelabelled(items: readonly ScoredRecord[]): ScoredRecord[] {
  return items
    .filter((c) => c.gold === 1 || c.gold === -1)
    .map((c) =>
      c.gold === 1
        ? c
        : {
            ...c,
            record: { ...c.record, chosen: c.record.rejected, rejected: c.record.chosen },
            chosen: c.rejected,
            rejected: c.chosen,
          },
    );
}

function labelAccuracy(items: readonly ScoredRecord[]): LabelAccuracy {
  const lengthBaseline = lengthHeuristic(items);
  const sign = lengthBaseline.rule === 'longer' ? 1 : -1;
  return {
    count: items.length,
    accuracy: preferenceAccuracy(items),
    byTask: accuracyByGroup(items, (c) => c.task),
    lengthBaseline,
    perItem: items.map((c) => {
      const [chosen, rejected] = responseWords(c.record);
      return {
        task: c.task,
        pm: pairAgreement(c.chosen, c.rejected),
        length: pairAgreement(sign * chosen, sign * rejected),
      };
    }),
  };
}

/**
 * The full evaluation report of scored held-out comparisons.
 *
 * @example const report = evaluateScored(await scoreComparisons(pm, tok, test, { gold })); report.calibration.ece
 */
export function evaluateScored(
  items: readonly ScoredRecord[],
  opts: { calibrationBins?: number } = {},
): PMEvalReport {
  const bins = opts.calibrationBins ?? 10;
  const tasks = [...new Set(items.map((c) => c.task))].sort();
  const hasGold = items.some((c) => c.gold !== undefined);
  return {
    count: items.length,
    accuracy: preferenceAccuracy(items),
    loss: preferenceLoss(items),
    byTask: accuracyByGroup(items, (c) => c.task),
    byTurns: accuracyByGroup(items, (c) => c.turns),
    calibration: calibrationCurve(items, { bins }),
    calibrationByTask: Object.fromEntries(
      tasks.map((t) => [
        t,
        calibrationCurve(
          items.filter((c) => c.task === t),
          { bins },
        ),
      ]),
    ),
    scoreLevels: accuracyByScoreLevel(items, 5),
    crowd: labelAccuracy(items),
    ...(hasGold ? { gold: labelAccuracy(goldRelabelled(items)) } : {}),
  };
}

const pct = (x: number): string => (Number.isFinite(x) ? `${(100 * x).toFixed(1)}%` : '—');

/**
 * The report as text tables (what `hhkit pm eval` prints).
 *
 * @example console.log(formatEvalReport(report));
 */
export function formatEvalReport(r: PMEvalReport): string {
  const lines: string[] = [];
  lines.push(`comparisons ${r.count}   accuracy ${pct(r.accuracy)}   loss ${r.loss.toFixed(4)}`);
  const labelLine = (name: string, a: LabelAccuracy) =>
    `${name.padEnd(6)} n ${String(a.count).padStart(5)}  PM ${pct(a.accuracy).padStart(6)}  ` +
    `length heuristic (${a.lengthBaseline.rule}) ${pct(a.lengthBaseline.accuracy).padStart(6)}  ` +
    `margin ${((a.accuracy - a.lengthBaseline.accuracy) * 100).toFixed(1)} pts   ` +
    a.byTask.map((g) => `${g.group} ${pct(g.accuracy)} (n ${g.count})`).join(', ');
  lines.push('', 'labels');
  lines.push(labelLine('crowd', r.crowd));
  if (r.gold) lines.push(labelLine('gold', r.gold));
  lines.push('', 'accuracy by task');
  for (const g of r.byTask)
    lines.push(
      `  ${g.group.padEnd(10)} ${pct(g.accuracy).padStart(6)} ± ${pct(g.standardError)}  n ${g.count}`,
    );
  lines.push('', 'accuracy by number of human turns');
  for (const g of r.byTurns)
    lines.push(
      `  ${g.group.padEnd(10)} ${pct(g.accuracy).padStart(6)} ± ${pct(g.standardError)}  n ${g.count}`,
    );
  lines.push('', `calibration (bins of |Δ|; ideal accuracy = σ(|Δ|))   ECE ${r.calibration.ece.toFixed(4)}`);
  lines.push('  |Δ| range        mean|Δ|  predicted  observed     n');
  for (const b of r.calibration.bins) {
    lines.push(
      `  ${`${b.lower.toFixed(2)}–${b.upper.toFixed(2)}`.padEnd(15)} ${b.meanGap.toFixed(3).padStart(7)}  ${pct(b.predicted).padStart(9)}  ${pct(b.accuracy).padStart(8)}  ${String(b.count).padStart(4)}`,
    );
  }
  for (const [task, cal] of Object.entries(r.calibrationByTask))
    lines.push(`  ECE ${task}: ${cal.ece.toFixed(4)} (n ${cal.count})`);
  lines.push('', 'accuracy vs mean score level (r_chosen + r_rejected)/2');
  for (const b of r.scoreLevels)
    lines.push(`  level ${b.meanScore.toFixed(3).padStart(8)}  ${pct(b.accuracy).padStart(6)}  n ${b.count}`);
  return lines.join('\n');
}
