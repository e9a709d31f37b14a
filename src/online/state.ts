// The run state of `hhkit online`: OUT/state.json records, per round, each finished stage and what it
// produced, written atomically after every stage. A killed run reads it back and continues with the first
// unfinished stage; the stages themselves (PM training, PPO, collection) resume from their own checkpoints
// or from the store, so a kill in the middle of one loses at most a step.
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { removeAtomicTemps, writeFileAtomicSync } from '../util/atomic.ts';
import { defaultOnlineConfig, FIXED_ON_RESUME, type OnlineConfig, OnlineConfigError } from './config.ts';

/** A deployed snapshot: its row in the store's models table and its frozen checkpoint folder. */
export interface Snapshot {
  id: number;
  name: string;
  path: string;
}

/** The stages of a round, in order. Round 0 has no deploy/collect; the closing round only deploy/collect. */
export const STAGES = ['deploy', 'collect', 'data', 'pm', 'ppo', 'register', 'evaluate'] as const;
export type Stage = (typeof STAGES)[number];

export interface PMResult {
  checkpoint: string;
  modelId: number;
  /** Held-out accuracy against the crowd's labels and against gold labels (world test comparisons). */
  crowdAccuracy: number;
  goldAccuracy: number;
  count: number;
  /** Mean PM score on held-out transcripts (chosen and rejected). */
  meanScore: number;
  /**
   * Mean PM score of the held-out comparisons' chosen responses: subtracted from PPO's reward, as
   * `hhkit ppo --normalize-reward` does. Absent in a state written before it existed (meanScore is used).
   */
  chosenMean?: number;
}

export interface RoundRecord {
  round: number;
  deploy?: Snapshot[];
  /** Comparisons this round added to the store. */
  collect?: { comparisons: number; seconds: number };
  /** Comparison files the round's PM trained on (every round so far) and their total. */
  data?: { files: string[]; comparisons: number };
  pm?: PMResult;
  /**
   * The round's policy. PPO: its last step's reward and KL from the initial policy. Rejection-sampling
   * finetuning (policyTrainer 'rs'): the PM's mean raw score of the kept samples and the analytic KL of
   * best-of-N from the policy it sampled (plus the whole selection record); NaN for an adopted round 0.
   */
  ppo?: { checkpoint: string; reward: number; kl: number };
  register?: Snapshot;
  /** Gold HH (0–1) of the round's policy on the held-out prompts. */
  evaluate?: { gold: number; responseLength: number };
}

export interface OnlineState {
  format: 'hhkit-online/1';
  config: OnlineConfig;
  /** The initial policy, registered and frozen before round 0 (the Elo anchor). */
  base?: Snapshot;
  /** The PM init registered in the store (lineage of every round's PM). */
  pmInitId?: number;
  /** Store comparison ids of the world's static data once imported (round 0). */
  imported?: { comparisons: number };
  rounds: RoundRecord[];
}

export const STATE_FILE = 'state.json';

/**
 * The state of the run in `config.out`: read back (checking that the settings that shaped the finished
 * rounds did not change), or a new one.
 *
 * @example const state = openState(config); state.rounds[0]?.pm?.crowdAccuracy;
 */
export function openState(config: OnlineConfig): OnlineState {
  mkdirSync(config.out, { recursive: true });
  const path = join(config.out, STATE_FILE);
  // Temp files of state writes a kill interrupted.
  removeAtomicTemps(path);
  if (!existsSync(path)) return { format: 'hhkit-online/1', config, rounds: [] };
  const saved = JSON.parse(readFileSync(path, 'utf8')) as OnlineState;
  if (saved.format !== 'hhkit-online/1')
    throw new OnlineConfigError(`${path}: not an hhkit online state file`);
  // A key a state file predates reads as its default (policyTrainer came after the first runs: PPO).
  const changed = FIXED_ON_RESUME.filter((k) => (saved.config[k] ?? defaultOnlineConfig[k]) !== config[k]);
  if (changed.length > 0) {
    throw new OnlineConfigError(
      `${config.out} holds a run with a different ${changed
        .map((k) => `${k} (${JSON.stringify(saved.config[k])} → ${JSON.stringify(config[k])})`)
        .join(', ')}; use another out or the same settings`,
    );
  }
  return { ...saved, config };
}

/** Writes the state atomically (a kill leaves the previous or the new state, never half of one). */
export function saveState(state: OnlineState): void {
  writeFileAtomicSync(join(state.config.out, STATE_FILE), `${JSON.stringify(state, null, 2)}\n`);
}

/** The record of round `k`, created when absent. */
export function roundRecord(state: OnlineState, k: number): RoundRecord {
  let r = state.rounds.find((x) => x.round === k);
  if (!r) {
    r = { round: k };
    state.rounds.push(r);
    state.rounds.sort((a, b) => a.round - b.round);
  }
  return r;
}

/** Appends one JSON line to OUT/metrics.jsonl ("type" says what it is: stage, round, elo). */
export function logMetrics(out: string, record: { type: string } & Record<string, unknown>): void {
  appendFileSync(
    join(out, 'metrics.jsonl'),
    `${JSON.stringify({ time: new Date().toISOString(), ...record })}\n`,
  );
}
