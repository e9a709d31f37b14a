// Turning transcripts into what the preference model reads: token ids ending in the end-of-context
// token, left-truncated to fit the context, packed into padded batches whose chosen and rejected
// halves go through the GPT together (one forward per step, as the pairwise loss needs both).
import { type Tensor, tensor } from '../engine/index.ts';
import type { ComparisonTask } from '../data/types.ts';
import type { Tokenizer } from '../tokenizer/index.ts';

/** A comparison as token ids, each transcript already ending in END_OF_CONTEXT. */
export interface EncodedComparison {
  chosen: number[];
  rejected: number[];
  task: ComparisonTask;
}

/** Sequences padded into one batch. */
export interface SequenceBatch {
  /** ids: (N, T) int64 */
  ids: Tensor;
  /** attentionMask: (N, T) int64, 1 on real tokens, 0 on padding */
  attentionMask: Tensor;
  /** readout: (N) int64, the column of each row's END_OF_CONTEXT token (its last real token) */
  readout: Tensor;
}

export interface EncodeResult {
  ids: number[][];
  /** How many texts lost tokens at the front to fit `maxLength`. */
  truncated: number;
}

/**
 * Tokenises transcripts for scoring: the text's tokens (special-token strings in the text are read as
 * plain characters: transcripts are untrusted), the front cut off so that with END_OF_CONTEXT appended
 * it fits `maxLength` — the paper keeps the end of a long conversation, where the response is — then
 * END_OF_CONTEXT.
 *
 * @example const { ids } = await encodeTranscripts(tok, ['\n\nHuman: hi\n\nAssistant: hello'], 128);
 * ids[0].at(-1) === tok.endOfContextId; // true
 */
export async function encodeTranscripts(
  tokenizer: Tokenizer,
  texts: readonly string[],
  maxLength: number,
): Promise<EncodeResult> {
  if (!(Number.isInteger(maxLength) && maxLength >= 2)) {
    throw new RangeError(`encodeTranscripts: maxLength must be an integer ≥ 2, got ${maxLength}`);
  }
  const eoc = tokenizer.endOfContextId;
  const ids: number[][] = [];
  let truncated = 0;
  // Batches of a few hundred keep the native call's memory bounded on big files.
  const chunk = 512;
  for (let at = 0; at < texts.length; at += chunk) {
    const encoded = await tokenizer.encodeBatch(texts.slice(at, at + chunk), { allowSpecial: false });
    for (const tokens of encoded) {
      const keep = maxLength - 1;
      if (tokens.length > keep) truncated++;
      // A copy: the tokenizer's arrays are not ours to extend.
      ids.push([...tokens.slice(Math.max(0, tokens.length - keep)), eoc]);
    }
  }
  return { ids, truncated };
}

/**
 * Pads sequences to the longest one, on the right (default) or the left. Either way the GPT sees the
 * same thing for the real tokens: the mask hides padding and positions count from each row's first
 * real token (GPT.forwardHidden derives them from the mask), so a score does not depend on the side or
 * on what else is in the batch.
 *
 * @example const b = padSequences([[5, 6, 9], [7, 9]], 0); // ids (2, 3), readout [2, 1]
 */
export function padSequences(
  sequences: readonly (readonly number[])[],
  padId: number,
  side: 'right' | 'left' = 'right',
): SequenceBatch {
  const n = sequences.length;
  if (n === 0) throw new RangeError('padSequences: no sequences');
  const T = Math.max(...sequences.map((s) => s.length));
  if (T === 0) throw new RangeError('padSequences: empty sequence');
  const ids = new BigInt64Array(n * T).fill(BigInt(padId));
  const mask = new BigInt64Array(n * T);
  const readout = new BigInt64Array(n);
  sequences.forEach((seq, row) => {
    if (seq.length === 0) throw new RangeError(`padSequences: sequence ${row} is empty`);
    const offset = side === 'right' ? 0 : T - seq.length;
    for (let t = 0; t < seq.length; t++) {
      ids[row * T + offset + t] = BigInt(seq[t]!);
      mask[row * T + offset + t] = 1n;
    }
    readout[row] = BigInt(offset + seq.length - 1);
  });
  return {
    ids: tensor(ids, { shape: [n, T] }),
    attentionMask: tensor(mask, { shape: [n, T] }),
    readout: tensor(readout, { shape: [n] }),
  };
}

/**
 * One training batch of B comparisons as 2B rows: chosen transcripts in rows 0…B−1, rejected in rows
 * B…2B−1, so `scores.narrow(0, 0, B)` and `scores.narrow(0, B, B)` are the pair's two scores.
 *
 * @example const batch = comparisonBatch(items, tok.padId); // ids: (2B, T)
 */
export function comparisonBatch(items: readonly EncodedComparison[], padId: number): SequenceBatch {
  return padSequences([...items.map((c) => c.chosen), ...items.map((c) => c.rejected)], padId);
}
