import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ASSISTANT_TURN, END_OF_CONTEXT, END_OF_TEXT, HUMAN_TURN, PAD } from './special.ts';
import { mulberry32 } from '../util/random.ts';
import { Tokenizer, TokenizerError } from './tokenizer.ts';

/** A small HH-style corpus: one or two turns of arithmetic and chit-chat, some with EOS. */
function dialogues(count: number, seed: number): string[] {
  const random = mulberry32(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const asks = ['What is', 'Can you tell me', 'Please compute', "I don't know what is"];
  const replies = ['It is', 'The answer is', "I'm sure it's", 'Sorry, I think it is'];
  return Array.from({ length: count }, () => {
    const a = Math.floor(random() * 100);
    const b = Math.floor(random() * 100);
    let text = `${HUMAN_TURN} ${pick(asks)} ${a} plus ${b}?${ASSISTANT_TURN} ${pick(replies)} ${a + b} (${a}+${b}).`;
    if (random() < 0.5) text += `${HUMAN_TURN} Thanks! Café? 😀${ASSISTANT_TURN} You're welcome.`;
    return random() < 0.3 ? text + END_OF_TEXT : text;
  });
}

const corpus = dialogues(400, 1);
const VOCAB = 400;
const tok = Tokenizer.train(corpus, { vocabSize: VOCAB });
const dir = mkdtempSync(join(tmpdir(), 'hhkit-tokenizer-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('Tokenizer.train', () => {
  it('is deterministic: the same corpus gives the same tokenizer.json, also when read from files', () => {
    const again = Tokenizer.train(dialogues(400, 1), { vocabSize: VOCAB });
    assert.equal(again.toJSONString(), tok.toJSONString());
    const files = [0, 1, 2].map((part) => {
      const file = join(dir, `corpus-${part}.txt`);
      writeFileSync(file, corpus.filter((_, i) => i % 3 === part).join(''));
      return file;
    });
    const fromFiles = Tokenizer.train({ files }, { vocabSize: VOCAB });
    const fromTexts = Tokenizer.train(
      [0, 1, 2].map((part) => readFileSync(files[part]!, 'utf8')),
      { vocabSize: VOCAB },
    );
    assert.equal(fromFiles.toJSONString(), fromTexts.toJSONString());
    assert.notEqual(
      Tokenizer.train(dialogues(400, 2), { vocabSize: VOCAB }).toJSONString(),
      tok.toJSONString(),
    );
  });

  it('lays out ids as bytes (GPT-2 order), merges, EOS, end-of-context, pad, turn markers', () => {
    assert.equal(tok.vocabSize, VOCAB);
    assert.equal(tok.tokenToId('!'), 0);
    assert.equal(tok.tokenToId('Ġ'), 220);
    assert.deepEqual(
      [tok.eosId, tok.endOfContextId, tok.padId, tok.humanTurnId, tok.assistantTurnId],
      [VOCAB - 5, VOCAB - 4, VOCAB - 3, VOCAB - 2, VOCAB - 1],
    );
    assert.equal(tok.idToToken(tok.endOfContextId), END_OF_CONTEXT);
  });

  it('learns to compress its corpus and stops early when pairs run out', async () => {
    const text = corpus.slice(0, 50).join('');
    const ids = await tok.encode(text);
    assert.ok(
      ids.length < Buffer.byteLength(text) / 3,
      `${ids.length} tokens for ${Buffer.byteLength(text)} bytes`,
    );
    const tiny = Tokenizer.train(['ab ab ab'], { vocabSize: 10_000 });
    assert.ok(tiny.vocabSize < 270, `vocabSize ${tiny.vocabSize}`);
    assert.equal(tiny.padId, tiny.vocabSize - 3);
  });

  it('makes turn markers single tokens, so prompt and response tokens concatenate', async () => {
    assert.deepEqual(await tok.encode(`${HUMAN_TURN} What`), [tok.humanTurnId, tok.tokenToId('ĠWhat')]);
    for (const transcript of corpus.slice(0, 100)) {
      const cut = transcript.lastIndexOf(ASSISTANT_TURN) + ASSISTANT_TURN.length;
      const [prompt, response, whole] = await tok.encodeBatch([
        transcript.slice(0, cut),
        transcript.slice(cut),
        transcript,
      ]);
      assert.deepEqual([...prompt!, ...response!], whole);
      assert.equal(prompt!.at(-1), tok.assistantTurnId);
    }
  });

  it('can leave turn markers to BPE', async () => {
    const plain = Tokenizer.train(corpus, { vocabSize: VOCAB, turnMarkers: false });
    assert.equal(plain.humanTurnId, undefined);
    assert.equal(plain.vocabSize, VOCAB);
    assert.ok((await plain.encode(HUMAN_TURN)).length >= 3); // "\n\n", "Human", ":" at best
  });

  it('rejects a vocabulary too small for the bytes and special tokens', () => {
    assert.throws(() => Tokenizer.train(corpus, { vocabSize: 260 }), RangeError);
  });
});

describe('Tokenizer encode/decode', () => {
  it('encodes special-token strings as special ids unless allowSpecial is false', async () => {
    const text = `4${END_OF_CONTEXT}`;
    assert.deepEqual(await tok.encode(text), [tok.tokenToId('4'), tok.endOfContextId]);
    const literal = await tok.encode(text, { allowSpecial: false });
    assert.ok(!literal.includes(tok.endOfContextId) && literal.length > 3);
    assert.equal(await tok.decode(literal), text);
    assert.deepEqual(await tok.encodeBatch([text], { allowSpecial: false }), [literal]);
    // Turn markers are ordinary text that is one token: still recognised.
    assert.deepEqual(await tok.encode(HUMAN_TURN, { allowSpecial: false }), [tok.humanTurnId]);
  });

  it('skips special tokens on request but keeps turn markers', async () => {
    const ids = await tok.encode(`${HUMAN_TURN} hi${END_OF_TEXT}${PAD}`);
    assert.equal(await tok.decode(ids), `${HUMAN_TURN} hi${END_OF_TEXT}${PAD}`);
    assert.equal(await tok.decode(ids, { skipSpecialTokens: true }), `${HUMAN_TURN} hi`);
    assert.deepEqual(await tok.decodeBatch([ids, []], { skipSpecialTokens: true }), [`${HUMAN_TURN} hi`, '']);
  });

  it('throws on ids outside the vocabulary instead of dropping them', async () => {
    await assert.rejects(
      tok.decode([1, VOCAB]),
      new RegExp(`position 1: token id ${VOCAB} is not in \\[0, ${VOCAB}\\)`),
    );
    await assert.rejects(tok.decodeBatch([[1], [2, -1]]), /row 1, position 1/);
    await assert.rejects(tok.decode([1.5]), RangeError);
  });

  it('encodes a batch exactly as one by one', async () => {
    const texts = corpus.slice(0, 30);
    const one = await Promise.all(texts.map((text) => tok.encode(text)));
    assert.deepEqual(await tok.encodeBatch(texts), one);
    assert.deepEqual(await tok.encodeBatch([]), []);
    assert.deepEqual(await tok.encode(''), []);
  });

  it('encodes long texts in pieces with the same ids as one native call', async () => {
    const long = corpus.join('\n');
    assert.ok(long.length > 40_000);
    // A no-op normalizer turns piecewise encoding off (./chunks.ts canChunk), giving the reference ids.
    const json = JSON.parse(tok.toJSONString()) as Record<string, unknown>;
    const whole = Tokenizer.fromJSON(
      JSON.stringify({ ...json, normalizer: { type: 'Sequence', normalizers: [] } }),
    );
    const expected = await whole.encode(long);
    assert.deepEqual(await tok.encode(long), expected);
    assert.deepEqual(await tok.encodeBatch([long, long.slice(1)]), [
      expected,
      await whole.encode(long.slice(1)),
    ]);
    const literal = await tok.encode(long, { allowSpecial: false });
    assert.deepEqual(literal, await whole.encode(long, { allowSpecial: false }));
    assert.notDeepEqual(literal, expected); // the corpus holds "<|endoftext|>"
  });

  it('round-trips random unicode strings, including special tokens and markers', async () => {
    const random = mulberry32(5);
    const inserts = [END_OF_TEXT, END_OF_CONTEXT, HUMAN_TURN, ASSISTANT_TURN, ' ', '\n', '\u00A0', '\u200D'];
    const texts = Array.from({ length: 300 }, () => {
      let text = '';
      const length = Math.floor(random() * 40);
      for (let i = 0; i < length; i++) {
        if (random() < 0.1) text += inserts[Math.floor(random() * inserts.length)];
        else {
          const codePoint = Math.floor(random() * 0x10ffff);
          text += String.fromCodePoint(codePoint >= 0xd800 && codePoint <= 0xdfff ? 0x41 : codePoint);
        }
      }
      return text;
    });
    const decoded = await tok.decodeBatch(await tok.encodeBatch(texts));
    texts.forEach((text, i) => {
      assert.equal(decoded[i], text, JSON.stringify(text));
    });
  });
});

describe('Tokenizer files', () => {
  it('saves atomically and loads back the same tokenizer', async () => {
    const path = join(dir, 'tokenizer.json');
    writeFileSync(path, 'old contents');
    tok.save(path);
    assert.equal(readFileSync(path, 'utf8'), tok.toJSONString());
    assert.deepEqual(
      readdirSync(dir).filter((name) => name.includes('tokenizer')),
      ['tokenizer.json'],
    ); // no temp file left behind
    const loaded = Tokenizer.fromFile(path);
    assert.equal(loaded.vocabSize, tok.vocabSize);
    assert.equal(loaded.endOfContextId, tok.endOfContextId);
    assert.deepEqual(await loaded.encode(corpus[0]!), await tok.encode(corpus[0]!));
  });

  it('keeps vocab keys in id order in tokenizer.json, integer-like tokens included', () => {
    const json = JSON.parse(tok.toJSONString()) as { model: { vocab: Record<string, number> } };
    assert.equal(Object.keys(json.model.vocab).length, VOCAB);
    assert.equal(json.model.vocab[END_OF_CONTEXT], tok.endOfContextId);
    const number = Object.keys(json.model.vocab).find(
      (token) => /^(0|[1-9][0-9]*)$/.test(token) && token.length > 1,
    );
    assert.ok(number !== undefined, 'corpus should yield a merged number token such as "10"');
    const text = tok.toJSONString();
    assert.ok(text.indexOf('"!":0,') < text.indexOf(`"${number}":${json.model.vocab[number]},`));
  });

  it('says what is wrong with a bad tokenizer.json', () => {
    assert.throws(
      () => Tokenizer.fromJSON('{ nope', 'bad.json'),
      (error: unknown) => {
        return error instanceof TokenizerError && /^bad\.json: not valid JSON/.test(error.message);
      },
    );
    assert.throws(
      () => Tokenizer.fromJSON(JSON.stringify({ model: { type: 'WordPiece', vocab: {} } }), 'wp.json'),
      /wp\.json: expected a BPE tokenizer\.json \(model\.type "BPE"\), got "WordPiece"/,
    );
    const broken = tok.toJSONString().replace('"merges":[', '"merges":[["no-such","tokens"],');
    assert.throws(
      () => Tokenizer.fromJSON(broken, 'broken.json'),
      /broken\.json: Hugging Face tokenizers rejected it/,
    );
    assert.throws(() => Tokenizer.fromFile(join(dir, 'missing.json')), /ENOENT/);
  });

  it('adds missing special tokens only when asked, and is a no-op when all are there', () => {
    assert.equal(tok.withSpecialTokens(), tok);
    const parsed = JSON.parse(tok.toJSONString()) as { model: { vocab: Record<string, number> } };
    for (const token of [END_OF_TEXT, END_OF_CONTEXT, PAD, HUMAN_TURN, ASSISTANT_TURN])
      delete parsed.model.vocab[token];
    const plain = Tokenizer.fromJSON(JSON.stringify({ ...parsed, added_tokens: [] }), 'no specials');
    assert.equal(plain.vocabSize, VOCAB - 5);
    assert.throws(() => plain.eosId, TokenizerError);
    const extended = plain.withSpecialTokens();
    assert.deepEqual(
      [extended.eosId, extended.endOfContextId, extended.padId],
      [VOCAB - 5, VOCAB - 4, VOCAB - 3],
    );
  });
});
