// Stage 1 of PPO (and the sampler of best-of-N and evaluation): sample responses to prompts with the fast
// KV-cache sampler, decode them, and keep the tensors PPO trains on. RL defaults: temperature 1, no top-k,
// no minimum length — anything else samples from a distribution other than the policy's and biases the
// KL estimate (it can go negative).
import { autocast, keep, noGrad, type Tensor, tidy } from '../engine/index.ts';
import { generateBatch, leftPad } from '../nn/generate.ts';
import type { CausalLM } from '../nn/causal-lm.ts';
import type { Tokenizer } from '../tokenizer/index.ts';
import type { ResponseWindow } from './policy.ts';

/**
 * A reward: one number per (prompt, response), e.g. the PM's score of the full transcript prompt + response
 * read at its end-of-context token, or (on the world) the gold judge's HH score.
 */
export type RewardFn = (prompts: string[], responses: string[]) => Promise<number[]> | number[];

export interface SampleOptions {
  maxNewTokens: number;
  /** Default 1: the policy's own distribution (what the KL penalty assumes). */
  temperature?: number;
  /** Seeds the sampler (the global generator is left untouched). */
  seed: number;
  /** 'bf16': sample under bfloat16 autocast on the policy's device (the log-probs stay float32). */
  precision?: string;
}

/** What one batch of sampling leaves: kept tensors on the policy's device (call dispose()) and the decoded responses. */
export interface Rollout extends ResponseWindow {
  /** (B, N) int64 sampled tokens (padId after a row stopped). */
  responses: Tensor;
  /** (B, N) float32 1/0: response tokens that were sampled (the stop token included). */
  mask: Tensor;
  /** Response token ids per row, the stop token included. */
  tokens: number[][];
  /** Response texts, stop tokens dropped. */
  texts: string[];
  dispose(): void;
}

/**
 * The ids that end a response: every EOS id, the next "\n\nHuman:" turn when it is one token, the chat
 * template's end of turn (see Tokenizer.generationStops, which also gives the stop strings).
 */
export function stopIdsOf(tokenizer: Tokenizer): number[] {
  return tokenizer.generationStops().stopIds;
}

/**
 * Response texts from sampled ids, as HH responses: trailing stop tokens dropped, special tokens skipped,
 * the text cut where a stop string (a multi-token "\n\nHuman:") starts, and a chat template's reply
 * given HH's leading space.
 *
 * @example await decodeResponses(tok, [[12, 7, tok.eosId]]) // [' Paris.']
 */
export async function decodeResponses(
  tokenizer: Tokenizer,
  tokens: readonly (readonly number[])[],
): Promise<string[]> {
  return tokenizer.decodeReplies(tokens);
}

/**
 * Samples one response per prompt (token ids) and decodes it.
 *
 * @example
 * const r = await sampleRollout(policy, tok, promptIds, { maxNewTokens: 32, seed: 1 });
 * r.texts[0]; r.dispose();
 */
export async function sampleRollout(
  policy: CausalLM,
  tokenizer: Tokenizer,
  promptTokens: readonly (readonly number[])[],
  opts: SampleOptions,
): Promise<Rollout> {
  const stops = tokenizer.generationStops();
  const kept = noGrad(() =>
    tidy(() => {
      // Prompts are padded on the CPU; generateBatch moves them to the policy's device.
      const { ids, mask } = leftPad(promptTokens, tokenizer.padId);
      const out = autocast({ device: policy.device, enabled: opts.precision === 'bf16' }, () =>
        generateBatch(policy, ids, mask, {
          maxNewTokens: opts.maxNewTokens,
          padId: tokenizer.padId,
          ...stops,
          temperature: opts.temperature ?? 1,
          seed: opts.seed,
        }),
      );
      return {
        sequences: keep(out.sequences),
        attentionMask: keep(out.attentionMask),
        responses: keep(out.responses),
        mask: keep(out.responseMask.float()),
        promptWidth: ids.size(1),
        responseWidth: out.responses.size(1),
      };
    }),
  );
  const B = promptTokens.length;
  const N = kept.responseWidth;
  const ids = kept.responses.toTypedArray() as BigInt64Array;
  const maskValues = kept.mask.toTypedArray() as Float32Array;
  const tokens: number[][] = [];
  for (let b = 0; b < B; b++) {
    const row: number[] = [];
    for (let t = 0; t < N && maskValues[b * N + t] === 1; t++) row.push(Number(ids[b * N + t]));
    tokens.push(row);
  }
  const texts = await decodeResponses(tokenizer, tokens);
  return {
    ...kept,
    tokens,
    texts,
    dispose() {
      for (const t of [kept.sequences, kept.attentionMask, kept.responses, kept.mask]) t.dispose();
    },
  };
}

/** A seeded permutation of 0..n−1 (Fisher–Yates); one implementation, in util/epoch-order.ts. */
export { permutation } from '../util/epoch-order.ts';
