// The online-rounds config (Bai et al. 2022 §2.3, §4.5): one flat typed object with defaults, merged once
// at the edge (CLI / config file) and passed down. PM and PPO settings are passed through to
// src/pm and src/rl as their own overrides, so one round's training is exactly `hhkit pm train` + `hhkit ppo`.
import { resolve } from 'node:path';
import type { PPOConfig } from '../rl/ppo-config.ts';

export interface OnlineConfig {
  /** Run folder: state.json, metrics.jsonl, rounds/N/{pm,ppo|rs}, models/NAME, data/, elo-rounds.json. */
  out: string;
  /** The world folder (rl-prompts.jsonl, helpful/harmless train and test comparisons, workers.json). */
  world: string;
  /** The initial policy: the context-distilled LM (or the base LM); every round's KL reference. */
  init: string;
  /**
   * Where round k's PPO starts: 'init' (every round from the initial policy) or 'previous' (round k − 1's
   * policy, so the rounds' PPO accumulates; the KL penalty stays against `init`).
   */
  policyFrom: 'init' | 'previous';
  /**
   * How each trained round makes its policy against its PM: 'ppo' (the paper), or 'rs': rejection-sampling
   * finetuning (rejection.ts: best-of-`rs.n` by the PM on the training prompts, then supervised finetuning on
   * the kept samples). Round 0 adopted from an earlier stage (round0Policy) is whatever that stage made.
   */
  policyTrainer: 'ppo' | 'rs';
  /** Rejection-sampling finetuning: samples per prompt, epochs over the kept ones (packed into windows of the
   *  context length), peak lr (cosine to lr/10), windows per step, and training prompts used (0: all). */
  rs: { n: number; epochs: number; lr: number; batchSize: number; prompts: number };
  /** What each round's PM is finetuned from: a PMP checkpoint, or an LM (empty: `init`). */
  pmInit: string;
  /** The SQLite store (empty: OUT/hhkit.db). Store round k holds round k's comparisons; round 0 the world's. */
  db: string;
  /** Training rounds after round 0 (round 0 = PM + PPO on the world's static comparisons only). */
  rounds: number;
  /** New comparisons collected per round. */
  comparisonsPerRound: number;
  /** Comparisons of the closing collection-only round (every snapshot deployed) that rates the last policy. */
  evalComparisons: number;
  /** Snapshots deployed per round: the initial policy (the Elo anchor) plus the newest policies. */
  deploy: number;
  /** Prompts sampled per batch when the simulated crowd collects. */
  collectBatch: number;
  /** Response sampling, as the feedback interface does it (server defaults: temperature 1, top-p 0.95). */
  maxNewTokens: number;
  temperature: number;
  topP: number;
  /** Held-out prompts (the world's static RL prompts) for gold HH and PM-predicted Elo. */
  evalPrompts: number;
  /** Bootstrap resamples for the crowd Elo intervals. */
  bootstrap: number;
  seed: number;
  /**
   * Round 0 from an earlier stage instead of trained here: comma-separated comparison files imported as
   * round 0 (empty: the world's static training comparisons), and a PM and a policy checkpoint adopted as
   * round 0's (empty: round 0 trains its own). The demo passes its PM's data, its PM and its PPO policy.
   */
  round0Data: string;
  round0PM: string;
  round0Policy: string;
  /** Comma-separated held-out comparisons every round's PM is scored on (empty: the world's test files). */
  testData: string;
  /** Overrides for the PM finetuning config (resolvePMTrainConfig keys; data/eval/out/init are set per round). */
  pm: Record<string, string | number>;
  /** Overrides for PPO (out is set per round). */
  ppo: Partial<PPOConfig>;
}

export const defaultOnlineConfig: OnlineConfig = {
  out: 'runs/online',
  world: '',
  init: '',
  policyFrom: 'init',
  policyTrainer: 'ppo',
  // 15 epochs over the packed windows ≈ 320 steps on the small world's 1,280 prompts: the setting measured.
  rs: { n: 16, epochs: 15, lr: 1e-4, batchSize: 16, prompts: 0 },
  pmInit: '',
  db: '',
  rounds: 3,
  comparisonsPerRound: 200,
  evalComparisons: 200,
  deploy: 3,
  collectBatch: 16,
  maxNewTokens: 24,
  temperature: 1,
  topP: 0.95,
  evalPrompts: 64,
  bootstrap: 200,
  seed: 1,
  round0Data: '',
  round0PM: '',
  round0Policy: '',
  testData: '',
  pm: {},
  ppo: { steps: 20, batchSize: 16, miniBatchSize: 8, maxNewTokens: 24, evalEvery: 0, checkpointEvery: 10 },
};

const resolveList = (files: string): string =>
  files
    .split(',')
    .filter(Boolean)
    .map((f) => resolve(f))
    .join(',');

export class OnlineConfigError extends Error {
  override name = 'OnlineConfigError';
}

/** Keys that must not change when a run is resumed (they decide what earlier rounds produced). */
export const FIXED_ON_RESUME = [
  'world',
  'init',
  'policyFrom',
  'policyTrainer',
  'pmInit',
  'db',
  'comparisonsPerRound',
  'deploy',
  'seed',
  'maxNewTokens',
  'round0Data',
  'round0PM',
  'round0Policy',
] as const;

/**
 * Defaults merged with `overrides` (PM and PPO overrides merged key by key), paths resolved, validated.
 *
 * @example const c = resolveOnlineConfig({ world: 'world', init: 'runs/lm/checkpoint', rounds: 3 });
 */
export function resolveOnlineConfig(overrides: Partial<OnlineConfig>): OnlineConfig {
  const c: OnlineConfig = {
    ...defaultOnlineConfig,
    ...overrides,
    pm: { ...defaultOnlineConfig.pm, ...overrides.pm },
    ppo: { ...defaultOnlineConfig.ppo, ...overrides.ppo },
    rs: { ...defaultOnlineConfig.rs, ...overrides.rs },
  };
  if (!c.world) throw new OnlineConfigError('online: world is required (a folder made by hhkit world)');
  if (!c.init)
    throw new OnlineConfigError('online: init is required (the distilled or base policy checkpoint)');
  const ints = [
    'rounds',
    'comparisonsPerRound',
    'evalComparisons',
    'collectBatch',
    'evalPrompts',
    'bootstrap',
    'seed',
  ] as const;
  for (const key of ints) {
    if (!Number.isInteger(c[key]) || c[key] < 0)
      throw new OnlineConfigError(`online: ${key} must be an integer ≥ 0, got ${c[key]}`);
  }
  if (!Number.isInteger(c.deploy) || c.deploy < 2)
    throw new OnlineConfigError(
      `online: deploy must be an integer ≥ 2 (Elo needs pairs of models), got ${c.deploy}`,
    );
  if (!Number.isInteger(c.maxNewTokens) || c.maxNewTokens < 1)
    throw new OnlineConfigError(`online: maxNewTokens must be a positive integer, got ${c.maxNewTokens}`);
  if (c.collectBatch < 1) throw new OnlineConfigError('online: collectBatch must be ≥ 1');
  if (c.policyFrom !== 'init' && c.policyFrom !== 'previous')
    throw new OnlineConfigError(`online: policyFrom must be init or previous, got ${String(c.policyFrom)}`);
  if (c.policyTrainer !== 'ppo' && c.policyTrainer !== 'rs')
    throw new OnlineConfigError(`online: policyTrainer must be ppo or rs, got ${String(c.policyTrainer)}`);
  for (const key of ['n', 'epochs', 'batchSize'] as const)
    if (!Number.isInteger(c.rs[key]) || c.rs[key] < 1)
      throw new OnlineConfigError(`online: rs.${key} must be a positive integer, got ${c.rs[key]}`);
  if (!Number.isInteger(c.rs.prompts) || c.rs.prompts < 0)
    throw new OnlineConfigError(`online: rs.prompts must be an integer ≥ 0 (0: all), got ${c.rs.prompts}`);
  if (!(c.rs.lr > 0)) throw new OnlineConfigError(`online: rs.lr must be > 0, got ${c.rs.lr}`);
  if (!(c.temperature > 0))
    throw new OnlineConfigError(`online: temperature must be > 0, got ${c.temperature}`);
  if (!(c.topP > 0 && c.topP <= 1))
    throw new OnlineConfigError(`online: topP must be in (0, 1], got ${c.topP}`);
  const out = resolve(c.out);
  return {
    ...c,
    out,
    world: resolve(c.world),
    init: resolve(c.init),
    pmInit: c.pmInit ? resolve(c.pmInit) : '',
    db: c.db ? resolve(c.db) : '',
    round0Data: resolveList(c.round0Data),
    round0PM: c.round0PM ? resolve(c.round0PM) : '',
    round0Policy: c.round0Policy ? resolve(c.round0Policy) : '',
    testData: resolveList(c.testData),
  };
}
