// Scoring many transcripts with a PM: inference batches grouped by length (little padding), in eval mode
// and without gradients. Padding-aware readout makes the grouping invisible in the scores.
import { autocast, noGrad, tidy } from '../engine/index.ts';
import type { Tokenizer } from '../tokenizer/index.ts';
import { encodeTranscripts, padSequences } from './batch.ts';
import type { PreferenceModel } from './model.ts';

export interface ScoreOptions {
  /** Sequences per forward (default 32). */
  batchSize?: number;
  /** Called with the number of sequences scored so far. */
  onProgress?: (done: number) => void;
  /** 'bf16': the forward under bfloat16 autocast on the PM's device; scores come back as float32. */
  precision?: string;
}

/**
 * PM scores of token sequences (each ending in END_OF_CONTEXT), in input order.
 *
 * @example const scores = scoreSequences(pm, encoded.map((c) => c.chosen), tok.padId);
 */
export function scoreSequences(
  pm: PreferenceModel,
  sequences: readonly (readonly number[])[],
  padId: number,
  opts: ScoreOptions = {},
): number[] {
  const batchSize = opts.batchSize ?? 32;
  const order = sequences.map((s, i) => ({ i, n: s.length })).sort((a, b) => a.n - b.n || a.i - b.i);
  const scores = new Array<number>(sequences.length).fill(Number.NaN);
  const wasTraining = pm.training;
  pm.eval();
  try {
    for (let at = 0; at < order.length; at += batchSize) {
      const group = order.slice(at, at + batchSize);
      const values = noGrad(() =>
        tidy(() => {
          const batch = padSequences(
            group.map((g) => sequences[g.i]!),
            padId,
          );
          const scores = autocast({ device: pm.trunk.device, enabled: opts.precision === 'bf16' }, () =>
            pm.scores(batch),
          ); // (b)
          return scores.float().toTypedArray() as Float32Array;
        }),
      );
      group.forEach((g, k) => {
        scores[g.i] = values[k]!;
      });
      opts.onProgress?.(Math.min(order.length, at + batchSize));
    }
  } finally {
    pm.train(wasTraining);
  }
  return scores;
}

/**
 * PM scores of transcripts (HH-RLHF text): END_OF_CONTEXT appended, the start cut to fit `maxLength`
 * (default: the model's context).
 *
 * @example const [good, bad] = await scoreTranscripts(pm, tok, [prompt + ' 85.', prompt + ' 83.']);
 */
export async function scoreTranscripts(
  pm: PreferenceModel,
  tokenizer: Tokenizer,
  texts: readonly string[],
  opts: ScoreOptions & { maxLength?: number } = {},
): Promise<number[]> {
  const { ids } = await encodeTranscripts(tokenizer, texts, opts.maxLength ?? pm.config.maxPositions);
  return scoreSequences(pm, ids, tokenizer.padId, opts);
}
