/**
 * NLP evaluations by log-likelihood (Bai et al. 2022, §3.2, evaluated the way lm-eval-harness does):
 * - multiple choice: the choice with the highest log p(choice | context) wins ("accuracy"); the
 *   length-normalised variant divides by the choice's UTF-8 byte length ("accuracyNorm", lm-eval's
 *   acc_norm), which removes the bias towards short choices;
 * - last word (Lambada): correct when every target token is the model's argmax (greedy) prediction;
 * - exact-match QA: greedy generation, cut at the first newline, compared after SQuAD normalisation.
 * Context and continuation are tokenised separately, so the continuation's tokens do not depend on
 * how BPE would merge across the boundary.
 */
import { noGrad, type Tensor, tensor, tidy } from '../engine/index.ts';
import { generate } from '../nn/generate.ts';
import type { CausalLM } from '../nn/causal-lm.ts';
import type { Tokenizer } from '../tokenizer/index.ts';
import type { EvalItem, LastWordItem, MultipleChoiceItem, QaItem } from './nlp-data.ts';

export interface ContinuationRequest {
  /** Token ids before the continuation; at least one. */
  context: readonly number[];
  /** Token ids whose log-probability is wanted; at least one. */
  continuation: readonly number[];
}

export interface ContinuationScore {
  /** Σ log p(continuation token | everything before it). */
  logprob: number;
  tokens: number;
  /** Every continuation token was the argmax prediction. */
  greedy: boolean;
}

/**
 * log p(continuation | context) for each request, batched (right-padded, attention-masked) under
 * noGrad in eval mode. A context longer than the model's window loses its oldest tokens.
 *
 * @example
 * scoreContinuations(model, [{ context: [5, 6], continuation: [7] }])[0].logprob // ≤ 0
 */
export function scoreContinuations(
  model: CausalLM,
  requests: readonly ContinuationRequest[],
  opts: { batchSize?: number } = {},
): ContinuationScore[] {
  const window = model.lmConfig.maxPositions;
  const batchSize = opts.batchSize ?? 16;
  const device = model.device;
  const wasTraining = model.training;
  model.eval();
  const out: ContinuationScore[] = [];
  try {
    for (let start = 0; start < requests.length; start += batchSize) {
      const batch = requests.slice(start, start + batchSize).map((r, i) => {
        if (r.context.length === 0 || r.continuation.length === 0)
          throw new RangeError(
            `scoreContinuations: request ${start + i} has an empty context or continuation`,
          );
        if (r.continuation.length > window)
          throw new RangeError(
            `scoreContinuations: continuation of ${r.continuation.length} tokens exceeds the window ${window}`,
          );
        // Inputs are all tokens but the last (they predict the next one); keep the last `window`.
        const full = [...r.context, ...r.continuation].slice(-(window + 1));
        return { input: full.slice(0, -1), target: full.slice(1), n: r.continuation.length };
      });
      const width = Math.max(...batch.map((b) => b.input.length));
      const ids = new BigInt64Array(batch.length * width);
      const targets = new BigInt64Array(batch.length * width);
      const mask = new Uint8Array(batch.length * width);
      batch.forEach((b, row) => {
        b.input.forEach((id, t) => {
          ids[row * width + t] = BigInt(id);
          targets[row * width + t] = BigInt(b.target[t]!);
          mask[row * width + t] = 1;
        });
      });
      const [logprobs, hits] = noGrad(() =>
        tidy(() => {
          const onDevice = (t: Tensor) => (device === 'cpu' ? t : t.to({ device }));
          const shape = [batch.length, width];
          const target = onDevice(tensor(targets, { shape })).unsqueeze(2); // (B, T, 1)
          const { logits } = model.forward(onDevice(tensor(ids, { shape })), {
            attentionMask: onDevice(tensor(mask, { dtype: 'bool', shape })),
          }); // (B, T, V)
          const lp = logits.logSoftmax(-1).gather(2, target).squeeze(2); // (B, T)
          const hit = logits.argmax(-1, true).eq(target).squeeze(2); // (B, T)
          return [
            lp.to({ dtype: 'float64', device: 'cpu' }).toTypedArray() as Float64Array,
            hit.to({ device: 'cpu' }).toTypedArray() as Uint8Array,
          ] as const;
        }),
      );
      batch.forEach((b, row) => {
        let logprob = 0;
        let greedy = true;
        const end = b.input.length; // the continuation's targets are the last n of this row
        for (let t = end - b.n; t < end; t++) {
          logprob += logprobs[row * width + t]!;
          greedy &&= hits[row * width + t] === 1;
        }
        out.push({ logprob, tokens: b.n, greedy });
      });
    }
  } finally {
    if (wasTraining) model.train();
  }
  return out;
}

/** SQuAD's answer normalisation: lower case, no punctuation, no articles, single spaces. */
export function normalizeAnswer(s: string): string {
  return s
    .toLowerCase()
    .replace(/[\p{P}\p{S}]/gu, ' ')
    .replace(/\b(a|an|the)\b/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
}

export interface NlpEvalResult {
  /** 'accuracy' for multiple choice and last word, 'exactMatch' for QA. */
  metric: 'accuracy' | 'exactMatch';
  /** The headline value (accuracy or exact match) in 0–1. */
  value: number;
  /** Multiple choice only: the length-normalised accuracy. */
  accuracyNorm?: number;
  count: number;
}

export interface NlpEvalOptions {
  batchSize?: number;
  /** QA: tokens generated per answer (default 16). */
  maxNewTokens?: number;
}

async function encodeAll(tok: Tokenizer, texts: string[]): Promise<number[][]> {
  return tok.encodeBatch(texts, { allowSpecial: false });
}

// An empty context (possible after truncation or in odd files) is conditioned on EOS, as lm-eval does.
const withStart = (ids: number[], tok: Tokenizer): number[] => (ids.length ? ids : [tok.eosId]);

async function multipleChoice(
  model: CausalLM,
  tok: Tokenizer,
  items: MultipleChoiceItem[],
  o: NlpEvalOptions,
) {
  const contexts = await encodeAll(
    tok,
    items.map((i) => i.context),
  );
  const choices = await encodeAll(
    tok,
    items.flatMap((i) => i.choices),
  );
  const requests: ContinuationRequest[] = [];
  let k = 0;
  items.forEach((item, i) => {
    for (let c = 0; c < item.choices.length; c++)
      requests.push({ context: withStart(contexts[i]!, tok), continuation: choices[k++]! });
  });
  const scores = scoreContinuations(model, requests, o);
  let correct = 0;
  let correctNorm = 0;
  k = 0;
  for (const item of items) {
    const s = item.choices.map((text) => {
      const { logprob } = scores[k++]!;
      return { raw: logprob, norm: logprob / Math.max(1, Buffer.byteLength(text, 'utf8')) };
    });
    const argmax = (f: (x: { raw: number; norm: number }) => number) =>
      s.reduce((best, x, i) => (f(x) > f(s[best]!) ? i : best), 0);
    if (argmax((x) => x.raw) === item.gold) correct++;
    if (argmax((x) => x.norm) === item.gold) correctNorm++;
  }
  const n = Math.max(1, items.length);
  return {
    metric: 'accuracy',
    value: correct / n,
    accuracyNorm: correctNorm / n,
    count: items.length,
  } as const;
}

async function lastWord(model: CausalLM, tok: Tokenizer, items: LastWordItem[], o: NlpEvalOptions) {
  const contexts = await encodeAll(
    tok,
    items.map((i) => i.context),
  );
  const targets = await encodeAll(
    tok,
    items.map((i) => i.target),
  );
  const scores = scoreContinuations(
    model,
    items.map((_, i) => ({ context: withStart(contexts[i]!, tok), continuation: targets[i]! })),
    o,
  );
  const correct = scores.filter((s) => s.greedy).length;
  return { metric: 'accuracy', value: correct / Math.max(1, items.length), count: items.length } as const;
}

async function exactMatch(model: CausalLM, tok: Tokenizer, items: QaItem[], o: NlpEvalOptions) {
  const maxNewTokens = o.maxNewTokens ?? 16;
  const window = model.lmConfig.maxPositions - maxNewTokens;
  const prompts = (
    await encodeAll(
      tok,
      items.map((i) => i.prompt),
    )
  ).map((p) => withStart(p, tok).slice(-window));
  const batchSize = o.batchSize ?? 16;
  let correct = 0;
  const wasTraining = model.training;
  model.eval();
  try {
    for (let start = 0; start < prompts.length; start += batchSize) {
      const { tokens } = generate(model, prompts.slice(start, start + batchSize), {
        maxNewTokens,
        padId: tok.padId,
        eosId: tok.eosId,
        greedy: true,
      });
      for (let i = 0; i < tokens.length; i++) {
        const text = (await tok.decode(tokens[i]!, { skipSpecialTokens: true })).split('\n')[0]!;
        const item = items[start + i]!;
        if (item.answers.some((a) => normalizeAnswer(a) === normalizeAnswer(text))) correct++;
      }
    }
  } finally {
    if (wasTraining) model.train();
  }
  return { metric: 'exactMatch', value: correct / Math.max(1, items.length), count: items.length } as const;
}

/**
 * Evaluates a model on loaded benchmark items (all of one kind, as `loadEvalFile` returns them).
 *
 * @example
 * const { items } = loadEvalFile('test/fixtures/evals/arc.jsonl');
 * const r = await evaluateNlp(model, tok, items); // { metric: 'accuracy', value, accuracyNorm, count }
 */
export async function evaluateNlp(
  model: CausalLM,
  tok: Tokenizer,
  items: readonly EvalItem[],
  opts: NlpEvalOptions = {},
): Promise<NlpEvalResult> {
  const kinds = new Set(items.map((i) => i.kind));
  if (kinds.size > 1) throw new RangeError(`evaluateNlp: mixed item kinds ${[...kinds].join(', ')}`);
  const first = items[0];
  if (!first) return { metric: 'accuracy', value: Number.NaN, count: 0 };
  if (first.kind === 'choice') return multipleChoice(model, tok, items as MultipleChoiceItem[], opts);
  if (first.kind === 'last-word') return lastWord(model, tok, items as LastWordItem[], opts);
  return exactMatch(model, tok, items as QaItem[], opts);
}
