// Golden test: GPT-2's byte-level BPE through our loader (Hugging Face tokenizers) gives the same ids as
// an independent implementation, js-tiktoken's r50k_base, on a tokenizer.json built here from tiktoken's
// own ranks, so nothing is downloaded and no fixture can drift from the reference.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { getEncoding } from 'js-tiktoken';
import r50kBase from 'js-tiktoken/ranks/r50k_base';
import { bytesToTokenString } from './bytes.ts';
import { END_OF_CONTEXT, END_OF_TEXT, PAD } from './special.ts';
import { mulberry32 } from '../util/random.ts';
import { Tokenizer } from './tokenizer.ts';

/** tiktoken's compressed ranks ("prefix offset b64 b64 …" per line) → byte-level token string → rank. */
function parseRanks(compressed: string): Map<string, number> {
  const ranks = new Map<string, number>();
  for (const line of compressed.split('\n')) {
    const [, offset, ...tokens] = line.split(' ');
    if (offset === undefined) continue;
    tokens.forEach((b64, i) => {
      ranks.set(bytesToTokenString(Buffer.from(b64, 'base64')), Number(offset) + i);
    });
  }
  return ranks;
}

/**
 * tiktoken stores ranks, not merges. Hugging Face's converter (transformers' TikTokenConverter) recovers
 * each token's merge by running BPE on the token's own bytes using only ranks below its own: the two
 * parts left when that stops are the pair that tiktoken merges last, and merge priority = rank order.
 */
function mergesFromRanks(ranks: ReadonlyMap<string, number>): [string, string][] {
  const merges: [string, string, number][] = [];
  for (const [token, rank] of ranks) {
    let parts = [...token];
    if (parts.length < 2) continue;
    for (;;) {
      let best = -1;
      let bestRank = rank;
      for (let i = 0; i + 1 < parts.length; i++) {
        const pairRank = ranks.get(parts[i]! + parts[i + 1]!);
        if (pairRank !== undefined && pairRank < bestRank) [best, bestRank] = [i, pairRank];
      }
      if (best < 0) break;
      parts = [...parts.slice(0, best), parts[best]! + parts[best + 1]!, ...parts.slice(best + 2)];
    }
    assert.equal(
      parts.length,
      2,
      `token ${JSON.stringify(token)} (rank ${rank}) does not split into two parts`,
    );
    merges.push([parts[0]!, parts[1]!, rank]);
  }
  return merges.sort((a, b) => a[2] - b[2]).map(([left, right]) => [left, right]);
}

/** A tokenizer.json in the layout of Hugging Face's `gpt2` (openai-community/gpt2) one. */
function gpt2TokenizerJSON(): string {
  const ranks = parseRanks(r50kBase.bpe_ranks);
  const vocab: Record<string, number> = Object.fromEntries(ranks);
  for (const [content, id] of Object.entries(r50kBase.special_tokens)) vocab[content] = id;
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  return JSON.stringify({
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: Object.entries(r50kBase.special_tokens).map(([content, id]) => ({
      id,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: true,
      special: true,
    })),
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: { ...byteLevel, trim_offsets: false },
    decoder: byteLevel,
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      fuse_unk: false,
      vocab,
      merges: mergesFromRanks(ranks),
    },
  });
}

const GOLDEN_STRINGS = [
  'Hello world',
  ' Hello world',
  '   leading spaces and trailing  ',
  "I don't know, you'll see; we've tried. She's here, I'm sure they'd agree. THEY'RE LOUD.",
  'Numbers: 0 7 42 1234567890 3.14159 -17 1,000,000 2022-04-12',
  'line one\nline two\n\nline four\r\n\ttabbed\t\tend\n',
  '\n\nHuman: What is 2+2?\n\nAssistant: 2+2 is 4.',
  '\n\nHuman:hi\n\nAssistant:',
  'Café naïve résumé Ünïcödé façade — “quotes” ‘single’ … ©®™ €£¥',
  'Привет мир, Γειά σου Κόσμε, مرحبا بالعالم, שלום עולם',
  '日本語のテキストと中文文本和한국어 텍스트',
  'Emoji: 😀 👍🏽 👨‍👩‍👧‍👦 🇯🇵 ❤️ 🤖🤖🤖',
  'Combining: e\u0301 a\u0308 n\u0303; zero\u200Bwidth; nbsp\u00A0here',
  'code: `const x = arr[i] ?? {a: 1};` // comment && || !== <=> ->',
  '<|endoftext|>',
  'antidisestablishmentarianism supercalifragilisticexpialidocious',
  'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa',
  '!!!???...,,,;;;:::',
  'https://example.com/path?query=1&b=two#frag user@example.org',
  '',
  ' ',
  '\n',
];

/** A random scalar value from mixed ranges: ASCII, Latin-1, Cyrillic, CJK, emoji, any plane; no surrogates. */
function randomCodePoint(random: () => number): number {
  const ranges: [number, number][] = [
    [0x20, 0x7e],
    [0x0a, 0x0a],
    [0xa0, 0x24f],
    [0x400, 0x4ff],
    [0x4e00, 0x9fff],
    [0x1f300, 0x1faff],
    [0x0, 0xd7ff],
    [0xe000, 0x10ffff],
  ];
  const [low, high] = ranges[Math.floor(random() * ranges.length)]!;
  return low + Math.floor(random() * (high - low + 1));
}

describe('GPT-2 byte-level BPE vs js-tiktoken r50k_base', () => {
  const started = performance.now();
  const gpt2 = Tokenizer.fromJSON(gpt2TokenizerJSON(), 'gpt2 from tiktoken ranks');
  const buildSeconds = (performance.now() - started) / 1000;
  const tiktoken = getEncoding('r50k_base');

  it('builds the 50k-merge tokenizer.json from ranks quickly', (t) => {
    t.diagnostic(`built and loaded in ${buildSeconds.toFixed(2)} s`);
    assert.equal(gpt2.vocabSize, 50257);
    assert.ok(buildSeconds < 10, `took ${buildSeconds.toFixed(1)} s`);
  });

  it('loads the classic merges spelling ("Ġ t" strings, as in the Hub\'s gpt2 file) to the same ids', async () => {
    const json = JSON.parse(gpt2.toJSONString()) as { model: { merges: [string, string][] } };
    const classic = {
      ...json,
      model: { ...json.model, merges: json.model.merges.map((pair) => pair.join(' ')) },
    };
    const loaded = Tokenizer.fromJSON(JSON.stringify(classic), 'classic gpt2');
    assert.deepEqual(await loaded.encodeBatch(GOLDEN_STRINGS), await gpt2.encodeBatch(GOLDEN_STRINGS));
  });

  it('knows GPT-2 ids that are common knowledge', async () => {
    assert.deepEqual(await gpt2.encode('Hello world'), [15496, 995]);
    assert.equal(gpt2.tokenToId('Ġworld'), 995);
    assert.equal(gpt2.eosId, 50256);
    assert.equal(gpt2.padId, 50256); // GPT-2 has no pad token; EOS stands in
  });

  it('gives tiktoken ids on the golden strings', async () => {
    const ours = await gpt2.encodeBatch(GOLDEN_STRINGS);
    GOLDEN_STRINGS.forEach((text, i) => {
      assert.deepEqual(ours[i], tiktoken.encode(text, 'all'), `ids differ for ${JSON.stringify(text)}`);
    });
  });

  it('gives tiktoken ids on 500 random texts of words, digits, punctuation and whitespace', async () => {
    const random = mulberry32(1234);
    const pieces = [
      ' the',
      ' cat',
      "'s",
      "'ll",
      ' 2023',
      '42',
      '  ',
      '\n',
      '\n\n',
      '\t',
      '...',
      '!?',
      ' é',
      'ß',
      '中文',
      ' 😀',
      '👍🏽',
      'Human:',
      ' Assistant',
      'ing',
      'x',
    ];
    const texts = Array.from({ length: 500 }, () =>
      Array.from(
        { length: 1 + Math.floor(random() * 40) },
        () => pieces[Math.floor(random() * pieces.length)]!,
      ).join(''),
    );
    const ours = await gpt2.encodeBatch(texts);
    texts.forEach((text, i) => {
      assert.deepEqual(ours[i], tiktoken.encode(text), `ids differ for ${JSON.stringify(text)}`);
    });
  });

  it('gives tiktoken ids on long texts, which are encoded in pieces', async () => {
    const random = mulberry32(77);
    const long = Array.from(
      { length: 6000 },
      () => GOLDEN_STRINGS[Math.floor(random() * GOLDEN_STRINGS.length)]!,
    ).join(' ');
    assert.ok(long.length > 100_000);
    const [ours, alone] = await Promise.all([gpt2.encode(long), gpt2.encodeBatch(['short', long, ''])]);
    assert.deepEqual(ours, tiktoken.encode(long, 'all'));
    assert.deepEqual(alone, [tiktoken.encode('short'), ours, []]);
  });

  it('decodes to tiktoken text and round-trips random unicode strings', async () => {
    const random = mulberry32(99);
    const texts = Array.from({ length: 300 }, () =>
      String.fromCodePoint(
        ...Array.from({ length: Math.floor(random() * 60) }, () => randomCodePoint(random)),
      ),
    );
    const encoded = await gpt2.encodeBatch(texts);
    const decoded = await gpt2.decodeBatch(encoded);
    texts.forEach((text, i) => {
      assert.equal(decoded[i], text, `round trip failed for ${JSON.stringify(text)}`);
      assert.equal(tiktoken.decode(encoded[i]!), text);
    });
  });

  it('adds hhkit special tokens after GPT-2 vocabulary on request', async () => {
    // Without them a PM reads its score at EOS (as transformers' reward models do at the last token).
    assert.equal(gpt2.endOfContextId, 50256);
    const extended = gpt2.withSpecialTokens();
    assert.equal(extended.vocabSize, 50259);
    assert.deepEqual([extended.eosId, extended.endOfContextId, extended.padId], [50256, 50257, 50258]);
    assert.equal(extended.tokenToId(END_OF_CONTEXT), 50257);
    assert.deepEqual(await extended.encode(`Hi${END_OF_CONTEXT}${PAD}`), [17250, 50257, 50258]);
    assert.deepEqual(await extended.encode(`Hi${END_OF_TEXT}`), await gpt2.encode(`Hi${END_OF_TEXT}`));
  });
});
