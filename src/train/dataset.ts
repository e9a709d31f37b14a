// Tokenised LM data: documents → token ids with EOS after each → one stream per split (train/eval,
// decided per document by a hash of its text, so it never depends on file order or the run seed),
// plus a per-token loss mask for SFT. Cached on disk (uint16/int32 .bin + index.json) so a resume or a
// second run on the same corpus and tokenizer does not tokenise again.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { hashUnit } from '../data/split.ts';
import type { SegmentRole, Tokenizer } from '../tokenizer/index.ts';
import { writeFileAtomicSync } from '../util/atomic.ts';
import type { LossOn } from './config.ts';
import { type CorpusReport, newCorpusReport, readCorpusDocuments } from './corpus.ts';

/** One split as a token stream; `mask[i] = 1` when token i is a training target (null: all are). */
export interface TokenStream {
  tokens: Uint16Array | Int32Array;
  mask: Uint8Array | null;
  documents: number;
}

export interface PreparedCorpus {
  train: TokenStream;
  eval: TokenStream;
  report: CorpusReport;
  /** True when the streams came from the on-disk cache. */
  fromCache: boolean;
}

export interface PrepareCorpusOptions {
  data: string;
  /** Folder for the cache files. */
  cacheDir: string;
  tokenizer: Tokenizer;
  lossOn: LossOn;
  evalFraction: number;
  /** Called with the number of documents tokenised so far. */
  onProgress?: (documents: number) => void;
}

const CACHE_VERSION = 2; // 2: assistant masks from encodeDialogues' roles; the format and eos in the key
/** The split hash's seed is fixed (not the run seed) so every run on a corpus evaluates on the same text. */
const SPLIT_SEED = 0;

/** Token ids grown in place (amortised doubling), narrowed to uint16 when the vocabulary allows. */
class StreamBuilder {
  private ids = new Int32Array(1 << 16);
  private mask: Uint8Array | null;
  length = 0;
  documents = 0;

  constructor(withMask: boolean) {
    this.mask = withMask ? new Uint8Array(1 << 16) : null;
  }

  push(ids: readonly number[], mask: Uint8Array | null): void {
    if (this.length + ids.length > this.ids.length) {
      const size = Math.max(this.ids.length * 2, this.length + ids.length);
      const grown = new Int32Array(size);
      grown.set(this.ids.subarray(0, this.length));
      this.ids = grown;
      if (this.mask) {
        const grownMask = new Uint8Array(size);
        grownMask.set(this.mask.subarray(0, this.length));
        this.mask = grownMask;
      }
    }
    this.ids.set(ids, this.length);
    if (this.mask && mask) this.mask.set(mask, this.length);
    this.length += ids.length;
    this.documents++;
  }

  finish(vocabSize: number): TokenStream {
    const ids = this.ids.subarray(0, this.length);
    const tokens = vocabSize <= 0x10000 ? Uint16Array.from(ids) : ids.slice();
    return { tokens, mask: this.mask ? this.mask.slice(0, this.length) : null, documents: this.documents };
  }
}

/**
 * The SFT loss mask of one transcript from its tokens' roles (Tokenizer.encodeDialogues), with the EOS
 * appended after it: 1 on the tokens of each Assistant reply and on what ends it (the next "\n\nHuman:"
 * marker, whatever tokens spell it, a chat template's "<|im_end|>", or the EOS after a final reply, so
 * the model learns where its turn stops), 0 on Human turns, the markers that open replies, template markup
 * and any preamble. Works for any tokenizer: turns are found in the text, not as single marker tokens.
 *
 * @example assistantMask(['context', 'context', 'reply', 'reply']) // Uint8Array [0, 0, 1, 1, 1] (EOS last)
 */
export function assistantMask(roles: readonly SegmentRole[]): Uint8Array {
  const mask = new Uint8Array(roles.length + 1);
  roles.forEach((role, i) => {
    mask[i] = role === 'context' ? 0 : 1;
  });
  mask[roles.length] = roles.at(-1) === 'reply' ? 1 : 0;
  return mask;
}

interface CacheIndex {
  version: number;
  key: string;
  report: CorpusReport;
  splits: Record<'train' | 'eval', { tokens: number; documents: number; dtype: 'uint16' | 'int32' }>;
}

function cacheKey(o: PrepareCorpusOptions): string {
  const stat = statSync(o.data);
  return createHash('sha256')
    .update(
      JSON.stringify({
        version: CACHE_VERSION,
        data: resolve(o.data),
        size: stat.size,
        mtimeMs: stat.mtimeMs,
        tokenizer: createHash('sha256').update(o.tokenizer.toJSONString()).digest('hex'),
        companions: o.tokenizer.companions.files,
        format: o.tokenizer.format.name,
        lossOn: o.lossOn,
        evalFraction: o.evalFraction,
      }),
    )
    .digest('hex');
}

function readCached(dir: string, key: string): PreparedCorpus | null {
  const indexPath = join(dir, 'index.json');
  if (!existsSync(indexPath)) return null;
  let index: CacheIndex;
  try {
    index = JSON.parse(readFileSync(indexPath, 'utf8')) as CacheIndex;
  } catch {
    return null;
  }
  if (index.version !== CACHE_VERSION || index.key !== key) return null;
  const load = (name: 'train' | 'eval'): TokenStream | null => {
    const meta = index.splits[name];
    const bytes = readFileSync(join(dir, `${name}.bin`));
    const width = meta.dtype === 'uint16' ? 2 : 4;
    if (bytes.length !== meta.tokens * width) return null;
    const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length);
    const tokens = meta.dtype === 'uint16' ? new Uint16Array(buffer) : new Int32Array(buffer);
    const maskPath = join(dir, `${name}.mask.bin`);
    const mask = existsSync(maskPath) ? new Uint8Array(readFileSync(maskPath)) : null;
    return { tokens, mask, documents: meta.documents };
  };
  const train = load('train');
  const evalSplit = load('eval');
  if (!train || !evalSplit) return null;
  return { train, eval: evalSplit, report: index.report, fromCache: true };
}

function writeCache(dir: string, key: string, prepared: PreparedCorpus): void {
  mkdirSync(dir, { recursive: true });
  const splits = {} as CacheIndex['splits'];
  for (const name of ['train', 'eval'] as const) {
    const s = prepared[name];
    const bytes = new Uint8Array(s.tokens.buffer, s.tokens.byteOffset, s.tokens.byteLength);
    writeFileAtomicSync(join(dir, `${name}.bin`), bytes);
    if (s.mask) writeFileAtomicSync(join(dir, `${name}.mask.bin`), s.mask);
    splits[name] = {
      tokens: s.tokens.length,
      documents: s.documents,
      dtype: s.tokens instanceof Uint16Array ? 'uint16' : 'int32',
    };
  }
  // index.json last: its key is what marks the .bin files complete and current.
  const index: CacheIndex = { version: CACHE_VERSION, key, report: prepared.report, splits };
  writeFileAtomicSync(join(dir, 'index.json'), `${JSON.stringify(index, null, 2)}\n`);
}

/**
 * Tokenises a corpus into train/eval token streams (EOS after each document), from the cache in
 * `cacheDir` when the corpus file, tokenizer and options are unchanged.
 *
 * @example
 * const data = await prepareCorpus({ data: 'world/pretrain.jsonl', cacheDir: 'runs/lm/data', tokenizer: tok,
 *   lossOn: 'all', evalFraction: 0.05 });
 * data.train.tokens.length; // ≈ 380k
 */
export async function prepareCorpus(o: PrepareCorpusOptions): Promise<PreparedCorpus> {
  const key = cacheKey(o);
  const cached = readCached(o.cacheDir, key);
  if (cached) return cached;
  const withMask = o.lossOn === 'assistant';
  const train = new StreamBuilder(withMask);
  const evalSplit = new StreamBuilder(withMask);
  const report = newCorpusReport();
  const eos = o.tokenizer.eosId;
  let done = 0;
  for await (const docs of readCorpusDocuments(o.data, report)) {
    // Encode in slices: one native batch each, bounded memory for large files.
    for (let at = 0; at < docs.length; at += 512) {
      const slice = docs.slice(at, at + 512);
      const texts = slice.map((d) => d.text);
      const encoded = withMask
        ? await o.tokenizer.encodeDialogues(texts)
        : (await o.tokenizer.encodeBatch(texts)).map((ids) => ({ ids, roles: null }));
      slice.forEach((doc, i) => {
        const { ids: body, roles } = encoded[i]!;
        const ids = [...body, eos];
        const mask = roles ? assistantMask(roles) : null;
        const target = hashUnit(doc.text, SPLIT_SEED) < o.evalFraction ? evalSplit : train;
        target.push(ids, mask);
      });
      done += slice.length;
      o.onProgress?.(done);
    }
  }
  let prepared: PreparedCorpus = {
    train: train.finish(o.tokenizer.vocabSize),
    eval: evalSplit.finish(o.tokenizer.vocabSize),
    report,
    fromCache: false,
  };
  if (report.documents === 1) prepared = splitSingleDocument(prepared, o.evalFraction);
  writeCache(o.cacheDir, key, prepared);
  return prepared;
}

// One document (a .txt without separators) cannot be split by document: hold out its last tokens.
function splitSingleDocument(p: PreparedCorpus, evalFraction: number): PreparedCorpus {
  const all = p.train.tokens.length > 0 ? p.train : p.eval;
  const cut = Math.floor(all.tokens.length * (1 - evalFraction));
  const part = (from: number, to: number): TokenStream => ({
    tokens: all.tokens.slice(from, to),
    mask: all.mask ? all.mask.slice(from, to) : null,
    documents: 1,
  });
  return { ...p, train: part(0, cut), eval: part(cut, all.tokens.length) };
}
