// `--tensorboard DIR` on the trainers (pretrain, pm pretrain|train, ppo): the run's progress events as
// TensorBoard scalars (util/event-log.ts), written by rank 0 alone under `hhkit launch`.
import { EventLog } from '../util/event-log.ts';
import { outputFolder } from './args.ts';

/** The help line every trainer prints for the option. */
export const TENSORBOARD_HELP = "write the run's scalars as a TensorBoard event file into DIR";

/**
 * The log `--tensorboard DIR` asks for (`dir`, '' without the option), on rank 0; null without the option
 * or on another rank. A resumed run adds a new event file beside the old one (TensorBoard reads every
 * file in the folder).
 *
 * @example const tb = tensorboardLog(stringOption(options, 'tensorboard', ''), rank); … tb?.write(e); … tb?.close();
 */
export function tensorboardLog(dir: string, rank: number): EventLog | null {
  if (!dir || rank !== 0) return null;
  return new EventLog({ tensorboard: outputFolder(dir, '--tensorboard') });
}
