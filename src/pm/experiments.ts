// The paper's preference-model experiments at laptop scale (Bai et al. 2022 §3.2–3.3, Figures 5–7):
// accuracy vs model size, PMP vs no PMP at small data, helpful/harmless mixing and λ. World-free: the
// caller supplies the data, the LM checkpoints and (optionally) a gold judge.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { type Interval, mean } from '../eval/intervals.ts';
import { tMeanInterval, welchDifference } from '../eval/student.ts';
import { META_FILE, readJson } from '../nn/folder.ts';
import type { Tokenizer } from '../tokenizer/index.ts';
import { resolvePMTrainConfig } from './config.ts';
import { sampleComparisons, type TaskedComparison } from './data.ts';
import { evaluateScored, type GoldPreference, scoreComparisons } from './evaluate.ts';
import { loadPreferenceModel } from './model.ts';
import { trainPreferenceModel } from './train.ts';

export interface ExperimentData {
  helpfulTrain: TaskedComparison[];
  harmlessTrain: TaskedComparison[];
  helpfulTest: TaskedComparison[];
  harmlessTest: TaskedComparison[];
  /** Ranked pairs for PMP. */
  pmp: TaskedComparison[];
}

export interface ExperimentContext {
  out: string;
  data: ExperimentData;
  tokenizer: Tokenizer;
  gold?: GoldPreference;
  seed: number;
  /** Finetuning lr multiplier (× the LM's pretraining lr). */
  lrMultiplier: number;
  pmpLrMultiplier: number;
  /** Config overrides for every run (e.g. batchSize, maxLength). */
  overrides?: Record<string, unknown>;
  /**
   * Gives every PM the likelihood feature of the LM it starts from (`likelihoodLm`; a PM finetuned from a
   * PMP checkpoint inherits PMP's): what a small PM cannot work out itself, its own LM's knowledge, then
   * grows with the LM's size as in the paper.
   */
  likelihood?: boolean;
  log?: (line: string) => void;
}

/** One trained PM's held-out figures. */
export interface ExperimentRow {
  name: string;
  comparisons: number;
  parameters: number;
  /** Against the test files' (crowd) labels. */
  accuracy: number;
  helpful: number;
  harmless: number;
  /** Against gold labels (NaN without a gold judge). */
  goldAccuracy: number;
  goldHelpful: number;
  goldHarmless: number;
  ece: number;
  seconds: number;
  [key: string]: number | string;
}

export interface ExperimentResult {
  experiment: string;
  claim: string;
  holds: boolean;
  verdict: string;
  /** The headline effect with its interval, where the experiment has one: pmp, PMP − no PMP at the smallest
   *  n (accuracy, paired t interval over the draws); size, the largest size's mean accuracy − the smallest's
   *  (Welch t interval over the training runs; a point with one run per size). */
  value?: Interval;
  rows: ExperimentRow[];
  /** size: each size's mean accuracy over its runs (what the report plots). */
  points?: { name: string; params: number; accuracy: number }[];
}

/** Whether a checkpoint folder holds a PM (hhkit.json kind 'pm'), not an LM. */
function isPMCheckpoint(dir: string): boolean {
  const meta = join(dir, META_FILE);
  return existsSync(meta) && readJson(meta)['kind'] === 'pm';
}

const byTask = (groups: { group: string; accuracy: number }[], task: string): number =>
  groups.find((g) => g.group === task)?.accuracy ?? Number.NaN;

/**
 * Trains one PM (resuming, so a finished run is reused) and evaluates it on both test sets.
 *
 * @example const row = await runPM(ctx, 'n1000', { init: 'lm/checkpoint', train: items, phase: 'finetune' });
 */
export async function runPM(
  ctx: ExperimentContext,
  name: string,
  run: {
    init: string;
    train: TaskedComparison[];
    phase: 'pmp' | 'finetune';
    overrides?: Record<string, unknown>;
  },
): Promise<ExperimentRow> {
  const started = performance.now();
  const out = join(ctx.out, name);
  const config = resolvePMTrainConfig(run.phase, {
    // Names the data, so a rerun only reuses a finished run trained on the same comparisons.
    data: `(experiment ${name}: ${run.train.length} comparisons)`,
    out,
    init: run.init,
    seed: ctx.seed,
    lrMultiplier: run.phase === 'pmp' ? ctx.pmpLrMultiplier : ctx.lrMultiplier,
    ...(ctx.likelihood && !isPMCheckpoint(run.init) ? { likelihoodLm: run.init } : {}),
    ...ctx.overrides,
    ...run.overrides,
  });
  ctx.log?.(`${name}: ${run.phase} on ${run.train.length} comparisons from ${run.init}`);
  const result = await trainPreferenceModel(config, {
    tokenizer: ctx.tokenizer,
    resume: true,
    progress: true,
    label: name,
    train: run.train,
    eval: [],
  });
  const { pm } = loadPreferenceModel(join(out, 'checkpoint'));
  const test = [...ctx.data.helpfulTest, ...ctx.data.harmlessTest];
  const scored = await scoreComparisons(pm, ctx.tokenizer, test, {
    maxLength: config.maxLength,
    ...(ctx.gold ? { gold: ctx.gold } : {}),
  });
  pm.dispose();
  const report = evaluateScored(scored);
  const row: ExperimentRow = {
    name,
    comparisons: result.comparisons,
    parameters: result.parameters,
    accuracy: report.accuracy,
    helpful: byTask(report.byTask, 'helpful'),
    harmless: byTask(report.byTask, 'harmless'),
    goldAccuracy: report.gold?.accuracy ?? Number.NaN,
    goldHelpful: report.gold ? byTask(report.gold.byTask, 'helpful') : Number.NaN,
    goldHarmless: report.gold ? byTask(report.gold.byTask, 'harmless') : Number.NaN,
    ece: report.calibration.ece,
    seconds: (performance.now() - started) / 1000,
  };
  ctx.log?.(
    `${name}: accuracy ${(100 * row.accuracy).toFixed(1)}%, gold ${(100 * row.goldAccuracy).toFixed(1)}%`,
  );
  return row;
}

const main = (r: ExperimentRow): number => (Number.isFinite(r.goldAccuracy) ? r.goldAccuracy : r.accuracy);
const pts = (x: number): string => `${(100 * x).toFixed(1)}`;
const sign = (x: number): string => `${x >= 0 ? '+' : ''}${pts(x)}`;

/**
 * PM accuracy vs model size (Figure 6 left): one PM per LM, all finetuned on the same comparisons, `repeats`
 * times per size with their own seeds (the head's initialisation and the batch order). One training run moves
 * a tiny PM's gold accuracy by ±1–3 points on the world's ~420 held-out comparisons (measured: seed 1's
 * medium PM 86.0, 84.1, 84.1% on three seeds; seed 3's large one 81.8, 78.7, 84.4%), as much as the large PM
 * gains over the medium one, so the verdict reads the mean per size: it holds when accuracy does not fall
 * from one size to the next (by more than half a point), the largest − smallest gain is over a point, and
 * that gain's Welch t interval over the runs lies above zero (a bootstrap of 3–5 runs is far too narrow).
 * With one run per size there is no spread to measure: the value is a point and the claim is not judged.
 *
 * @example await sizeExperiment(ctx, [{ name: 'small', checkpoint: 'lm-small/checkpoint' }, …], 3);
 */
export async function sizeExperiment(
  ctx: ExperimentContext,
  lms: { name: string; checkpoint: string }[],
  repeats = 1,
): Promise<ExperimentResult> {
  if (!Number.isInteger(repeats) || repeats < 1)
    throw new RangeError(`sizeExperiment: repeats must be a positive integer, got ${repeats}`);
  const train = [...ctx.data.helpfulTrain, ...ctx.data.harmlessTrain];
  const rows: ExperimentRow[] = [];
  const sizes: { name: string; parameters: number; runs: number[] }[] = [];
  for (const lm of lms) {
    const runs: number[] = [];
    for (let r = 0; r < repeats; r++) {
      // The first run keeps the name (and seed) of a single-run experiment, so earlier runs are reused.
      const row = await runPM(ctx, `size-${lm.name}${r === 0 ? '' : `-r${r}`}`, {
        init: lm.checkpoint,
        train,
        phase: 'finetune',
        ...(r === 0 ? {} : { overrides: { seed: ctx.seed + r } }),
      });
      rows.push({ ...row, draw: r });
      runs.push(main(row));
    }
    sizes.push({ name: lm.name, parameters: rows.at(-1)!.parameters, runs });
  }
  rows.sort((a, b) => a.parameters - b.parameters || (a['draw'] as number) - (b['draw'] as number));
  sizes.sort((a, b) => a.parameters - b.parameters);
  const means = sizes.map((s) => mean(s.runs));
  const monotone = means.every((m, i) => i === 0 || m >= means[i - 1]! - 0.005);
  const gain = welchDifference(sizes[0]!.runs, sizes.at(-1)!.runs);
  // One run per size measures no spread, so nothing can hold on it.
  const holds = repeats > 1 && monotone && gain.value > 0.01 && gain.lower > 0;
  const runs = repeats > 1 ? `, mean of ${repeats} runs each` : ', one run each: not judged (--repeats ≥ 2)';
  const each = sizes.map((s, i) => `${s.parameters} params → ${pts(means[i]!)}%`).join(', ');
  const interval = repeats > 1 ? ` [${sign(gain.lower)}, ${sign(gain.upper)}]` : '';
  return {
    experiment: 'size',
    claim: 'PM accuracy improves steadily with model size (roughly linearly in log parameters).',
    holds,
    verdict: holds
      ? `holds: accuracy rises with size (${each}${runs}), ${sign(gain.value)} pts${interval} from the smallest to the largest`
      : `does not hold cleanly here: ${each}${runs}; largest − smallest ${sign(gain.value)} pts${interval}`,
    value: gain,
    rows,
    points: sizes.map((s, i) => ({ name: s.name, params: s.parameters, accuracy: means[i]! })),
  };
}

/**
 * With vs without preference-model pretraining at small finetuning data (Figure 7 / §3.2): PMP once
 * on the ranked pairs, then, `repeats` times per size n, finetune on a fresh draw of n comparisons (its own
 * seed, also for the head and the batch order) from the PMP model and from the plain LM. At n ≤ 250 one
 * draw moves a tiny PM's gold accuracy by ±5–10 points (measured: the same setting gave PMP − none = +4.8,
 * −10.5 and +8.4 points at n = 50 on three seeds), so the verdict is the mean paired gain over the draws
 * with its t interval over them (paired by draw; a bootstrap of 5 draws is too narrow): PMP helps when the
 * interval at the smallest n lies above zero (one draw measures no spread: not judged).
 *
 * @example await pmpExperiment(ctx, 'lm/checkpoint', [100, 250, 1000], 5);
 */
export async function pmpExperiment(
  ctx: ExperimentContext,
  lm: string,
  sizes: number[],
  repeats = 1,
): Promise<ExperimentResult> {
  if (!Number.isInteger(repeats) || repeats < 1)
    throw new RangeError(`pmpExperiment: repeats must be a positive integer, got ${repeats}`);
  sizes = [...sizes].sort((a, b) => a - b); // the verdict and value are read at the smallest n
  await runPM(ctx, 'pmp', { init: lm, train: ctx.data.pmp, phase: 'pmp' });
  const pmpCheckpoint = join(ctx.out, 'pmp', 'checkpoint');
  const all = [...ctx.data.helpfulTrain, ...ctx.data.harmlessTrain];
  const rows: ExperimentRow[] = [];
  const gains: Interval[] = [];
  for (const n of sizes) {
    const before: number[] = [];
    const after: number[] = [];
    for (let r = 0; r < repeats; r++) {
      const seed = ctx.seed + r;
      const train = sampleComparisons(all, n, seed);
      // The first draw keeps the names (and seed) of a single-draw run, so earlier runs are reused.
      const suffix = r === 0 ? '' : `-r${r}`;
      const overrides = r === 0 ? {} : { seed };
      const without = await runPM(ctx, `nopmp-n${n}${suffix}`, {
        init: lm,
        train,
        phase: 'finetune',
        overrides,
      });
      const withPmp = await runPM(ctx, `pmp-n${n}${suffix}`, {
        init: pmpCheckpoint,
        train,
        phase: 'finetune',
        overrides,
      });
      rows.push({ ...without, pmp: 'no', draw: r }, { ...withPmp, pmp: 'yes', draw: r });
      before.push(main(without));
      after.push(main(withPmp));
    }
    gains.push(tMeanInterval(after.map((a, i) => a - before[i]!)));
  }
  // One draw measures no spread, so nothing can hold on it.
  const holds = repeats > 1 && gains[0]!.lower > 0;
  const each = sizes
    .map((n, i) => {
      const g = gains[i]!;
      return repeats > 1
        ? `${sign(g.value)} pts [${sign(g.lower)}, ${sign(g.upper)}] at n=${n}`
        : `${sign(g.value)} pts at n=${n}`;
    })
    .join(', ');
  return {
    experiment: 'pmp',
    claim:
      'PMP improves sample efficiency: with little finetuning data, a PM finetuned after PMP is more accurate than one finetuned from the LM directly.',
    holds,
    verdict: `${holds ? 'holds' : gains.some((g) => g.value > 0) ? 'not shown' : 'does not hold here'}: PMP − no PMP over ${repeats} draw(s) = ${each}${repeats > 1 ? '' : ' (one draw: not judged, --repeats ≥ 2)'}`,
    value: gains[0]!,
    rows,
  };
}

/**
 * Helpful/harmless mixing (§3.2, Figure 5's tension): a fixed number of comparisons with a varying
 * harmless share, then λ (the harmless loss weight) at the natural mix.
 *
 * @example await mixExperiment(ctx, 'lm/checkpoint', 1200, [0, 1/3, 2/3, 1], [0.25, 1, 4]);
 */
export async function mixExperiment(
  ctx: ExperimentContext,
  init: string,
  total: number,
  fractions: number[],
  lambdas: number[],
): Promise<ExperimentResult> {
  const rows: ExperimentRow[] = [];
  for (const f of fractions) {
    const nHarm = Math.round(total * f);
    // (sampleComparisons reads 0 as "all", so an empty share is taken explicitly)
    const take = (items: TaskedComparison[], n: number) =>
      n === 0 ? [] : sampleComparisons(items, n, ctx.seed);
    const train = [...take(ctx.data.helpfulTrain, total - nHarm), ...take(ctx.data.harmlessTrain, nHarm)];
    const row = await runPM(ctx, `mix-f${f.toFixed(2)}`, { init, train, phase: 'finetune' });
    rows.push({ ...row, harmlessFraction: f, lambda: 1 });
  }
  const natural = [...ctx.data.helpfulTrain, ...ctx.data.harmlessTrain];
  const mixed = sampleComparisons(natural, total, ctx.seed);
  for (const lambda of lambdas) {
    const row = await runPM(ctx, `lambda-${lambda}`, {
      init,
      train: mixed,
      phase: 'finetune',
      overrides: { harmlessWeight: lambda },
    });
    rows.push({
      ...row,
      harmlessFraction: Number((mixed.filter((c) => c.task === 'harmless').length / mixed.length).toFixed(3)),
      lambda,
    });
  }
  const gold = (r: ExperimentRow, k: 'Helpful' | 'Harmless') =>
    Number.isFinite(r[`gold${k}`] as number) ? (r[`gold${k}`] as number) : (r[k.toLowerCase()] as number);
  const mixRows = rows.slice(0, fractions.length);
  const first = mixRows[0]!;
  const last = mixRows.at(-1)!;
  const harmUp = gold(last, 'Harmless') > gold(first, 'Harmless');
  const helpDown = gold(last, 'Helpful') < gold(first, 'Helpful');
  const lamRows = rows.slice(fractions.length);
  const lamHarmUp = gold(lamRows.at(-1)!, 'Harmless') >= gold(lamRows[0]!, 'Harmless');
  const holds = harmUp && helpDown;
  return {
    experiment: 'mix',
    claim:
      'Helpfulness and harmlessness are in tension for small PMs: more harmless data (or a larger λ) buys harmless accuracy at some cost in helpful accuracy.',
    holds,
    verdict:
      `harmless share ${first.harmlessFraction}→${last.harmlessFraction}: harmless-test ${pts(gold(first, 'Harmless'))}→${pts(gold(last, 'Harmless'))}%, ` +
      `helpful-test ${pts(gold(first, 'Helpful'))}→${pts(gold(last, 'Helpful'))}% (${holds ? 'tension visible' : 'no clear tension'}); ` +
      `λ ${lambdas[0]}→${lambdas.at(-1)}: harmless-test ${pts(gold(lamRows[0]!, 'Harmless'))}→${pts(gold(lamRows.at(-1)!, 'Harmless'))}%, ` +
      `helpful-test ${pts(gold(lamRows[0]!, 'Helpful'))}→${pts(gold(lamRows.at(-1)!, 'Helpful'))}% (${lamHarmUp ? 'λ moves harmless accuracy the expected way' : 'λ does not raise harmless accuracy here'})`,
    rows,
  };
}

/**
 * A result as a text table with its claim and verdict.
 *
 * @example console.log(formatExperiment(result));
 */
export function formatExperiment(r: ExperimentResult): string {
  const extra = [...new Set(r.rows.flatMap((row) => Object.keys(row)))].filter(
    (k) =>
      ![
        'name',
        'comparisons',
        'parameters',
        'accuracy',
        'helpful',
        'harmless',
        'goldAccuracy',
        'goldHelpful',
        'goldHarmless',
        'ece',
        'seconds',
      ].includes(k),
  );
  const head = [
    'run'.padEnd(16),
    'params'.padStart(8),
    'n'.padStart(6),
    ...extra.map((k) => k.padStart(8)),
    'crowd%'.padStart(7),
    'gold%'.padStart(6),
    'g-help%'.padStart(8),
    'g-harm%'.padStart(8),
    'ECE'.padStart(6),
    's'.padStart(5),
  ];
  const lines = [`experiment ${r.experiment}`, `paper: ${r.claim}`, head.join(' ')];
  for (const row of r.rows) {
    lines.push(
      [
        row.name.padEnd(16),
        String(row.parameters).padStart(8),
        String(row.comparisons).padStart(6),
        ...extra.map((k) => String(row[k] ?? '').padStart(8)),
        pts(row.accuracy).padStart(7),
        pts(row.goldAccuracy).padStart(6),
        pts(row.goldHelpful).padStart(8),
        pts(row.goldHarmless).padStart(8),
        row.ece.toFixed(3).padStart(6),
        row.seconds.toFixed(0).padStart(5),
      ].join(' '),
    );
  }
  lines.push(`here: ${r.verdict}`);
  return lines.join('\n');
}
