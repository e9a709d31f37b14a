// `--tensorboard DIR` on the trainers (pretrain, pm pretrain|train, distill, ppo, online): the run's progress
// events as TensorBoard scalars (util/event-log.ts), written by rank 0 alone under `hhkit launch`.
import { join } from 'node:path';
import type { OnlineEvent } from '../online/rounds.ts';
import { EventLog } from '../util/event-log.ts';
import { outputFolder } from './args.ts';

/** The help line every trainer prints for the option. */
export const TENSORBOARD_HELP =
  "write the run's scalars as a TensorBoard event file into DIR (a resume logs each step once)";

/**
 * The log `--tensorboard DIR` asks for (`dir`, '' without the option), on rank 0; null without the option
 * or on another rank. A resumed run (`resume`) writes a new event file beside the old ones and cuts those
 * back to its checkpoint's step (EventLogOptions.resume), so no step is in the folder twice.
 *
 * @example const tb = tensorboardLog(stringOption(options, 'tensorboard', ''), rank, options['resume'] === true); … tb?.write(e); … tb?.close();
 */
export function tensorboardLog(dir: string, rank: number, resume = false): EventLog | null {
  if (!dir || rank !== 0) return null;
  return new EventLog({ tensorboard: outputFolder(dir, '--tensorboard'), resume });
}

/** The figures of each stage of a round that TensorBoard plots against the round (online's RoundRecord). */
const ROUND_FIGURES: Readonly<Record<string, readonly string[]>> = {
  collect: ['comparisons'],
  data: ['comparisons'],
  pm: ['crowdAccuracy', 'goldAccuracy', 'meanScore'],
  ppo: ['reward', 'kl'],
  evaluate: ['gold', 'responseLength'],
};

/**
 * `hhkit online --tensorboard DIR`: one TensorBoard run per trainer and one for the rounds, each resumed
 * as the online run is — DIR/pm/round-K and DIR/ppo/round-K hold round K's PM and PPO steps (the scalars
 * `hhkit pm train` and `hhkit ppo` write), DIR/rounds the round figures with the round as the step: each
 * stage's result as it finishes (`pm/goldAccuracy`, `ppo/kl`, `evaluate/gold`, `collect/comparisons`, its
 * `seconds`) and, once every round is done, crowd and PM-predicted Elo (`elo/crowd`, `elo/lower`,
 * `elo/upper`, `elo/pmPredicted`).
 *
 * @example const tb = onlineTensorboard('runs/tb/online'); await runOnline(config, { onEvent: tb.write }); tb.close();
 */
export function onlineTensorboard(dir: string): { write(e: OnlineEvent): void; close(): void } {
  const root = outputFolder(dir, '--tensorboard');
  const rounds = new EventLog({ tensorboard: join(root, 'rounds'), resume: true });
  // The open log of each trainer: its round's (a round's PM or PPO run ends before the next one starts).
  const trainers = new Map<'pm' | 'ppo', { round: number; log: EventLog }>();
  const trainerLog = (stage: 'pm' | 'ppo', round: number): EventLog => {
    const open = trainers.get(stage);
    if (open?.round === round) return open.log;
    open?.log.close();
    const log = new EventLog({ tensorboard: join(root, stage, `round-${round}`), resume: true });
    trainers.set(stage, { round, log });
    return log;
  };
  return {
    write(e) {
      if (e.type === 'pm' || e.type === 'ppo') trainerLog(e.type, e.round).write(e.event);
      else if (e.type === 'round')
        rounds.write({
          type: 'elo',
          round: e.row.round,
          crowd: e.row.elo,
          lower: e.row.lower,
          upper: e.row.upper,
          pmPredicted: e.row.pmElo,
        });
      else if (e.status === 'done') {
        const detail =
          typeof e.detail === 'object' && e.detail !== null ? (e.detail as Record<string, unknown>) : {};
        const figures = (ROUND_FIGURES[e.stage] ?? []).map((k) => [k, detail[k]] as const);
        rounds.write({ type: e.stage, round: e.round, seconds: e.seconds, ...Object.fromEntries(figures) });
      }
    },
    close() {
      rounds.close();
      for (const { log } of trainers.values()) log.close();
    },
  };
}
