/**
 * Byte-level BPE training (Sennrich et al. 2016, as in GPT-2 and Hugging Face's BpeTrainer).
 *
 * Why here and not in `tokenizers`: the Node binding (0.23) exposes no trainer options. Its
 * `Tokenizer.train(files)` always uses `BpeTrainer::default()`: 30 000 tokens, no special tokens, an
 * alphabet of only the characters seen (so bytes absent from the corpus could not be encoded), file
 * input split into lines (so "\n\n" is never seen as one word), and progress bars on stderr. Training
 * is the cold path, so we learn the merges here and hand the result to the native library, which does
 * all encoding and decoding. Pre-tokenization still uses the native ByteLevel pre-tokenizer, so
 * training and encoding split text identically.
 */
import { byteLevelPreTokenizer } from 'tokenizers';
import { BYTE_TO_UNICODE, GPT2_BYTE_ORDER } from './bytes.ts';
import { safeChunks } from './chunks.ts';

/** Options of {@link learnMerges}. */
export interface LearnMergesOptions {
  /** Size of the BPE model's vocabulary: 256 byte tokens plus the merges. At least 256. */
  modelVocabSize: number;
  /** A pair seen fewer times than this is never merged, so training may stop below the target. */
  minFrequency: number;
  /** Called every 1000 merges and at the end with (tokens learned, tokens wanted). */
  onProgress?: (done: number, wanted: number) => void;
}

/** A learned byte-level BPE: token strings by id (bytes first, in GPT-2's order) and merges in order. */
export interface LearnedBpe {
  tokens: string[];
  merges: [string, string][];
}

/** Texts longer than this are pre-tokenized in pieces to bound the native call's transient memory. */
const CHUNK_CHARS = 1 << 20;

/**
 * Counts pre-tokenized words (byte-level strings, e.g. "Ġhello") over a corpus, cutting out added tokens
 * first so that, as at encode time, no word spans a special token or turn marker.
 *
 * @example
 * const counter = new WordCounter(['<|endoftext|>']);
 * counter.add('hi hi<|endoftext|>');
 * counter.counts; // Map { 'hi' => 1, 'Ġhi' => 1 }
 */
export class WordCounter {
  readonly counts = new Map<string, number>();
  private readonly preTokenizer = byteLevelPreTokenizer(false, true);
  private readonly addedTokenPattern: RegExp | undefined;

  constructor(addedTokens: readonly string[]) {
    // Longest first, so the alternation is leftmost-longest like the native added-token matcher.
    const escaped = [...addedTokens]
      .sort((a, b) => b.length - a.length)
      .map((token) => token.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
    this.addedTokenPattern = escaped.length > 0 ? new RegExp(escaped.join('|'), 'u') : undefined;
  }

  /** Adds every word of `text` to the counts. */
  add(text: string): void {
    const segments = this.addedTokenPattern ? text.split(this.addedTokenPattern) : [text];
    for (const segment of segments) {
      for (const chunk of safeChunks(segment, CHUNK_CHARS)) {
        for (const [word] of this.preTokenizer.preTokenizeString(chunk)) {
          this.counts.set(word, (this.counts.get(word) ?? 0) + 1);
        }
      }
    }
  }
}

/** Pair (left id, right id) as one number; ids stay below 2^21, so the key is exact in a double. */
const PAIR_SHIFT = 2 ** 21;
const pairKey = (left: number, right: number): number => left * PAIR_SHIFT + right;
const heapEntry = (key: number, count: number): HeapEntry => ({
  count,
  left: Math.floor(key / PAIR_SHIFT),
  right: key % PAIR_SHIFT,
});

interface HeapEntry {
  count: number;
  left: number;
  right: number;
}

/** Highest count first; ties go to the smaller (left, right) ids, so training is deterministic. */
function before(a: HeapEntry, b: HeapEntry): boolean {
  if (a.count !== b.count) return a.count > b.count;
  return a.left !== b.left ? a.left < b.left : a.right < b.right;
}

class PairHeap {
  private readonly items: HeapEntry[] = [];

  push(entry: HeapEntry): void {
    const items = this.items;
    items.push(entry);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(items[i]!, items[parent]!)) break;
      [items[i], items[parent]] = [items[parent]!, items[i]!];
      i = parent;
    }
  }

  pop(): HeapEntry | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (items.length === 0 || last === undefined) return top;
    items[0] = last;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let best = i;
      if (left < items.length && before(items[left]!, items[best]!)) best = left;
      if (right < items.length && before(items[right]!, items[best]!)) best = right;
      if (best === i) break;
      [items[i], items[best]] = [items[best]!, items[i]!];
      i = best;
    }
    return top;
  }
}

/** Replaces each non-overlapping (left, right), scanning left to right, by `merged`. */
function mergeSymbols(symbols: readonly number[], left: number, right: number, merged: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < symbols.length; i++) {
    if (symbols[i] === left && symbols[i + 1] === right) {
      out.push(merged);
      i++;
    } else {
      out.push(symbols[i]!);
    }
  }
  return out;
}

/**
 * Learns BPE merges from word counts: repeatedly merge the most frequent adjacent pair of symbols.
 * Counts are updated incrementally (only words containing the merged pair are touched), with a lazy
 * max-heap: a stale entry is re-pushed with its current count when popped.
 *
 * @example
 * const bpe = learnMerges(new Map([['Ġlow', 5], ['Ġlower', 2]]), { modelVocabSize: 259, minFrequency: 2 });
 * bpe.merges; // [['l', 'o'], ['Ġ', 'lo'], ['Ġlo', 'w']]
 */
export function learnMerges(
  wordCounts: ReadonlyMap<string, number>,
  options: LearnMergesOptions,
): LearnedBpe {
  const tokens = GPT2_BYTE_ORDER.map((byte) => BYTE_TO_UNICODE[byte]!);
  if (options.modelVocabSize < tokens.length) {
    throw new RangeError(
      `modelVocabSize must be at least ${tokens.length} (one token per byte), got ${options.modelVocabSize}`,
    );
  }
  const byteTokens = tokens.length;
  const byteIdOf = new Map(tokens.map((token, id) => [token, id]));
  const words: number[][] = [];
  const counts: number[] = [];
  for (const [word, count] of wordCounts) {
    words.push(
      [...word].map(
        (ch) => byteIdOf.get(ch) ?? fail(`"${ch}" in word "${word}" is not a byte-level character`),
      ),
    );
    counts.push(count);
  }

  const pairCounts = new Map<number, number>();
  const pairWords = new Map<number, Set<number>>();
  // Adds `sign` × the word's count for each of its adjacent pairs; returns keys of pairs involving `watch`.
  const tally = (w: number, sign: 1 | -1, watch = -1, touched?: Set<number>): void => {
    const symbols = words[w]!;
    const delta = sign * counts[w]!;
    for (let i = 0; i + 1 < symbols.length; i++) {
      const left = symbols[i]!;
      const right = symbols[i + 1]!;
      const key = pairKey(left, right);
      pairCounts.set(key, (pairCounts.get(key) ?? 0) + delta);
      if (sign > 0) {
        const where = pairWords.get(key);
        if (where) where.add(w);
        else pairWords.set(key, new Set([w]));
        if (touched && (left === watch || right === watch)) touched.add(key);
      }
    }
  };
  for (let w = 0; w < words.length; w++) tally(w, 1);
  const heap = new PairHeap();
  for (const [key, count] of pairCounts) heap.push(heapEntry(key, count));

  const merges: [string, string][] = [];
  const idOfToken = new Map(tokens.map((token, id) => [token, id]));
  const wanted = options.modelVocabSize - byteTokens;
  while (tokens.length < options.modelVocabSize) {
    const top = heap.pop();
    if (!top) break;
    const key = pairKey(top.left, top.right);
    const current = pairCounts.get(key) ?? 0;
    if (current !== top.count) {
      if (current > 0) heap.push({ ...top, count: current });
      continue;
    }
    if (current < options.minFrequency) break;

    // Two different pairs can spell the same string ("a"+"bc", "ab"+"c"): like Hugging Face's trainer,
    // record both merges but keep one id, so the vocabulary has no duplicate keys.
    const spelling = tokens[top.left]! + tokens[top.right]!;
    let merged = idOfToken.get(spelling);
    if (merged === undefined) {
      merged = tokens.length;
      tokens.push(spelling);
      idOfToken.set(spelling, merged);
    }
    merges.push([tokens[top.left]!, tokens[top.right]!]);
    // Only pairs containing the new token can have grown; every other pair count can only shrink.
    const grown = new Set<number>();
    for (const w of pairWords.get(key) ?? []) {
      const next = mergeSymbols(words[w]!, top.left, top.right, merged);
      if (next.length === words[w]!.length) continue; // stale membership: the pair left this word earlier
      tally(w, -1);
      words[w] = next;
      tally(w, 1, merged, grown);
    }
    pairWords.delete(key);
    for (const grownKey of grown) {
      const count = pairCounts.get(grownKey)!;
      if (count > 0) heap.push(heapEntry(grownKey, count));
    }
    if (merges.length % 1000 === 0) options.onProgress?.(tokens.length - byteTokens, wanted);
  }
  options.onProgress?.(tokens.length - byteTokens, wanted);
  return { tokens, merges };
}

function fail(message: string): never {
  throw new Error(message);
}
