// Iterated online training (Bai et al. 2022 §2.3, §4.5), one visible loop. Round 0 trains a PM on the
// world's static comparisons and a policy against it. Round k ≥ 1:
//   1. deploy    the base policy + the newest snapshots (registered in the store with their lineage)
//   2. collect   comparisons of their responses (simulated crowd, or people through `hhkit serve`)
//   3. data      export round k from the store; the PM's data is every round's export so far
//   4. pm        retrain the PM on it (src/pm), score the world's held-out comparisons (crowd and gold)
//   5. ppo       PPO against the new PM (src/rl), from the initial (distilled) policy or, with policyFrom
//                'previous', from round k − 1's policy; the KL penalty is against the initial policy. With
//                policyTrainer 'rs', rejection-sampling finetuning against the PM instead (rejection.ts)
//   6. register  freeze the new policy as a snapshot, registered with its lineage
//   7. evaluate  gold HH of the new policy on held-out prompts
// A closing collection-only round deploys every snapshot, so the last policy gets a crowd Elo too; it draws
// the held-out prompts (no PM trains on it), so crowd Elo and gold HH measure the same prompts; then
// crowd Elo (store) and PM-predicted Elo across all rounds. Every stage is recorded in OUT/state.json
// when it finishes, so a killed run continues at the first unfinished stage.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Store } from '../store/store.ts';
import { Tokenizer } from '../tokenizer/tokenizer.ts';
import { readCheckpointConfig } from '../nn/checkpoint.ts';
import type { PMTrainEvent } from '../pm/train.ts';
import type { PPOEvent } from '../rl/ppo.ts';
import { collectSimulated, roundComparisons, type WorldPrompt } from './collect.ts';
import type { OnlineConfig } from './config.ts';
import { exportRound, importStaticData, readCrowd, readWorldPrompts, worldComparisonFiles } from './data.ts';
import { crowdElo, type EloRow, pmElo, scoreSnapshot } from './evaluate.ts';
import { chooseDeployment, ensureModel, registerSnapshot } from './snapshots.ts';
import {
  logMetrics,
  type OnlineState,
  openState,
  type RoundRecord,
  roundRecord,
  type Snapshot,
  saveState,
  type Stage,
} from './state.ts';
import { eloRoundsFile, formatRoundTable, type RoundRow } from './table.ts';
import { trainRoundPolicyRS } from './rejection.ts';
import { goldHH, pmRewardFn, scoreRoundPM, trainRoundPM, trainRoundPolicy } from './train.ts';

/**
 * Progress of an online run: each stage of each round starting, finishing (with its result as `detail`) or
 * skipped (finished before a resume); the PM and PPO trainers' own events, passed on with their round; at
 * the end, one row per round with its Elo.
 */
export type OnlineEvent =
  | {
      type: 'stage';
      round: number;
      stage: Stage | 'elo';
      status: 'skipped' | 'started' | 'done';
      seconds?: number;
      detail?: unknown;
    }
  | { type: 'pm'; round: number; event: PMTrainEvent }
  | { type: 'ppo'; round: number; event: PPOEvent }
  | { type: 'round'; row: RoundRow };

/** Collects round `round`'s comparisons some other way than the simulated crowd (e.g. people via the server). */
export type Collector = (ctx: {
  store: Store;
  round: number;
  deployed: readonly Snapshot[];
  target: number;
}) => Promise<void>;

export interface OnlineOptions {
  progress?: boolean;
  /** Default: the world's simulated crowd. */
  collector?: Collector;
  onEvent?: (e: OnlineEvent) => void;
  /** Written into elo-rounds.json and summary.json (the command line that made them). */
  command?: string;
}

export interface OnlineResult {
  rows: RoundRow[];
  base: { name: string; gold: number; pmElo: number };
  /** Crowd Elo of every snapshot (helpful and red-team comparisons together, red-team picks inverted). */
  elo: EloRow[];
  table: string;
  files: { state: string; metrics: string; eloRounds: string; summary: string; table: string; store: string };
}

/**
 * Runs (or continues) an online run: round 0, rounds 1…config.rounds, the closing collection, Elo.
 *
 * @example
 * const c = resolveOnlineConfig({ world: 'world', init: 'runs/lm/checkpoint', out: 'runs/online', rounds: 3 });
 * const { table } = await runOnline(c, { progress: true });
 * console.log(table);
 */
export async function runOnline(c: OnlineConfig, opts: OnlineOptions = {}): Promise<OnlineResult> {
  const state = openState(c);
  const storePath = c.db || join(c.out, 'hhkit.db');
  const store = Store.open(storePath);
  const emit = opts.onEvent ?? (() => {});
  const progress = opts.progress ?? false;
  try {
    // Prompts that fit the policy's context with room for a response (the samplers do not cut prompts).
    const room =
      readCheckpointConfig(c.init).maxPositions - Math.max(c.maxNewTokens, c.ppo.maxNewTokens ?? 0);
    const tokenizer = Tokenizer.fromFile(join(c.init, 'tokenizer.json'));
    const fits = async (ps: WorldPrompt[]) => {
      const ids = await tokenizer.encodeBatch(
        ps.map((p) => p.prompt),
        { allowSpecial: false },
      );
      return ps.filter((_, i) => ids[i]!.length <= room);
    };
    const worldPrompts = readWorldPrompts(c.world);
    const prompts = {
      train: await fits(worldPrompts.train),
      eval: (await fits(worldPrompts.eval)).slice(0, c.evalPrompts),
    };
    if (prompts.train.length === 0 || prompts.eval.length === 0)
      throw new Error(
        `${c.world}: no RL prompts fit in ${room} tokens; lower maxNewTokens or use a longer-context policy`,
      );
    const testFiles = c.testData ? c.testData.split(',') : worldComparisonFiles(c.world).test;
    const crowd = readCrowd(c.world);

    // Setup: the base policy (Elo anchor) and the PM init in the models table; the world's data as round 0.
    state.base ??= registerSnapshot(store, { from: c.init, modelsDir: join(c.out, 'models'), name: 'base' });
    state.pmInitId ??= c.pmInit
      ? ensureModel(store, { name: 'pm-init', kind: 'pm', path: c.pmInit })
      : state.base.id;
    state.imported ??= {
      comparisons: await importStaticData(store, c.world, c.round0Data ? c.round0Data.split(',') : undefined),
    };
    saveState(state);
    const base = state.base;

    /** Runs `stage` of round `k` unless the state says it finished; records its result. */
    const stage = async <K extends Stage>(
      r: RoundRecord,
      name: K,
      fn: () => Promise<NonNullable<RoundRecord[K]>>,
    ) => {
      if (r[name] !== undefined) {
        emit({ type: 'stage', round: r.round, stage: name, status: 'skipped' });
        return r[name] as NonNullable<RoundRecord[K]>;
      }
      emit({ type: 'stage', round: r.round, stage: name, status: 'started' });
      const t0 = performance.now();
      const value = await fn();
      r[name] = value;
      saveState(state);
      const seconds = (performance.now() - t0) / 1000;
      logMetrics(c.out, { type: 'stage', round: r.round, stage: name, seconds, result: value });
      emit({ type: 'stage', round: r.round, stage: name, status: 'done', seconds, detail: value });
      return value;
    };
    const policies = (): Snapshot[] => state.rounds.flatMap((r) => (r.register ? [r.register] : []));
    const collectRound = async (
      r: RoundRecord,
      deployed: Snapshot[],
      target: number,
      from: readonly WorldPrompt[],
    ) =>
      stage(r, 'collect', async () => {
        const t0 = performance.now();
        store.ensureRound(r.round);
        if (opts.collector) await opts.collector({ store, round: r.round, deployed, target });
        else
          await collectSimulated({
            store,
            round: r.round,
            deployed,
            target,
            prompts: from,
            crowd,
            sampling: { maxNewTokens: c.maxNewTokens, temperature: c.temperature, topP: c.topP },
            batch: c.collectBatch,
            seed: c.seed,
            progress,
          });
        return { comparisons: roundComparisons(store, r.round), seconds: (performance.now() - t0) / 1000 };
      });

    // policyFrom 'previous': round k starts from round k − 1's policy checkpoint (PPO's: its policy and value head).
    const previous = (k: number): string | undefined =>
      k > 0 && c.policyFrom === 'previous'
        ? state.rounds.find((q) => q.round === k - 1)?.ppo?.checkpoint
        : undefined;
    for (let k = 0; k <= c.rounds; k++) {
      const r = roundRecord(state, k);
      if (k > 0) {
        const deployed = await stage(r, 'deploy', async () => chooseDeployment(base, policies(), c.deploy));
        await collectRound(r, deployed, c.comparisonsPerRound, prompts.train);
      }
      const data = await stage(r, 'data', async () => {
        await exportRound(store, c.out, k);
        const files = Array.from({ length: k + 1 }, (_, j) => join(c.out, 'data', `round-${j}.jsonl`));
        const counted = store.db
          .prepare('SELECT count(*) AS n FROM comparisons WHERE round_id BETWEEN 0 AND ?')
          .get(k) as { n: number };
        return { files, comparisons: counted.n };
      });
      const pm = await stage(r, 'pm', async () => {
        // Round 0 may adopt an earlier stage's PM (trained on the same round-0 data) instead of training one.
        const result =
          k === 0 && c.round0PM
            ? { checkpoint: c.round0PM, ...(await scoreRoundPM(c.round0PM, testFiles)) }
            : await trainRoundPM(c, k, data.files, testFiles, progress, (event) =>
                emit({ type: 'pm', round: k, event }),
              );
        const modelId = ensureModel(store, {
          name: `pm-r${k}`,
          kind: 'pm',
          path: result.checkpoint,
          parent: state.pmInitId!,
          round: k,
          config: { data: data.files, comparisons: data.comparisons },
        });
        return { ...result, modelId };
      });
      const ppo = await stage(r, 'ppo', async () =>
        k === 0 && c.round0Policy
          ? { checkpoint: c.round0Policy, reward: Number.NaN, kl: Number.NaN }
          : c.policyTrainer === 'rs'
            ? trainRoundPolicyRS(
                c,
                k,
                pm.checkpoint,
                prompts.train.map((p) => p.prompt),
                progress,
                previous(k),
              )
            : trainRoundPolicy(
                c,
                k,
                pm.checkpoint,
                // A PM stage recorded before chosenMean existed has only meanScore.
                pm.chosenMean ?? pm.meanScore,
                prompts.train.map((p) => p.prompt),
                progress,
                (event) => emit({ type: 'ppo', round: k, event }),
                previous(k),
              ),
      );
      const snapshot = await stage(r, 'register', async () =>
        registerSnapshot(store, {
          from: ppo.checkpoint,
          modelsDir: join(c.out, 'models'),
          name: `policy-r${k}`,
          parent: base.id,
          round: k,
          config: {
            pm: `pm-r${k}`,
            ...(k === 0 && c.round0Policy
              ? { adopted: c.round0Policy }
              : c.policyTrainer === 'rs'
                ? { rs: c.rs }
                : { ppo: c.ppo }),
          },
        }),
      );
      await stage(r, 'evaluate', async () => {
        const s = await scoreSnapshot(
          snapshot,
          prompts.eval.map((p) => p.prompt),
          { maxNewTokens: c.maxNewTokens, seed: c.seed * 7919 + 17, gold: goldHH },
        );
        return { gold: s.gold, responseLength: s.responseLength };
      });
      store.finishRound(k);
    }

    // The closing collection: every snapshot deployed, so the last round's policy is rated as well. Its
    // prompts are the held-out ones the gold HH column is measured on: a policy can be better on the prompts
    // PPO trained on than on unseen ones (or worse), and the crowd's Elo should rate what gold rates.
    const closing = roundRecord(state, c.rounds + 1);
    const everything = [base, ...policies()];
    if (c.evalComparisons > 0) {
      const deployed = await stage(closing, 'deploy', async () => everything);
      await collectRound(closing, deployed, c.evalComparisons, prompts.eval);
    }

    // Elo across all rounds: crowd (store) and PM-predicted (the last round's PM on each snapshot's samples).
    emit({ type: 'stage', round: c.rounds + 1, stage: 'elo', status: 'started' });
    const t0 = performance.now();
    const elo = crowdElo(store, base.name, { task: 'all', samples: c.bootstrap, seed: c.seed });
    const lastPM = state.rounds.find((r) => r.round === c.rounds)?.pm;
    const means: Record<string, number> = {};
    let baseGold = Number.NaN;
    if (lastPM) {
      const pm = pmRewardFn(lastPM.checkpoint);
      try {
        for (const s of everything) {
          const scored = await scoreSnapshot(
            s,
            prompts.eval.map((p) => p.prompt),
            {
              maxNewTokens: c.maxNewTokens,
              seed: c.seed * 7919 + 17,
              reward: pm.reward,
              ...(s === base ? { gold: goldHH } : {}),
            },
          );
          means[s.name] = scored.reward;
          if (s === base) baseGold = scored.gold;
        }
      } finally {
        pm.dispose();
      }
    }
    const predicted = pmElo(means, base.name);
    const rows = state.rounds
      .filter((r) => r.register && r.pm && r.data && r.evaluate)
      .map((r) => roundRow(r, store, elo, predicted));
    const eloSeconds = (performance.now() - t0) / 1000;
    logMetrics(c.out, { type: 'elo', seconds: eloSeconds, crowd: elo, pmPredicted: predicted });
    emit({ type: 'stage', round: c.rounds + 1, stage: 'elo', status: 'done', seconds: eloSeconds });
    for (const row of rows) {
      logMetrics(c.out, { type: 'round', ...row });
      emit({ type: 'round', row });
    }

    const baseRow = { name: base.name, gold: baseGold, pmElo: predicted[base.name] ?? 0 };
    const table = formatRoundTable(rows, baseRow);
    const files = {
      state: join(c.out, 'state.json'),
      metrics: join(c.out, 'metrics.jsonl'),
      eloRounds: join(c.out, 'elo-rounds.json'),
      summary: join(c.out, 'summary.json'),
      table: join(c.out, 'table.txt'),
      store: storePath,
    };
    const command = opts.command ? { command: opts.command } : {};
    writeFileSync(
      files.eloRounds,
      `${JSON.stringify(eloRoundsFile(rows, { ...command, anchor: base.name, snapshots: elo, pmPredicted: predicted }), null, 2)}\n`,
    );
    writeFileSync(files.summary, `${JSON.stringify({ ...command, rows, base: baseRow, elo }, null, 2)}\n`);
    writeFileSync(files.table, `${table}\n`);
    return { rows, base: baseRow, elo, table, files };
  } finally {
    store.close();
  }
}

function roundRow(
  r: RoundRecord,
  store: Store,
  elo: readonly EloRow[],
  predicted: Record<string, number>,
): RoundRow {
  const name = r.register!.name;
  const rated = elo.find((e) => e.model === name);
  return {
    round: r.round,
    policy: name,
    comparisons: r.data!.comparisons,
    newComparisons: r.round === 0 ? 0 : roundComparisons(store, r.round),
    pmCrowdAccuracy: r.pm!.crowdAccuracy,
    pmGoldAccuracy: r.pm!.goldAccuracy,
    gold: r.evaluate!.gold,
    ...(rated ? { elo: rated.elo, lower: rated.lower, upper: rated.upper } : {}),
    ...(predicted[name] === undefined ? {} : { pmElo: predicted[name] }),
  };
}

export type { OnlineState };
