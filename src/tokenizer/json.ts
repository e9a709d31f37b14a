/**
 * tokenizer.json documents (Hugging Face's format) that hhkit writes or derives: the file of a trained
 * byte-level BPE, and the edited copies behind `withSpecialTokens` and `allowSpecial: false`.
 */
import { SPECIAL_TOKENS } from './special.ts';
import type { LearnedBpe } from './train.ts';

export type JSONObject = Record<string, unknown>;

/** Whether a parsed JSON value is an object (not null, not an array). */
export const isObject = (value: unknown): value is JSONObject =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** An added_tokens entry, matched literally (no normalization, no stripping). */
export function addedToken(id: number, content: string, special: boolean): JSONObject {
  return { id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special };
}

function addedTokensOf(tokenizerJSON: JSONObject): unknown[] {
  const added = tokenizerJSON['added_tokens'];
  return Array.isArray(added) ? added : [];
}

/**
 * tokenizer.json for a byte-level BPE in the layout of GPT-2's: ByteLevel pre-tokenizer with GPT-2's
 * regex and no prefix space, BPE model, ByteLevel decoder. `added` get the ids after the BPE tokens.
 *
 * @example byteLevelBpeJSON(learnMerges(counts, { modelVocabSize: 1000, minFrequency: 2 }), ['<|endoftext|>'])
 */
export function byteLevelBpeJSON(bpe: LearnedBpe, added: readonly string[]): string {
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  const slot = 'HHKIT_VOCAB_SLOT';
  const json = JSON.stringify({
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added.map((content, i) =>
      addedToken(bpe.tokens.length + i, content, SPECIAL_TOKENS.includes(content)),
    ),
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: { ...byteLevel, trim_offsets: false },
    decoder: byteLevel,
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: slot,
      merges: bpe.merges,
    },
  });
  // Added tokens are in the model vocab too (as in GPT-2's file and Hugging Face's trainer output), so
  // their ids are pinned even where added_tokens is edited. Written by hand so keys stay in id order: a
  // JS object would move integer-like keys ("10") first. `model` is the last key, so the first match
  // is the slot and not a merge that happens to spell it.
  const entries = [...bpe.tokens, ...added].map((token, id) => `${JSON.stringify(token)}:${id}`);
  return json.replace(`"vocab":"${slot}"`, () => `"vocab":{${entries.join(',')}}`);
}

/**
 * The same tokenizer with `missing` appended as special added tokens from id `firstId` on.
 *
 * @example withAddedSpecialTokens(gpt2JSON, ['<|endofcontext|>'], 50257)
 */
export function withAddedSpecialTokens(
  tokenizerJSON: JSONObject,
  missing: readonly string[],
  firstId: number,
): string {
  const added = [
    ...addedTokensOf(tokenizerJSON),
    ...missing.map((content, i) => addedToken(firstId + i, content, true)),
  ];
  return JSON.stringify({ ...tokenizerJSON, added_tokens: added });
}

/**
 * The same tokenizer, except that special-token strings in text are not matched (they encode as plain
 * characters). Turn markers and other non-special added tokens are still matched: they are ordinary text
 * that happens to be one token.
 *
 * @example NativeTokenizer.fromString(withoutSpecialMatching(JSON.parse(json)))
 */
export function withoutSpecialMatching(tokenizerJSON: JSONObject): string {
  const added = addedTokensOf(tokenizerJSON);
  const model = isObject(tokenizerJSON['model']) ? tokenizerJSON['model'] : {};
  const vocab = { ...(isObject(model['vocab']) ? model['vocab'] : {}) };
  // Dropping a special token from added_tokens would renumber the added tokens after it (Hugging Face
  // assigns their ids in order), so its id is kept as a plain model-vocab entry, which BPE never produces.
  for (const token of added) {
    if (isObject(token) && token['special'] === true) vocab[String(token['content'])] = token['id'];
  }
  return JSON.stringify({
    ...tokenizerJSON,
    added_tokens: added.filter((token) => isObject(token) && token['special'] !== true),
    model: { ...model, vocab },
  });
}
