// Measuring the rounds: the gold HH score of each snapshot on held-out prompts, PM-predicted Elo (the mean
// PM score of each snapshot's samples, ΔElo ≈ 174·ΔPM, §4.5 / Fig. 1) and crowd Elo with bootstrap
// intervals from the store's comparisons — what the paper's Figure 1 and 14 put side by side.
import { join } from 'node:path';
import { storeEloComparisons, type EloTask } from '../eval/elo-data.ts';
import { bootstrapElo, pmPredictedElo } from '../eval/elo.ts';
import { loadCheckpoint } from '../nn/checkpoint.ts';
import { evaluatePolicy } from '../rl/evaluate.ts';
import type { RewardFn } from '../rl/rollout.ts';
import type { Store } from '../store/store.ts';
import { Tokenizer } from '../tokenizer/tokenizer.ts';
import type { Snapshot } from './state.ts';

/**
 * Samples one response per held-out prompt from a snapshot (seeded: every snapshot sees the same
 * sampler seed) and scores it with `reward` and/or `gold`.
 *
 * @example const { gold } = await scoreSnapshot(snapshot, prompts, { maxNewTokens: 24, seed: 7, gold: goldHH });
 */
export async function scoreSnapshot(
  snapshot: Snapshot,
  prompts: readonly string[],
  opts: { maxNewTokens: number; seed: number; reward?: RewardFn; gold?: RewardFn },
): Promise<{ reward: number; gold: number; responseLength: number }> {
  const { model } = loadCheckpoint(snapshot.path);
  try {
    const tokenizer = Tokenizer.fromFile(join(snapshot.path, 'tokenizer.json'));
    const ev = await evaluatePolicy(model.eval(), tokenizer, prompts, {
      maxNewTokens: opts.maxNewTokens,
      seed: opts.seed,
      ...(opts.reward ? { reward: opts.reward } : {}),
      ...(opts.gold ? { gold: opts.gold } : {}),
    });
    return { reward: ev.reward, gold: ev.gold, responseLength: ev.responseLength };
  } finally {
    for (const p of model.parameters()) p.dispose();
  }
}

/** One model's crowd Elo with its interval, and its PM-predicted Elo. */
export interface EloRow {
  model: string;
  elo: number;
  lower: number;
  upper: number;
  comparisons: number;
  pmElo?: number;
}

/**
 * Crowd Elo of every model in the store's comparisons (red-team picks count for the other model when
 * `task` is 'all' or 'red-team'), relative to `anchor`, with bootstrap percentile intervals.
 *
 * @example const rows = crowdElo(store, 'base', { task: 'all', samples: 200, seed: 1 });
 */
export function crowdElo(
  store: Store,
  anchor: string,
  opts: { task?: EloTask; samples?: number; seed?: number; maxRound?: number } = {},
): EloRow[] {
  const task = opts.task ?? 'all';
  const maxRound = opts.maxRound;
  // Up to a round: the union of rounds 0…maxRound, read round by round (the store filters by one round).
  const data =
    maxRound === undefined
      ? storeEloComparisons(store, { task }).comparisons
      : Array.from(
          { length: maxRound + 1 },
          (_, r) => storeEloComparisons(store, { task, round: r }).comparisons,
        ).flat();
  if (data.length === 0) return [];
  const models = new Set(data.flatMap((c) => [c.a, c.b]));
  const { fit, interval } = bootstrapElo(data, {
    anchor: models.has(anchor) ? anchor : null,
    samples: opts.samples ?? 200,
    seed: opts.seed ?? 1,
  });
  return fit.models.map((model) => ({
    model,
    elo: fit.elo[model]!,
    lower: interval[model]!.lower,
    upper: interval[model]!.upper,
    comparisons: fit.comparisons[model]!,
  }));
}

/**
 * PM-predicted Elo of snapshots from their mean PM scores on the same prompts, relative to `anchor`.
 *
 * @example pmElo({ base: 0.1, 'policy-r1': 0.6 }, 'base') // { base: 0, 'policy-r1': 86.9 }
 */
export function pmElo(meanScores: Record<string, number>, anchor: string): Record<string, number> {
  return pmPredictedElo(meanScores, anchor in meanScores ? anchor : null);
}
