// Shared by the RL commands (distill, ppo, best-of-n, robustness): world files, rewards (the gold judge or
// a preference model), checkpoint and tokenizer lookup, config overrides, device and precision.
import { existsSync, readlinkSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadComparisons } from '../data/comparisons.ts';
import { mean } from '../eval/intervals.ts';
import { readWorldPrompts } from '../online/data.ts';
import type { RewardFn } from '../rl/rollout.ts';
import { Tokenizer } from '../tokenizer/index.ts';
import { ConfigError, type HardwareConfig, trainingDevice, validateHardware } from '../train/config.ts';
import { goldJudge } from '../world/index.ts';
import { chatTemplateOption, UsageError } from './args.ts';
import { warnLoad } from './warnings.ts';

/** The world's RL prompts: the fixed static set (held out for evaluation) and the generated rest (training). */
export function readRLPrompts(world: string): { train: string[]; eval: string[] } {
  let prompts: ReturnType<typeof readWorldPrompts>;
  try {
    prompts = readWorldPrompts(world);
  } catch (err) {
    throw new UsageError((err as Error).message); // a missing or malformed file (path:line): exit 2
  }
  return { train: prompts.train.map((p) => p.prompt), eval: prompts.eval.map((p) => p.prompt) };
}

/** The gold judge's HH score (0–1) of each response: the world's ground truth, never trained on by PPO unless asked. */
export const goldReward: RewardFn = (prompts, responses) =>
  prompts.map((p, i) => goldJudge(p, responses[i] ?? '').hh);

/** What the RL commands use of src/pm (typed here so they build and run with the gold reward without it). */
export interface PMModule {
  loadPreferenceModel(dir: string): {
    pm: { eval(): unknown; to(target: { device: string }): unknown };
    tokenizerPath: string | null;
  };
  scoreTranscripts(
    pm: never,
    tokenizer: Tokenizer,
    texts: readonly string[],
    opts?: { precision?: string },
  ): Promise<number[]>;
  resolvePMTrainConfig(phase: 'finetune', overrides: Record<string, unknown>): unknown;
  trainPreferenceModel(
    config: never,
    options: { resume?: boolean; progress?: boolean; label?: string },
  ): Promise<{ checkpoint: string; evalAccuracy: number }>;
}

/** src/pm, loaded at run time; a clear error when it is not there. */
export async function loadPMModule(): Promise<PMModule> {
  const path = '../pm/index.ts';
  try {
    return (await import(path)) as PMModule;
  } catch (err) {
    throw new UsageError(
      `the preference-model library (src/pm) could not be loaded: ${(err as Error).message}; use --reward gold`,
    );
  }
}

/**
 * A preference model as a reward: the PM's score of prompt + response, read at the end-of-context token.
 * Loaded lazily so the commands run (with the gold reward) without src/pm. `hw.device` (a concrete device,
 * see commandDevice) is where the PM runs; `hw.precision` 'bf16' scores under bfloat16 autocast.
 */
export async function pmReward(
  dir: string,
  hw: { device: string; precision: string } = { device: 'cpu', precision: 'fp32' },
  chatTemplate = false,
): Promise<{ reward: RewardFn; tokenizer: Tokenizer; meanOn: (texts: string[]) => Promise<number> }> {
  const pmModule = await loadPMModule();
  const loaded = pmModule.loadPreferenceModel(resolveCheckpoint(dir));
  const pm = loaded.pm;
  pm.eval();
  if (hw.device !== 'cpu') pm.to({ device: hw.device });
  if (!loaded.tokenizerPath) throw new UsageError(`${dir}: the PM checkpoint has no tokenizer.json`);
  const tokenizer = chatTemplateOption(
    { 'chat-template': chatTemplate },
    Tokenizer.fromFile(loaded.tokenizerPath),
  );
  const score = (texts: string[]) =>
    pmModule.scoreTranscripts(pm as never, tokenizer, texts, { precision: hw.precision });
  return {
    reward: (prompts, responses) => score(prompts.map((p, i) => p + (responses[i] ?? ''))),
    tokenizer,
    meanOn: async (texts) => {
      const s = await score(texts);
      return s.length ? mean(s) : 0;
    },
  };
}

/**
 * The preferred (chosen) transcripts of a world's held-out comparisons, for a PM's mean score — PPO's
 * reward offset with --normalize-reward, so a response that scores like a typical preferred one gets 0:
 * at most `limit`, from comparisons spread evenly over the files (files are often ordered, helpful first).
 * Bad lines are warned about with file:line (an error when `strict`).
 *
 * Until 2026-12-04 this took every k-th of the interleaved chosen/rejected transcripts: chosen ones only
 * when k was even (every full-scale demo run), the first comparisons' both sides when the file was short.
 * The demo's results were measured with the chosen mean, so it is now what this says it does; the
 * online rounds centre on the same (see src/online/train.ts).
 */
export async function heldOutChosen(
  world: string,
  limit = 400,
  strict = false,
  files: readonly string[] = ['helpful-test.jsonl', 'harmless-test.jsonl'].map((n) => join(world, n)),
): Promise<string[]> {
  const paths = files.filter(existsSync);
  const { records, report } = await loadComparisons(paths, { strict });
  warnLoad(report);
  const n = Math.min(records.length, limit);
  return Array.from({ length: n }, (_, i) => records[Math.floor((i * records.length) / n)]!.chosen);
}

/** A run folder (with a `checkpoint` link) or a checkpoint folder → the checkpoint folder. */
export function resolveCheckpoint(path: string): string {
  const abs = resolve(path);
  const link = join(abs, 'checkpoint');
  if (existsSync(link) && !existsSync(join(abs, 'config.json'))) {
    try {
      return join(abs, readlinkSync(link));
    } catch {
      return link;
    }
  }
  if (!existsSync(join(abs, 'config.json')))
    throw new UsageError(
      `${path}: not a checkpoint folder (no config.json) nor a run folder (no checkpoint link)`,
    );
  return abs;
}

/** The tokenizer.json stored with a checkpoint (with its chat template when `options` hold --chat-template). */
export function checkpointTokenizer(dir: string, options: Record<string, string | boolean> = {}): Tokenizer {
  const path = join(dir, 'tokenizer.json');
  if (!existsSync(path)) throw new UsageError(`${dir}: no tokenizer.json in the checkpoint`);
  return chatTemplateOption(options, Tokenizer.fromFile(path));
}

const camel = (key: string): string => key.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

/**
 * Applies `--key value` options to a typed config: keys in kebab or camel case, values coerced to the
 * default's type; unknown keys are usage errors unless listed in `own`.
 */
export function applyOverrides<T extends object>(
  defaults: T,
  options: Record<string, string | boolean>,
  own: readonly string[],
): T {
  const out = { ...defaults } as Record<string, unknown>;
  for (const [rawKey, value] of Object.entries(options)) {
    const key = camel(rawKey);
    if (own.includes(key)) continue;
    if (!(key in out)) throw new UsageError(`unknown option --${rawKey}`);
    const current = out[key];
    if (typeof current === 'number') {
      const n = Number(value);
      if (typeof value !== 'string' || !Number.isFinite(n))
        throw new UsageError(`--${rawKey} expects a number, got ${JSON.stringify(value)}`);
      out[key] = n;
    } else if (typeof current === 'boolean') {
      out[key] = value === true || value === 'true';
    } else {
      if (typeof value !== 'string') throw new UsageError(`--${rawKey} expects a value`);
      out[key] = value;
    }
  }
  return out as T;
}

/**
 * The concrete device of an RL command's --device/--precision (cuda:LOCAL_RANK under `hhkit launch`); a
 * usage error (exit 2) for a bad value or a CUDA device this build or machine lacks. Call it before loading
 * models, after initProcessGroup where the command runs under launch.
 *
 * @example const device = commandDevice(config, 'ppo'); // 'cpu' on a machine without a GPU
 */
export function commandDevice(c: HardwareConfig, command: string): string {
  try {
    validateHardware(c);
    return trainingDevice(c);
  } catch (err) {
    if (err instanceof ConfigError) throw new UsageError(`${command}: ${err.message}`);
    throw err;
  }
}

const kebab = (key: string): string => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/**
 * `--key N   (default …)` help lines for a config's keys, with the description from `docs` where given
 * (e.g. hardwareDocs for --device and --precision).
 *
 * @example optionLines({ steps: 10 }) // '  --steps N            (default 10)'
 */
export function optionLines(defaults: object, docs: Partial<Record<string, string>> = {}): string {
  return Object.entries(defaults)
    .map(([k, v]) => {
      const kind = typeof v === 'number' ? 'N' : typeof v === 'boolean' ? '' : 'S';
      const doc = docs[k] ? `${docs[k]} ` : '';
      return `  --${kebab(k)} ${kind}`.padEnd(23) + `${doc}(default ${JSON.stringify(v)})`;
    })
    .join('\n');
}

/** Fixed-width table rows for stderr/stdout. */
export const fmt = (x: number, digits = 3): string => (Number.isFinite(x) ? x.toFixed(digits) : '—');
