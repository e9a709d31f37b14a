import { readFileSync } from 'node:fs';
import { bootstrapElo, type EloComparison, type PairCounts, pmPredictedElo } from '../eval/elo.ts';
import { type EloSkip, type EloTask, readEloFile, storeEloComparisons } from '../eval/elo-data.ts';
import { StoreError } from '../store/errors.ts';
import { Store } from '../store/store.ts';
import { numberOption, type OptionSpec, parseArgs, stringOption, UsageError } from './args.ts';
import type { Command } from './main.ts';
import { warnSkipped } from './warnings.ts';

const OPTIONS: OptionSpec = {
  command: 'elo',
  values: ['db', 'file', 'task', 'round', 'anchor', 'bootstrap', 'level', 'seed', 'prior', 'pm-scores'],
  flags: ['strict'],
};

const help = `usage: hhkit elo (--db PATH | --file FILE … | FILE …) [options]

Maximum-likelihood Elo of models from pairwise comparisons (Bai et al. 2022, §4.5):
P(A beats B) = 1/(1 + 10^(−ΔElo/400)), with bootstrap confidence intervals.

sources (any mix):
  --db PATH              the store's comparisons between responses of registered models
  --file FILE, FILE …    JSON lines, one comparison each:
                           {"a": "base", "b": "ppo", "winner": "b"}
                           {"modelA": "base", "modelB": "ppo", "choice": "b", "task": "helpful"}
                           {"a": "base", "b": "ppo", "winsA": 12, "winsB": 30}
                         ("choice" is the worker's pick: for red-team records the OTHER model wins)
options:
  --task T               helpful (default) | red-team (harmlessness Elo: the unpicked response wins) | all
  --round N              only comparisons from online round N (store)
  --anchor MODEL         the model fixed at Elo 0 (default: the first id in sort order)
  --bootstrap N          resamples for the intervals (default 1000; 0 for none)
  --level L              interval mass (default 0.95)
  --seed S               bootstrap seed (default 0)
  --prior λ              L2 prior precision on r = Elo·ln10/400 (default 0.01; keeps undefeated models finite)
  --pm-scores FILE.json  {"model": mean PM score, …}: adds PM-predicted Elo (174·ΔPM) beside the crowd's
  --strict               a bad line or a truncated file is an error (default: warned with file:line, skipped)
  --json                 the last stdout line is the table as one JSON object`;

interface Row {
  model: string;
  elo: number;
  lower: number | null;
  upper: number | null;
  standardError: number;
  comparisons: number;
  wins: number;
  pmElo?: number;
}

function readPmScores(path: string): Record<string, number> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new UsageError(`cannot read --pm-scores ${path}: ${(err as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new UsageError(`--pm-scores ${path}: expected a JSON object {"model": score}`);
  }
  for (const [k, v] of Object.entries(parsed)) {
    if (typeof v !== 'number' || !Number.isFinite(v))
      throw new UsageError(`--pm-scores ${path}: score of '${k}' is not a number`);
  }
  return parsed as Record<string, number>;
}

const fmt = (v: number | null | undefined): string => (v === null || v === undefined ? '—' : v.toFixed(1));

export const command: Command = {
  summary: 'maximum-likelihood Elo of models from comparisons, with bootstrap intervals',
  help,
  async run(argv) {
    const { positionals, options } = parseArgs(argv, OPTIONS);
    const task = stringOption(options, 'task', 'helpful');
    if (task !== 'helpful' && task !== 'red-team' && task !== 'all') {
      throw new UsageError(`--task expects helpful, red-team or all, got ${JSON.stringify(task)}`);
    }
    const files = [...positionals];
    if (typeof options['file'] === 'string') files.unshift(options['file']);
    const db = stringOption(options, 'db', '');
    if (!db && files.length === 0)
      throw new UsageError(`elo: give --db PATH or a comparison file\n\n${help}`);
    const round = options['round'] === undefined ? undefined : numberOption(options, 'round', 0);
    const samples = numberOption(options, 'bootstrap', 1000);
    if (!(Number.isInteger(samples) && samples >= 0))
      throw new UsageError('--bootstrap expects an integer ≥ 0');
    const level = numberOption(options, 'level', 0.95);
    if (!(level > 0 && level < 1)) throw new UsageError('--level expects a number in (0, 1)');
    const priorPrecision = numberOption(options, 'prior', 0.01);
    if (!(priorPrecision > 0)) throw new UsageError('--prior expects a number > 0');

    const comparisons: (EloComparison | PairCounts)[] = [];
    const skipped: EloSkip[] = [];
    if (db) {
      let store: Store;
      try {
        store = Store.open(db, { mustExist: true, readonly: true });
      } catch (err) {
        if (err instanceof StoreError) throw new UsageError(err.message);
        throw err;
      }
      try {
        const got = storeEloComparisons(store, {
          task: task as EloTask,
          ...(round === undefined ? {} : { round }),
        });
        comparisons.push(...got.comparisons);
        skipped.push(...got.skipped);
      } finally {
        store.close();
      }
    }
    for (const file of files) {
      // A wrong path (exit 2) or a strict stop (exit 1) is one line from main.
      const got = await readEloFile(file, task as EloTask, { strict: options['strict'] === true });
      comparisons.push(...got.comparisons);
      skipped.push(...got.skipped);
    }
    warnSkipped(skipped, files.join(', ') || 'the store');
    if (comparisons.length === 0) {
      console.error('elo: no usable comparisons between models');
      return 1;
    }

    const anchor = typeof options['anchor'] === 'string' ? options['anchor'] : undefined;
    const seed = numberOption(options, 'seed', 0);
    let result: ReturnType<typeof bootstrapElo>;
    try {
      result = bootstrapElo(comparisons, {
        anchor,
        priorPrecision,
        level,
        seed,
        samples: Math.max(1, samples),
      });
    } catch (err) {
      if (err instanceof RangeError) throw new UsageError(err.message);
      throw err;
    }
    const { fit, interval } = result;
    const pmScores =
      typeof options['pm-scores'] === 'string' ? readPmScores(options['pm-scores']) : undefined;
    const pmElo =
      pmScores && fit.anchor !== null && fit.anchor in pmScores
        ? pmPredictedElo(pmScores, fit.anchor)
        : undefined;
    if (pmScores && !pmElo)
      console.error(`elo: --pm-scores has no score for the anchor '${fit.anchor}'; PM Elo omitted`);

    const rows: Row[] = fit.models
      .map((model) => ({
        model,
        elo: fit.elo[model]!,
        lower: samples > 0 ? interval[model]!.lower : null,
        upper: samples > 0 ? interval[model]!.upper : null,
        standardError: fit.standardError[model]!,
        comparisons: fit.comparisons[model]!,
        wins: fit.wins[model]!,
        ...(pmElo && model in pmElo ? { pmElo: pmElo[model]! } : {}),
      }))
      .sort((x, y) => y.elo - x.elo);

    const pct = `${Math.round(level * 100)}% CI`;
    const width = Math.max(5, ...rows.map((r) => r.model.length));
    const header = [
      `${'model'.padEnd(width)}`,
      'Elo'.padStart(8),
      pct.padStart(20),
      'n'.padStart(7),
      'wins'.padStart(7),
    ];
    if (pmElo) header.push('PM Elo'.padStart(8));
    console.log(header.join('  '));
    for (const r of rows) {
      const ci = r.lower === null ? '—' : `[${fmt(r.lower)}, ${fmt(r.upper)}]`;
      const cells = [
        r.model.padEnd(width),
        fmt(r.elo).padStart(8),
        ci.padStart(20),
        String(r.comparisons).padStart(7),
        String(r.wins).padStart(7),
      ];
      if (pmElo) cells.push(fmt(r.pmElo).padStart(8));
      console.log(cells.join('  '));
    }
    console.log(
      `${fit.total} comparisons, anchor ${fit.anchor}${samples > 0 ? `, ${samples} bootstrap resamples` : ''}${skipped.length ? `, ${skipped.length} skipped` : ''}`,
    );
    if (fit.components > 1) {
      console.log(
        `warning: the models form ${fit.components} groups never compared with each other; gaps between groups come from the prior only`,
      );
    }
    if (options['json'] === true) {
      console.log(
        JSON.stringify({
          anchor: fit.anchor,
          total: fit.total,
          level,
          samples,
          task,
          skipped: skipped.length,
          components: fit.components,
          converged: fit.converged,
          models: rows,
        }),
      );
    }
    return 0;
  },
};
