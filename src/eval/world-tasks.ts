/**
 * Held-out task accuracy on the assistant world: greedy answers to the world's helpful test prompts,
 * judged by the gold judge. Run over the base, distilled, best-of-N and PPO policies it gives the
 * paper's "alignment tax / bonus" comparison (Bai et al. 2022, §3.2, Figure 3) in miniature: does
 * RLHF make the model worse (tax) or better (bonus) at the tasks themselves?
 */
import { generate } from '../nn/generate.ts';
import type { CausalLM } from '../nn/causal-lm.ts';
import type { Tokenizer } from '../tokenizer/index.ts';
import { goldJudge } from '../world/judge.ts';

export interface WorldTaskOptions {
  /** Tokens generated per answer (default 48). */
  maxNewTokens?: number;
  batchSize?: number;
}

export interface WorldTaskResult {
  count: number;
  /** Fraction of answers the gold judge marks 'correct' (exact task success). */
  accuracy: number;
  /** Mean gold helpfulness, harmlessness and HH score of the answers, in 0–1. */
  helpfulness: number;
  harmlessness: number;
  hh: number;
  /** Fraction of answers that are refusals (over-refusal costs helpfulness). */
  refusalRate: number;
}

/**
 * Greedy answers to `prompts` (HH text ending with "\n\nAssistant:"), scored by the gold judge.
 *
 * @example
 * const { prompts } = loadPrompts('world/helpful-test.jsonl');
 * const r = await worldTaskAccuracy(model, tok, prompts.slice(0, 100)); // { accuracy: 0.41, hh: 0.7, … }
 */
export async function worldTaskAccuracy(
  model: CausalLM,
  tok: Tokenizer,
  prompts: readonly string[],
  opts: WorldTaskOptions = {},
): Promise<WorldTaskResult> {
  const maxNewTokens = opts.maxNewTokens ?? 48;
  const batchSize = opts.batchSize ?? 16;
  const keepTokens = model.lmConfig.maxPositions - maxNewTokens;
  if (keepTokens < 1) throw new RangeError(`maxNewTokens ${maxNewTokens} leaves no room for the prompt`);
  const encoded = (await tok.encodeBatch([...prompts], { allowSpecial: false })).map((p) =>
    p.slice(-keepTokens),
  );
  const stops = tok.generationStops();
  const totals = { correct: 0, helpfulness: 0, harmlessness: 0, hh: 0, refusals: 0 };
  const wasTraining = model.training;
  model.eval();
  try {
    for (let start = 0; start < encoded.length; start += batchSize) {
      const { tokens } = generate(model, encoded.slice(start, start + batchSize), {
        maxNewTokens,
        padId: tok.padId,
        ...stops,
        greedy: true,
      });
      const responses = await tok.decodeReplies(tokens);
      for (let i = 0; i < tokens.length; i++) {
        const response = responses[i]!;
        const gold = goldJudge(prompts[start + i]!, response);
        totals.correct += gold.outcome === 'correct' ? 1 : 0;
        totals.refusals += gold.outcome === 'refusal' || gold.outcome === 'ideal-refusal' ? 1 : 0;
        totals.helpfulness += gold.helpfulness;
        totals.harmlessness += gold.harmlessness;
        totals.hh += gold.hh;
      }
    }
  } finally {
    if (wasTraining) model.train();
  }
  const n = Math.max(1, prompts.length);
  return {
    count: prompts.length,
    accuracy: totals.correct / n,
    helpfulness: totals.helpfulness / n,
    harmlessness: totals.harmlessness / n,
    hh: totals.hh / n,
    refusalRate: totals.refusals / n,
  };
}

/** One held-out prompt's verdicts: its sampled responses (temperature 1) and the greedy one. */
export interface WorldPromptRecord {
  family: string;
  /** The sampled responses, and the judge's outcome of each. */
  responses: string[];
  outcomes: string[];
  /** Means over the sampled responses. */
  helpfulness: number;
  harmlessness: number;
  hh: number;
  /** The greedy response's outcome (task accuracy: the model's best guess). */
  greedyOutcome: string;
}

export interface WorldPolicyEvaluation {
  count: number;
  /** Means over the sampled responses. */
  helpfulness: number;
  harmlessness: number;
  hh: number;
  /** Fraction of benign prompts whose greedy answer the judge marks correct. */
  accuracy: number;
  /** Fraction of distinct first samples across prompts (1: no two prompts got the same text). */
  distinct: number;
  items: WorldPromptRecord[];
}

/**
 * Samples `samples` responses per held-out prompt (temperature 1, seeded: the distribution PPO trains and
 * the crowd sees) and decodes one greedily, all judged by the gold judge, with the prompt's family kept, so
 * per-family figures and paired intervals between two policies on the same prompts can be computed (more
 * samples per prompt shrink the sampling noise of those intervals).
 *
 * @example
 * const r = await worldPolicyEvaluation(model, tok, rows, { seed: 7, samples: 4 }); // rows: { prompt, family }[]
 * r.hh; r.items.filter((x) => x.family === 'harmful').map((x) => x.harmlessness);
 */
export async function worldPolicyEvaluation(
  model: CausalLM,
  tok: Tokenizer,
  rows: readonly { prompt: string; family: string }[],
  opts: WorldTaskOptions & { seed: number; samples?: number },
): Promise<WorldPolicyEvaluation> {
  const samples = Math.max(1, opts.samples ?? 1);
  const maxNewTokens = opts.maxNewTokens ?? 32;
  const batchSize = opts.batchSize ?? 32;
  const keepTokens = model.lmConfig.maxPositions - maxNewTokens;
  if (keepTokens < 1) throw new RangeError(`maxNewTokens ${maxNewTokens} leaves no room for the prompt`);
  const prompts = rows.map((r) => r.prompt);
  const encoded = (await tok.encodeBatch(prompts, { allowSpecial: false })).map((p) => p.slice(-keepTokens));
  const items: WorldPromptRecord[] = [];
  const wasTraining = model.training;
  model.eval();
  try {
    for (let start = 0; start < encoded.length; start += batchSize) {
      const batch = encoded.slice(start, start + batchSize);
      const common = { maxNewTokens, padId: tok.padId, ...tok.generationStops() };
      const decode = async (g: { tokens: number[][] }) => tok.decodeReplies(g.tokens);
      const sampled: string[][] = [];
      for (let k = 0; k < samples; k++) {
        const seed = opts.seed + start + k * 1_000_003;
        sampled.push(await decode(generate(model, batch, { ...common, temperature: 1, seed })));
      }
      const greedy = await decode(generate(model, batch, { ...common, greedy: true }));
      for (let i = 0; i < batch.length; i++) {
        const row = rows[start + i]!;
        const responses = sampled.map((s) => s[i]!);
        const golds = responses.map((r) => goldJudge(row.prompt, r));
        const avg = (f: (g: (typeof golds)[number]) => number) =>
          golds.reduce((a, g) => a + f(g), 0) / samples;
        items.push({
          family: row.family,
          responses,
          outcomes: golds.map((g) => g.outcome),
          helpfulness: avg((g) => g.helpfulness),
          harmlessness: avg((g) => g.harmlessness),
          hh: avg((g) => g.hh),
          greedyOutcome: goldJudge(row.prompt, greedy[i]!).outcome,
        });
      }
    }
  } finally {
    if (wasTraining) model.train();
  }
  const mean = (f: (x: WorldPromptRecord) => number, xs = items) =>
    xs.length ? xs.reduce((a, x) => a + f(x), 0) / xs.length : Number.NaN;
  const benign = items.filter((x) => x.family !== 'harmful');
  return {
    count: items.length,
    helpfulness: mean((x) => x.helpfulness),
    harmlessness: mean((x) => x.harmlessness),
    hh: mean((x) => x.hh),
    accuracy: mean((x) => (x.greedyOutcome === 'correct' ? 1 : 0), benign),
    distinct: items.length
      ? new Set(items.map((x) => x.responses[0]!.trim())).size / items.length
      : Number.NaN,
    items,
  };
}
