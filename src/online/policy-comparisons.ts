// Comparisons of a policy's own samples (Bai et al. 2022 §2.3: the base dataset was collected by
// crowdworkers comparing two responses of the context-distilled model). For every human prompt of the
// world's comparison files, the policy writes two responses (temperature 1, the distribution PPO samples
// from) and a simulated crowdworker picks one — helpful workers the better, red-teamers the more harmful,
// stored HH-RLHF style with the less harmful as chosen. A PM trained on these scores the distribution it
// will later be asked to score; one trained on the world's scripted responses never sees what the policy
// writes. Train and test prompts come from the world's train and test files, which share no prompt.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeComparisons } from '../data/comparisons.ts';
import type { ComparisonRecord } from '../data/types.ts';
import { loadCheckpoint } from '../nn/checkpoint.ts';
import type { CausalLM } from '../nn/causal-lm.ts';
import { sampleRollout } from '../rl/rollout.ts';
import { Tokenizer } from '../tokenizer/tokenizer.ts';
import { writeFileAtomic } from '../util/atomic.ts';
import { Progress } from '../util/progress.ts';
import { type CrowdMode, labelResponses, Rng } from '../world/index.ts';
import { readCrowd } from './data.ts';

export interface PolicyComparisonOptions {
  /** The policy checkpoint whose samples are compared (the context-distilled LM in the paper). */
  policy: string;
  /** The world folder: its comparison files give the prompts, workers.json the crowd. */
  world: string;
  /** Output folder: train.jsonl, test.jsonl, collect.json. */
  out: string;
  /** At most this many training / test prompts (0: all of the world's). */
  trainPrompts: number;
  testPrompts: number;
  maxNewTokens: number;
  seed: number;
  /** Comparisons per prompt (each of two fresh samples; default 1). */
  pairs?: number;
  /** Prompts sampled per batch. */
  batch?: number;
  progress?: boolean;
}

export interface SplitStats {
  prompts: number;
  comparisons: number;
  /** Pairs whose two samples were the same text even after a redraw (no comparison to make). */
  identical: number;
  /** Pairs the gold judge scores equal, and the crowd's agreement with gold on the others. */
  goldTies: number;
  crowdAgreesWithGold: number;
}

export interface PolicyComparisonReport {
  policy: string;
  maxNewTokens: number;
  seed: number;
  train: SplitStats;
  test: SplitStats;
  files: { train: string; test: string };
  seconds: number;
}

interface TaskPrompt {
  prompt: string;
  mode: CrowdMode;
}

/** Unique prompts of the world's helpful and harmless files of one split, helpful first. */
export function worldSplitPrompts(world: string, split: 'train' | 'test'): TaskPrompt[] {
  const out: TaskPrompt[] = [];
  const seen = new Set<string>();
  for (const [task, mode] of [
    ['helpful', 'helpful'],
    ['harmless', 'red-team'],
  ] as const) {
    const path = join(world, `${task}-${split}.jsonl`);
    if (!existsSync(path)) throw new Error(`${path}: not found (make a world with hhkit world)`);
    readFileSync(path, 'utf8')
      .split('\n')
      .forEach((line, i) => {
        if (!line.trim()) return;
        let row: { prompt?: unknown };
        try {
          row = JSON.parse(line) as typeof row;
        } catch {
          throw new Error(`${path}:${i + 1}: not JSON`);
        }
        if (typeof row.prompt !== 'string') throw new Error(`${path}:${i + 1}: no "prompt" string`);
        if (seen.has(row.prompt)) return;
        seen.add(row.prompt);
        out.push({ prompt: row.prompt, mode });
      });
  }
  return out;
}

/** Spreads `limit` picks evenly over `items` (keeps the helpful/harmless proportions of the world). */
function evenly<T>(items: readonly T[], limit: number): T[] {
  if (limit <= 0 || limit >= items.length) return [...items];
  return Array.from({ length: limit }, (_, i) => items[Math.floor((i * items.length) / limit)]!);
}

async function collectSplit(
  model: CausalLM,
  tokenizer: Tokenizer,
  prompts: readonly TaskPrompt[],
  o: PolicyComparisonOptions & { split: 'train' | 'test' },
): Promise<{ records: ComparisonRecord[]; stats: SplitStats }> {
  const crowd = readCrowd(o.world);
  const room = model.lmConfig.maxPositions - o.maxNewTokens;
  if (room < 1) throw new RangeError(`collect: maxNewTokens ${o.maxNewTokens} leaves no room for a prompt`);
  // Keep the end of a long prompt: the model must see the last Human turn and the Assistant marker.
  const ids = (
    await tokenizer.encodeBatch(
      prompts.map((p) => p.prompt),
      { allowSpecial: false },
    )
  ).map((p) => p.slice(Math.max(0, p.length - room)));
  const batch = Math.max(1, o.batch ?? 64);
  const records: ComparisonRecord[] = [];
  const stats: SplitStats = {
    prompts: prompts.length,
    comparisons: 0,
    identical: 0,
    goldTies: 0,
    crowdAgreesWithGold: 0,
  };
  let agree = 0;
  const bar = o.progress
    ? new Progress({ total: prompts.length, label: `collect ${o.split}`, unit: 'prompt' })
    : null;
  const draw = async (rows: number[][], seed: number): Promise<string[]> => {
    const r = await sampleRollout(model, tokenizer, rows, { maxNewTokens: o.maxNewTokens, seed });
    r.dispose();
    return r.texts;
  };
  const pairs = Math.max(1, o.pairs ?? 1);
  for (let start = 0; start < prompts.length; start += batch) {
    const rows = ids.slice(start, start + batch);
    for (let pair = 0; pair < pairs; pair++) {
      const base =
        o.seed * 1_000_003 + (o.split === 'train' ? 0 : 500_009) + 3 * (start * pairs + pair * batch);
      const first = await draw(rows, base);
      const second = await draw(rows, base + 1);
      // One redraw of the second sample where both came out the same text.
      const same = rows.flatMap((_, k) => (first[k] === second[k] ? [k] : []));
      if (same.length > 0) {
        const redrawn = await draw(
          same.map((k) => rows[k]!),
          base + 2,
        );
        same.forEach((k, j) => {
          second[k] = redrawn[j]!;
        });
      }
      for (let k = 0; k < rows.length; k++) {
        const { prompt, mode } = prompts[start + k]!;
        if (first[k] === second[k]) {
          stats.identical++;
          continue;
        }
        const rng = new Rng(o.seed).fork(`collect/${o.split}/${start + k}${pair > 0 ? `/${pair}` : ''}`);
        const { record, agreesWithGold } = labelResponses(rng, crowd, mode, prompt, first[k]!, second[k]!, {
          source: `policy:${o.policy}`,
          round: 0,
        });
        records.push(record);
        if (agreesWithGold === undefined) stats.goldTies++;
        else if (agreesWithGold) agree++;
      }
    }
    bar?.tick(rows.length);
  }
  bar?.done();
  stats.comparisons = records.length;
  const decided = records.length - stats.goldTies;
  stats.crowdAgreesWithGold = decided > 0 ? agree / decided : Number.NaN;
  return { records, stats };
}

/**
 * Samples two responses of `policy` per world prompt, has the simulated crowd pick one, and writes
 * OUT/train.jsonl and OUT/test.jsonl (HH-RLHF comparison files) and OUT/collect.json. A finished
 * collection is reused: OUT/collect.json marks it done.
 *
 * @example
 * const r = await collectPolicyComparisons({ policy: 'runs/demo/distill/checkpoint', world: 'runs/demo/world',
 *   out: 'runs/demo/collect', trainPrompts: 0, testPrompts: 0, maxNewTokens: 32, seed: 1 });
 * r.test.comparisons; // held-out comparisons between the policy's own samples
 */
export async function collectPolicyComparisons(o: PolicyComparisonOptions): Promise<PolicyComparisonReport> {
  const summaryPath = join(o.out, 'collect.json');
  if (existsSync(summaryPath)) return JSON.parse(readFileSync(summaryPath, 'utf8')) as PolicyComparisonReport;
  const t0 = performance.now();
  mkdirSync(o.out, { recursive: true });
  const tokenizer = Tokenizer.fromFile(join(o.policy, 'tokenizer.json'));
  const { model } = loadCheckpoint(o.policy);
  model.eval();
  const files = { train: join(o.out, 'train.jsonl'), test: join(o.out, 'test.jsonl') };
  try {
    const stats: Record<'train' | 'test', SplitStats> = {} as Record<'train' | 'test', SplitStats>;
    for (const split of ['train', 'test'] as const) {
      const limit = split === 'train' ? o.trainPrompts : o.testPrompts;
      const prompts = evenly(worldSplitPrompts(o.world, split), limit);
      const pairs = split === 'train' ? (o.pairs ?? 1) : 1; // one comparison per held-out prompt
      const { records, stats: s } = await collectSplit(model, tokenizer, prompts, { ...o, split, pairs });
      await writeComparisons(files[split], records);
      stats[split] = s;
    }
    const report: PolicyComparisonReport = {
      policy: o.policy,
      maxNewTokens: o.maxNewTokens,
      seed: o.seed,
      train: stats.train,
      test: stats.test,
      files,
      seconds: (performance.now() - t0) / 1000,
    };
    await writeFileAtomic(summaryPath, `${JSON.stringify(report, null, 2)}\n`);
    return report;
  } finally {
    for (const p of model.parameters()) p.dispose();
  }
}
