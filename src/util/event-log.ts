// A trainer's progress events to disk: JSON lines (every event, as it is) and TensorBoard scalars (the
// numbers of each event that has a step). Any trainer's onEvent takes `log.write`: trainLM (TrainEvent),
// trainPreferenceModel (PMTrainEvent), distill (DistillEvent), trainPPO (PPOEvent), runOnline (OnlineEvent;
// the PM and PPO events it passes on are nested, each with its own steps: log them to a log of their own).
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { TFEventWriter } from './tfevents.ts';

/** What the log takes: an event with a `type` (every trainer's event union is one). */
export type LoggedEvent = { readonly type: string; readonly [key: string]: unknown };

export interface EventLogOptions {
  /** A JSON lines file (appended to): one line per event, `{"time": seconds since the epoch, …event}`. */
  jsonl?: string;
  /** A folder for a TensorBoard event file (`tensorboard --logdir` it, or a folder above it). */
  tensorboard?: string;
  /** Put before every TensorBoard tag, e.g. 'pm/' when several runs share a folder. */
  tagPrefix?: string;
  /**
   * The run resumes one whose event files are in `tensorboard` already (the folder is this run's alone):
   * the trainer's `{ type: 'resume', step }` event cuts them back to that checkpoint's step, and each tag's
   * first value at step s removes their values of the tag at steps ≥ s (a run that restarts from scratch,
   * a closing evaluation done again), so each step is in the folder once, as in metrics.jsonl. Default
   * false: a new event file beside the old ones, which TensorBoard merges (steps logged twice show twice).
   */
  resume?: boolean;
}

type Plain = { readonly [key: string]: unknown };
const isPlain = (v: unknown): v is Plain =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && !ArrayBuffer.isView(v);
const STEP_KEYS = ['step', 'round'] as const;
/** A nested object with a `type` of its own is an event of its own (online's PM and PPO events). */
const isEvent = (v: unknown): boolean => isPlain(v) && typeof v['type'] === 'string';
/** Nested objects deeper than this are not searched for numbers (events are shallow). */
const MAX_DEPTH = 3;

/**
 * The TensorBoard scalars of an event, or null when it has no step. The step is the event's `step`, else
 * its `round` (online rounds), looked up on the event and then on its nested objects (PPO's
 * `metrics.step`, online's `row.round`). Every other finite number becomes a scalar tagged by its path:
 * the event's type, its `stage` when it has one (online), then the keys, e.g. `step/loss`,
 * `step/time/rollout`, `eval/accuracy`, `stage/pm/seconds`. Arrays are left out, and so are nested events
 * (online's `{ type: 'ppo', round, event }`): their numbers belong to their own steps.
 *
 * @example eventScalars({ type: 'step', step: 3, loss: 2.1, lr: 1e-3 }); // { step: 3, scalars: { 'step/loss': 2.1, 'step/lr': 0.001 } }
 */
export function eventScalars(event: LoggedEvent): { step: number; scalars: Record<string, number> } | null {
  const e: Plain = event;
  const stepOf = (o: Plain): number | undefined => {
    for (const k of STEP_KEYS) if (typeof o[k] === 'number') return o[k];
    return undefined;
  };
  let step = stepOf(e);
  for (const v of Object.values(e)) if (step === undefined && isPlain(v) && !isEvent(v)) step = stepOf(v);
  if (step === undefined || !Number.isSafeInteger(step) || step < 0) return null;

  const scalars: Record<string, number> = {};
  const walk = (o: Plain, path: string, depth: number): void => {
    for (const [k, v] of Object.entries(o)) {
      if (depth === 0 && k === 'type') continue;
      if ((STEP_KEYS as readonly string[]).includes(k) && v === step) continue;
      if (typeof v === 'number' && Number.isFinite(v)) scalars[`${path}/${k}`] = v;
      else if (isPlain(v) && !isEvent(v) && depth < MAX_DEPTH) walk(v, `${path}/${k}`, depth + 1);
    }
  };
  walk(e, typeof e['stage'] === 'string' ? `${e['type']}/${e['stage']}` : String(e['type']), 0);
  return { step, scalars };
}

/** JSON for a log line: typed arrays (token streams) as their kind and length, not every element. */
function replacer(_key: string, value: unknown): unknown {
  if (ArrayBuffer.isView(value)) return { [value.constructor.name]: (value as Uint8Array).length };
  return value;
}

/**
 * Writes a trainer's events as JSON lines and/or TensorBoard scalars, each as it arrives.
 *
 * @example
 * const log = new EventLog({ jsonl: 'runs/pm/events.jsonl', tensorboard: 'runs/tb/pm' });
 * await trainPreferenceModel(config, { onEvent: log.write });
 * log.close();
 */
export class EventLog implements Disposable {
  /** The TensorBoard event file, when asked for. */
  readonly tensorboardFile: string | null;
  private jsonl: number | null;
  private readonly tb: TFEventWriter | null;
  private readonly prefix: string;

  constructor(opts: EventLogOptions) {
    if (!opts.jsonl && !opts.tensorboard) throw new TypeError('EventLog: give jsonl, tensorboard or both');
    if (opts.jsonl) mkdirSync(dirname(opts.jsonl), { recursive: true });
    this.jsonl = opts.jsonl ? openSync(opts.jsonl, 'a') : null;
    this.tb = opts.tensorboard ? new TFEventWriter(opts.tensorboard, { resume: opts.resume ?? false }) : null;
    this.tensorboardFile = this.tb?.path ?? null;
    this.prefix = opts.tagPrefix ?? '';
  }

  /** Logs one event (bound: pass it as `onEvent` directly). */
  readonly write = (event: LoggedEvent): void => {
    const time = Date.now() / 1000;
    if (this.jsonl !== null) writeSync(this.jsonl, `${JSON.stringify({ time, ...event }, replacer)}\n`);
    if (event.type === 'resume' && typeof event['step'] === 'number') this.tb?.cutAfter(event['step']);
    const found = this.tb ? eventScalars(event) : null;
    if (found && this.tb) {
      const tagged = Object.entries(found.scalars).map(([tag, v]) => [this.prefix + tag, v] as const);
      this.tb.scalars(found.step, Object.fromEntries(tagged), time);
    }
  };

  close(): void {
    if (this.jsonl !== null) closeSync(this.jsonl);
    this.jsonl = null;
    this.tb?.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
