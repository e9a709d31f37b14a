/**
 * hhkit's tokenizer: a byte-level BPE (GPT-2's scheme) held by Hugging Face's native `tokenizers`
 * library, which does all encoding and decoding; hhkit adds training with its special tokens
 * (see ./train.ts for why training is not native), tokenizer.json load/atomic save, and the ids of the
 * special tokens the pipeline needs (EOS, end-of-context for preference-model scores, padding).
 */
import { readFileSync } from 'node:fs';
import { Tokenizer as NativeTokenizer } from 'tokenizers';
import { writeFileAtomicSync } from '../util/atomic.ts';
import { canChunk, safeChunks } from './chunks.ts';
import {
  byteLevelBpeJSON,
  isObject,
  type JSONObject,
  withAddedSpecialTokens,
  withoutSpecialMatching,
} from './json.ts';
import {
  ASSISTANT_TURN,
  END_OF_CONTEXT,
  END_OF_TEXT,
  HUMAN_TURN,
  PAD,
  SPECIAL_TOKENS,
  TURN_MARKERS,
} from './special.ts';
import { learnMerges, WordCounter } from './train.ts';

/**
 * Long texts are encoded in pieces of about this many characters: the native library is ~2× faster per
 * byte on pieces of 1k–10k characters than on one long string, and a batch of pieces uses every core.
 */
const ENCODE_CHUNK_CHARS = 8192;

/** A tokenizer.json that cannot be used, or a token the tokenizer lacks; the message says which. */
export class TokenizerError extends Error {
  override name = 'TokenizerError';
}

/** Texts in memory, or UTF-8 files each read whole (each file is one text). */
export type TrainingCorpus = Iterable<string> | { files: readonly string[] };

/** Options of {@link Tokenizer.train}. */
export interface TrainTokenizerOptions {
  /**
   * Total vocabulary, counting the 256 byte tokens, the merges, the 3 special tokens and (if on) the 2
   * turn markers. An upper bound: training stops early once no pair is seen `minFrequency` times.
   */
  vocabSize: number;
  /** Pairs seen fewer times are never merged. Default 2 (a merge seen once only memorises). */
  minFrequency?: number;
  /** Make "\n\nHuman:" and "\n\nAssistant:" single tokens (see ./special.ts). Default true. */
  turnMarkers?: boolean;
  /** Called during merging with (tokens learned, tokens wanted). */
  onProgress?: (done: number, wanted: number) => void;
}

/** Options of {@link Tokenizer.encode}. */
export interface EncodeOptions {
  /**
   * Whether special-token strings in the text (e.g. "<|endoftext|>") become their special ids. Default
   * true, as in Hugging Face, so a corpus can mark document ends in text. Pass false for untrusted text
   * (worker or model output), where they are encoded as ordinary characters.
   */
  allowSpecial?: boolean;
}

/** Options of {@link Tokenizer.decode}. */
export interface DecodeOptions {
  /** Drop special tokens (EOS, end-of-context, padding) from the text. Default false. */
  skipSpecialTokens?: boolean;
}

/** Byte-level BPE tokenizer over Hugging Face `tokenizers`; encode/decode are async (they run natively). */
export class Tokenizer {
  /** One past the largest id: the embedding matrix needs this many rows. */
  readonly vocabSize: number;
  private readonly specialIds = new Map<string, number>();
  private ordinaryNative: NativeTokenizer | undefined;
  /** Whether long texts may be encoded in pieces (exact only for GPT-2-style pipelines). */
  private readonly chunkable: boolean;

  private constructor(
    private readonly native: NativeTokenizer,
    private readonly json: string,
    private readonly parsed: JSONObject,
  ) {
    let maxId = -1;
    for (const id of Object.values(native.getVocab(true))) maxId = Math.max(maxId, id);
    this.vocabSize = maxId + 1;
    this.chunkable = canChunk(parsed);
    for (const token of [...SPECIAL_TOKENS, ...TURN_MARKERS]) {
      const id = native.tokenToId(token);
      if (id !== null) this.specialIds.set(token, id);
    }
  }

  /**
   * Trains a byte-level BPE with hhkit's special tokens. Deterministic: the same corpus and options give
   * the same tokenizer.json. Ids: 0–255 the bytes in GPT-2's order, then merges, then END_OF_TEXT,
   * END_OF_CONTEXT, PAD, then the turn markers.
   *
   * @example
   * const tok = Tokenizer.train(Array(10).fill('\n\nHuman: hi\n\nAssistant: hello'), { vocabSize: 300 });
   * await tok.encode('\n\nHuman: hi'); // [tok.tokenToId('\n\nHuman:'), tok.tokenToId('Ġhi')]
   */
  static train(corpus: TrainingCorpus, options: TrainTokenizerOptions): Tokenizer {
    const added = [...SPECIAL_TOKENS, ...((options.turnMarkers ?? true) ? TURN_MARKERS : [])];
    const counter = new WordCounter(added);
    if (isFileCorpus(corpus)) {
      for (const file of corpus.files) counter.add(readFileSync(file, 'utf8'));
    } else {
      for (const text of corpus) counter.add(text);
    }
    const bpe = learnMerges(counter.counts, {
      modelVocabSize: options.vocabSize - added.length,
      minFrequency: options.minFrequency ?? 2,
      onProgress: options.onProgress,
    });
    return Tokenizer.fromJSON(byteLevelBpeJSON(bpe, added), 'trained tokenizer');
  }

  /**
   * Loads a tokenizer.json (Hugging Face format), e.g. one trained by hhkit or GPT-2's.
   *
   * @example const tok = Tokenizer.fromFile('checkpoints/lm/tokenizer.json');
   */
  static fromFile(path: string): Tokenizer {
    return Tokenizer.fromJSON(readFileSync(path, 'utf8'), path);
  }

  /**
   * Parses tokenizer.json text. `source` names it in error messages.
   *
   * @example const tok = Tokenizer.fromJSON(Tokenizer.train(['a b'], { vocabSize: 300 }).toJSONString());
   */
  static fromJSON(json: string, source = 'tokenizer.json'): Tokenizer {
    let parsed: unknown;
    try {
      parsed = JSON.parse(json);
    } catch (error) {
      throw new TokenizerError(`${source}: not valid JSON (${(error as Error).message})`);
    }
    const model = isObject(parsed) ? parsed['model'] : undefined;
    if (!isObject(parsed) || !isObject(model) || model['type'] !== 'BPE') {
      const got = isObject(model) ? JSON.stringify(model['type']) : 'no "model" object';
      throw new TokenizerError(`${source}: expected a BPE tokenizer.json (model.type "BPE"), got ${got}`);
    }
    let native: NativeTokenizer;
    try {
      native = NativeTokenizer.fromString(json);
    } catch (error) {
      throw new TokenizerError(`${source}: Hugging Face tokenizers rejected it: ${(error as Error).message}`);
    }
    return new Tokenizer(native, json, parsed);
  }

  /** The tokenizer.json text (exactly what {@link save} writes). */
  toJSONString(): string {
    return this.json;
  }

  /**
   * Writes tokenizer.json atomically (temp file + rename), so a crash never leaves half a file.
   *
   * @example tok.save('checkpoints/lm/tokenizer.json');
   */
  save(path: string): void {
    writeFileAtomicSync(path, this.json);
  }

  /**
   * Text → token ids.
   *
   * @example await tok.encode('Hello world'); // GPT-2: [15496, 995]
   */
  async encode(text: string, options: EncodeOptions = {}): Promise<number[]> {
    return (await this.encodePieces([text], options))[0]!;
  }

  /**
   * Many texts → ids, encoded in parallel on the native side (much faster than one by one).
   *
   * @example await tok.encodeBatch(['Hello', ' world']); // GPT-2: [[15496], [995]]
   */
  async encodeBatch(texts: readonly string[], options: EncodeOptions = {}): Promise<number[][]> {
    if (texts.length === 0) return [];
    return this.encodePieces(texts, options);
  }

  /**
   * Token ids → text. Throws RangeError on an id outside the vocabulary (the native library would
   * silently drop it).
   *
   * @example await tok.decode([15496, 995]); // GPT-2: 'Hello world'
   */
  async decode(ids: readonly number[], options: DecodeOptions = {}): Promise<string> {
    this.checkIds(ids, '');
    return this.native.decode([...ids], options.skipSpecialTokens ?? false);
  }

  /**
   * Many id sequences → texts.
   *
   * @example await tok.decodeBatch([[15496], [995]]); // GPT-2: ['Hello', ' world']
   */
  async decodeBatch(batch: readonly (readonly number[])[], options: DecodeOptions = {}): Promise<string[]> {
    if (batch.length === 0) return [];
    batch.forEach((ids, row) => {
      this.checkIds(ids, `row ${row}, `);
    });
    return this.native.decodeBatch(
      batch.map((ids) => [...ids]),
      options.skipSpecialTokens ?? false,
    );
  }

  /**
   * A token's id, or undefined. Byte-level spelling: a leading space is "Ġ", a newline "Ċ".
   *
   * @example tok.tokenToId('Ġworld'); // GPT-2: 995
   */
  tokenToId(token: string): number | undefined {
    return this.native.tokenToId(token) ?? undefined;
  }

  /**
   * An id's token string (byte-level spelling), or undefined.
   *
   * @example tok.idToToken(995); // GPT-2: 'Ġworld'
   */
  idToToken(id: number): string | undefined {
    return this.native.idToToken(id) ?? undefined;
  }

  /** Id of "<|endoftext|>", the end-of-text / EOS token. */
  get eosId(): number {
    return this.requireId(END_OF_TEXT);
  }

  /** Id of "<|endofcontext|>", appended to a transcript; the preference model's score is read there. */
  get endOfContextId(): number {
    return this.requireId(END_OF_CONTEXT);
  }

  /**
   * Id used to pad batches: "<|pad|>" if present, else EOS (GPT-2 has no pad token; padded positions are
   * masked, so which id fills them does not matter).
   */
  get padId(): number {
    return this.specialIds.get(PAD) ?? this.eosId;
  }

  /** Id of the "\n\nHuman:" marker if it is a single token (hhkit-trained), else undefined. */
  get humanTurnId(): number | undefined {
    return this.specialIds.get(HUMAN_TURN);
  }

  /** Id of the "\n\nAssistant:" marker if it is a single token (hhkit-trained), else undefined. */
  get assistantTurnId(): number | undefined {
    return this.specialIds.get(ASSISTANT_TURN);
  }

  /**
   * This tokenizer plus whichever of hhkit's special tokens it lacks, appended at the end of the
   * vocabulary (e.g. GPT-2 gains "<|endofcontext|>" as 50257 and "<|pad|>" as 50258). A model using it
   * needs its embeddings resized to the new vocabSize.
   *
   * @example const pmTok = gpt2.withSpecialTokens(); pmTok.endOfContextId; // 50257
   */
  withSpecialTokens(): Tokenizer {
    const missing = SPECIAL_TOKENS.filter((token) => !this.specialIds.has(token));
    if (missing.length === 0) return this;
    const extended = withAddedSpecialTokens(this.parsed, missing, this.vocabSize);
    return Tokenizer.fromJSON(extended, 'tokenizer with hhkit special tokens');
  }

  private requireId(token: string): number {
    const id = this.specialIds.get(token);
    if (id === undefined) {
      throw new TokenizerError(
        `this tokenizer has no ${JSON.stringify(token)} token; use tokenizer.withSpecialTokens() ` +
          '(and resize the model embeddings to its vocabSize)',
      );
    }
    return id;
  }

  private checkIds(ids: readonly number[], where: string): void {
    ids.forEach((id, i) => {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw new RangeError(`${where}position ${i}: token id ${id} is not in [0, ${this.vocabSize})`);
      }
    });
  }

  /** The native tokenizer to encode with: with allowSpecial false, one that does not match special tokens. */
  private nativeFor(options: EncodeOptions): NativeTokenizer {
    if (options.allowSpecial ?? true) return this.native;
    this.ordinaryNative ??= NativeTokenizer.fromString(withoutSpecialMatching(this.parsed));
    return this.ordinaryNative;
  }

  /** Encodes texts as one native batch of pieces (see ./chunks.ts), then joins each text's pieces. */
  private async encodePieces(texts: readonly string[], options: EncodeOptions): Promise<number[][]> {
    const pieces: string[] = [];
    const owners: number[] = [];
    texts.forEach((text, owner) => {
      for (const piece of this.chunkable ? safeChunks(text, ENCODE_CHUNK_CHARS) : [text]) {
        pieces.push(piece);
        owners.push(owner);
      }
    });
    const native = this.nativeFor(options);
    if (pieces.length === 1)
      return [(await native.encode(pieces[0]!, null, { addSpecialTokens: false })).getIds()];
    const encodings = await native.encodeBatch(pieces, { addSpecialTokens: false });
    const ids = texts.map((): number[] => []);
    encodings.forEach((encoding, piece) => {
      const row = ids[owners[piece]!]!;
      for (const id of encoding.getIds()) row.push(id);
    });
    return ids;
  }
}

function isFileCorpus(corpus: TrainingCorpus): corpus is { files: readonly string[] } {
  return !(Symbol.iterator in corpus) && 'files' in corpus;
}
