/**
 * hhkit's tokenizer: a byte-level BPE (GPT-2's scheme) held by Hugging Face's native `tokenizers`
 * library, which does all encoding and decoding; hhkit adds training with its special tokens
 * (see ./train.ts for why training is not native), tokenizer.json load/atomic save, and the ids of the
 * special tokens the pipeline needs (EOS, end-of-context for preference-model scores, padding).
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Tokenizer as NativeTokenizer } from 'tokenizers';
import { writeFileAtomicSync } from '../util/atomic.ts';
import { TOKENIZER_CONFIG_FILE } from '../util/hf-files.ts';
import { tokenStringToBytes } from './bytes.ts';
import { canChunk, safeChunks } from './chunks.ts';
import { readCompanions, type TokenizerCompanions, USE_CHAT_TEMPLATE_KEY } from './companions.ts';
import { TokenizerError } from './errors.ts';
import {
  type DialogueFormat,
  formatOfChatTemplate,
  HH_FORMAT,
  type Segment,
  type SegmentRole,
} from './format.ts';
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

export { TokenizerError };

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

/** What a sampler needs to end a reply (spread into nn's GenerateOptions). */
export interface GenerationStops {
  /** Ids that end a reply: every eos id, a single-token "\n\nHuman:", the format's stop tokens. */
  stopIds: number[];
  /** Text that ends a reply wherever the model writes it (a multi-token "\n\nHuman:"). */
  stopStrings: string[];
  /** Each id's text, for matching stopStrings. */
  tokenText: (id: number) => string;
}

/** Byte-level BPE tokenizer over Hugging Face `tokenizers`; encode/decode are async (they run natively). */
export class Tokenizer {
  /** One past the largest id: the embedding matrix needs this many rows. */
  readonly vocabSize: number;
  private readonly specialIds = new Map<string, number>();
  private ordinaryNative: NativeTokenizer | undefined;
  /** Whether long texts may be encoded in pieces (exact only for GPT-2-style pipelines). */
  private readonly chunkable: boolean;
  private tokenTexts: (string | undefined)[] | undefined;

  private constructor(
    private readonly native: NativeTokenizer,
    private readonly json: string,
    private readonly parsed: JSONObject,
    /** Where the tokenizer came from, for messages (its tokenizer.json path). */
    readonly source: string,
    /** tokenizer_config.json / generation_config.json read beside tokenizer.json (empty when none). */
    readonly companions: TokenizerCompanions = { files: {} },
    /** How dialogues are written for the model: HH text, or the folder's chat template (withChatTemplate). */
    readonly format: DialogueFormat = HH_FORMAT,
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
   * Loads a tokenizer.json (Hugging Face format), e.g. one trained by hhkit or GPT-2's, with the
   * tokenizer_config.json and generation_config.json beside it when present (eos, pad, stop ids, chat
   * template: see ./companions.ts).
   *
   * @example const tok = Tokenizer.fromFile('checkpoints/lm/tokenizer.json');
   */
  static fromFile(path: string): Tokenizer {
    const base = Tokenizer.fromJSON(readFileSync(path, 'utf8'), path);
    const companions = readCompanions(dirname(path));
    if (Object.keys(companions.files).length === 0) return base;
    const tok = new Tokenizer(base.native, base.json, base.parsed, path, companions);
    return companions.useChatTemplate ? tok.withChatTemplate() : tok;
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
    return new Tokenizer(native, json, parsed, source);
  }

  /** The tokenizer.json text (exactly what {@link save} writes). */
  toJSONString(): string {
    return this.json;
  }

  /**
   * Writes tokenizer.json atomically (temp file + rename), so a crash never leaves half a file, and the
   * companion files it was loaded with (tokenizer_config.json, …) beside it, as they were.
   *
   * @example tok.save('checkpoints/lm/tokenizer.json');
   */
  save(path: string): void {
    writeFileAtomicSync(path, this.json);
    for (const [name, text] of Object.entries(this.companions.files)) {
      let out = text;
      // A chat-template tokenizer marks its copy, so every later stage loading it renders the same way.
      if (name === TOKENIZER_CONFIG_FILE && this.format !== HH_FORMAT && !this.companions.useChatTemplate)
        out = `${JSON.stringify({ ...(JSON.parse(text) as object), [USE_CHAT_TEMPLATE_KEY]: true }, null, 2)}\n`;
      writeFileAtomicSync(join(dirname(path), name), out);
    }
  }

  /**
   * The same tokenizer writing dialogues in the folder's chat template (tokenizer_config.json
   * `chat_template`; ChatML only, see ./format.ts): encode/encodeBatch render HH transcripts through it,
   * replies stop at its end-of-turn token. `save` marks the copy it writes (tokenizer_config.json
   * "hhkit_use_chat_template": true), and fromFile applies the template to a marked folder, so the
   * checkpoints of a stage run with --chat-template carry the choice to the next stages. Throws a TokenizerError naming the file when there is no
   * template or it is not ChatML.
   *
   * @example const chat = Tokenizer.fromFile('Qwen2.5-0.5B-Instruct/tokenizer.json').withChatTemplate();
   */
  withChatTemplate(): Tokenizer {
    const template = this.companions.chatTemplate;
    if (!template) {
      const config = this.companions.eosToken?.file ?? join(dirname(this.source), 'tokenizer_config.json');
      const has = 'tokenizer_config.json' in this.companions.files;
      throw new TokenizerError(
        `${config}: ${has ? 'has no "chat_template"' : 'not found'}; --chat-template needs the folder's chat ` +
          `template beside ${this.source}`,
      );
    }
    const format = formatOfChatTemplate(template.template, template.file);
    for (const token of format.stopTokens) this.requireToken(token, `its chat template (${template.file})`);
    return new Tokenizer(this.native, this.json, this.parsed, this.source, this.companions, format);
  }

  /**
   * Text → token ids.
   *
   * @example await tok.encode('Hello world'); // GPT-2: [15496, 995]
   */
  async encode(text: string, options: EncodeOptions = {}): Promise<number[]> {
    return (await this.encodeBatch([text], options))[0]!;
  }

  /**
   * Many texts → ids, encoded in parallel on the native side (much faster than one by one).
   *
   * @example await tok.encodeBatch(['Hello', ' world']); // GPT-2: [[15496], [995]]
   */
  async encodeBatch(texts: readonly string[], options: EncodeOptions = {}): Promise<number[][]> {
    if (texts.length === 0) return [];
    if (this.format === HH_FORMAT) return this.encodePieces(texts, options);
    return (await this.encodeDialogues(texts, options)).map((d) => d.ids);
  }

  /**
   * HH transcripts → ids in this tokenizer's format, each segment (turn marker or template markup, turn
   * text) encoded on its own, so a reply always starts at a token boundary, with each token's role
   * (context, reply, reply-end: see ./format.ts). Markup matches special tokens; turn texts follow
   * `allowSpecial`. What SFT's loss mask is built from. (encode/encodeBatch in HH format encode the
   * text whole; with single-token turn markers that gives the same ids.)
   *
   * @example (await tok.encodeDialogues(['\n\nHuman: hi\n\nAssistant: hello']))[0].roles // [..., 'reply']
   */
  async encodeDialogues(
    texts: readonly string[],
    options: EncodeOptions = {},
  ): Promise<{ ids: number[]; roles: SegmentRole[] }[]> {
    return (await this.encodeSegments(texts, options)).map(({ ids, roles }) => ({ ids, roles }));
  }

  /**
   * Transcripts → ids exactly as encodeBatch gives them, each with how many of its leading ids are the
   * system turn the format writes (a chat template's system message, its default one when the transcript
   * brings none; 0 in HH text, which has no system turn). Context distillation puts the HHH prompt in that
   * turn's place, so the teacher's context holds one system turn, not two. `continues`: more turns follow
   * each text in the model's context (see DialogueFormat.segments).
   *
   * @example (await chat.encodeWithSystemTurn(['\n\nHuman: hi\n\nAssistant:']))[0].systemTokens // Qwen2.5's default system turn
   */
  async encodeWithSystemTurn(
    texts: readonly string[],
    options: EncodeOptions & { continues?: boolean } = {},
  ): Promise<{ ids: number[]; systemTokens: number }[]> {
    const { continues, ...encode } = options;
    if (this.format === HH_FORMAT)
      return (await this.encodeBatch(texts, encode)).map((ids) => ({ ids, systemTokens: 0 }));
    return (await this.encodeSegments(texts, encode, { continues })).map(({ ids, systemTokens }) => ({
      ids,
      systemTokens,
    }));
  }

  // Each transcript's segments in this format, encoded one by one: ids, each id's role, and how many
  // leading ids are the format's system turn.
  private async encodeSegments(
    texts: readonly string[],
    options: EncodeOptions,
    layout: { continues?: boolean } = {},
  ): Promise<{ ids: number[]; roles: SegmentRole[]; systemTokens: number }[]> {
    const segments: Segment[][] = texts.map((text) => this.format.segments(text, layout));
    const flat = segments.flat();
    const markup = flat.filter((s) => s.markup).map((s) => s.text);
    const plain = flat.filter((s) => !s.markup).map((s) => s.text);
    const markupIds = markup.length ? await this.encodePieces(markup, { allowSpecial: true }) : [];
    const plainIds = plain.length ? await this.encodePieces(plain, options) : [];
    let m = 0;
    let p = 0;
    return segments.map((list) => {
      const ids: number[] = [];
      const roles: SegmentRole[] = [];
      let systemTokens = 0;
      for (const segment of list) {
        const part = segment.markup ? markupIds[m++]! : plainIds[p++]!;
        if (segment.system) systemTokens += part.length;
        for (const id of part) {
          ids.push(id);
          roles.push(segment.role);
        }
      }
      return { ids, roles, systemTokens };
    });
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

  /**
   * The end-of-text / EOS id: tokenizer_config.json's `eos_token`, else generation_config.json's (first)
   * `eos_token_id`, else "<|endoftext|>" (hhkit's and GPT-2's). A TokenizerError names the files when
   * none gives one.
   */
  get eosId(): number {
    const { eosToken, eosTokenIds } = this.companions;
    if (eosToken) return this.requireToken(eosToken.token, `eos_token of ${eosToken.file}`);
    if (eosTokenIds) return this.checkedId(eosTokenIds.ids[0]!, `eos_token_id of ${eosTokenIds.file}`);
    const id = this.specialIds.get(END_OF_TEXT);
    if (id !== undefined) return id;
    throw new TokenizerError(
      `${this.source}: no end-of-text token: no "${END_OF_TEXT}" in it, and no tokenizer_config.json "eos_token" ` +
        'or generation_config.json "eos_token_id" beside it (add one, or use tokenizer.withSpecialTokens())',
    );
  }

  /**
   * Id of "<|endofcontext|>", appended to a transcript; the preference model's score is read there. A
   * tokenizer without it (a user's model) uses its EOS, as reward models in transformers/TRL read the
   * score at the last token of an EOS-terminated text.
   */
  get endOfContextId(): number {
    return this.specialIds.get(END_OF_CONTEXT) ?? this.eosId;
  }

  /**
   * Id used to pad batches: "<|pad|>" if present, else tokenizer_config.json's `pad_token`, else
   * generation_config.json's `pad_token_id`, else EOS (as transformers does for GPT-2, Llama and SmolLM,
   * which have no pad token; padded positions are masked, so which id fills them does not matter).
   */
  get padId(): number {
    const own = this.specialIds.get(PAD);
    if (own !== undefined) return own;
    const { padToken, padTokenId } = this.companions;
    if (padToken) return this.requireToken(padToken.token, `pad_token of ${padToken.file}`);
    if (padTokenId) return this.checkedId(padTokenId.id, `pad_token_id of ${padTokenId.file}`);
    return this.eosId;
  }

  /**
   * What ends an Assistant reply when sampling, for this tokenizer's format: EOS and every
   * generation_config.json eos_token_id; in HH text the next "\n\nHuman:" (one id when the tokenizer
   * holds it as a token, else a stop string); in ChatML "<|im_end|>".
   *
   * @example generate(model, prompts, { maxNewTokens: 32, padId: tok.padId, ...tok.generationStops() })
   */
  generationStops(): GenerationStops {
    const ids = [this.eosId, ...(this.companions.eosTokenIds?.ids ?? [])];
    const strings: string[] = [];
    for (const text of this.format.stopStrings) {
      const single = text === HUMAN_TURN ? this.humanTurnId : undefined;
      if (single === undefined) strings.push(text);
      else ids.push(single);
    }
    for (const token of this.format.stopTokens) ids.push(this.requireToken(token, 'the chat template'));
    for (const id of ids) this.checkedId(id, 'a stop id');
    return { stopIds: [...new Set(ids)], stopStrings: strings, tokenText: (id) => this.tokenText(id) };
  }

  /**
   * Sampled replies (each row's tokens, its stop token included when it stopped) as HH responses:
   * trailing stop ids dropped, special tokens skipped, the text cut where a stop string starts (a
   * multi-token "\n\nHuman:"), and a chat template's reply given HH's leading space.
   *
   * @example await tok.decodeReplies([[12, 7, tok.eosId]]) // [' Paris.']
   */
  async decodeReplies(tokens: readonly (readonly number[])[]): Promise<string[]> {
    const { stopIds, stopStrings } = this.generationStops();
    const stops = new Set(stopIds);
    const trimmed = tokens.map((row) => {
      let end = row.length;
      while (end > 0 && stops.has(row[end - 1]!)) end--;
      return row.slice(0, end);
    });
    const texts = await this.decodeBatch(trimmed, { skipSpecialTokens: true });
    return texts.map((text) => {
      for (const stop of stopStrings) {
        const at = text.indexOf(stop);
        if (at >= 0) text = text.slice(0, at);
      }
      return this.format.responseText(text);
    });
  }

  /**
   * An id's text on its own, for stop-string matching: byte-level tokens decoded from their bytes (a
   * token holding part of a UTF-8 character gives U+FFFD for it), added tokens as written, "▁" as a
   * space in SentencePiece-style vocabularies, "<0x0A>" byte tokens as their byte.
   *
   * @example tok.tokenText(tok.tokenToId('ĊĊ')!) // '\n\n'
   */
  tokenText(id: number): string {
    this.tokenTexts ??= [];
    const cached = this.tokenTexts[id];
    if (cached !== undefined) return cached;
    const token = this.idToToken(id) ?? '';
    let text: string;
    if (this.specialIds.has(token) || this.isAddedToken(token)) text = token;
    else {
      const bytes = tokenStringToBytes(token);
      const byteFallback = /^<0x([0-9A-Fa-f]{2})>$/.exec(token);
      if (byteFallback) text = String.fromCharCode(Number.parseInt(byteFallback[1]!, 16));
      else if (bytes && this.isByteLevel) text = new TextDecoder().decode(bytes);
      else text = token.replaceAll('▁', ' ');
    }
    this.tokenTexts[id] = text;
    return text;
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
    const base = Tokenizer.fromJSON(extended, 'tokenizer with hhkit special tokens');
    return new Tokenizer(base.native, base.json, base.parsed, this.source, this.companions, this.format);
  }

  /** A token that `where` names (e.g. "eos_token of …/tokenizer_config.json"); an error if not in the vocabulary. */
  private requireToken(token: string, where: string): number {
    const id = this.tokenToId(token);
    if (id === undefined)
      throw new TokenizerError(`${this.source}: has no token ${JSON.stringify(token)}, which ${where} names`);
    return id;
  }

  private checkedId(id: number, where: string): number {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize)
      throw new TokenizerError(
        `${where}: id ${id} is not in ${this.source}'s vocabulary [0, ${this.vocabSize})`,
      );
    return id;
  }

  private addedContents: Set<string> | undefined;
  private isAddedToken(token: string): boolean {
    this.addedContents ??= new Set(
      (Array.isArray(this.parsed['added_tokens']) ? this.parsed['added_tokens'] : []).flatMap((t: unknown) =>
        isObject(t) && typeof t['content'] === 'string' ? [t['content']] : [],
      ),
    );
    return this.addedContents.has(token);
  }

  private get isByteLevel(): boolean {
    const decoder = this.parsed['decoder'];
    if (!isObject(decoder)) return false;
    if (decoder['type'] === 'ByteLevel') return true;
    const inner = decoder['decoders'];
    return Array.isArray(inner) && inner.some((d: unknown) => isObject(d) && d['type'] === 'ByteLevel');
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
