import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BYTE_TO_UNICODE, GPT2_BYTE_ORDER, tokenStringToBytes, UNICODE_TO_BYTE } from './bytes.ts';
import { learnMerges, WordCounter } from './train.ts';

describe('GPT-2 byte ↔ unicode mapping', () => {
  it('is a bijection that keeps printable bytes and moves space and newline to Ġ and Ċ', () => {
    assert.equal(new Set(BYTE_TO_UNICODE).size, 256);
    assert.equal(UNICODE_TO_BYTE.size, 256);
    assert.equal(BYTE_TO_UNICODE[0x41], 'A');
    assert.equal(BYTE_TO_UNICODE[0x20], 'Ġ');
    assert.equal(BYTE_TO_UNICODE[0x0a], 'Ċ');
    assert.deepEqual(tokenStringToBytes('Ġhi'), Uint8Array.from([32, 104, 105]));
    assert.equal(tokenStringToBytes('\n\nHuman:'), undefined);
  });

  it('orders bytes as GPT-2 ids: "!" is 0, space is 220', () => {
    assert.equal(new Set(GPT2_BYTE_ORDER).size, 256);
    assert.equal(GPT2_BYTE_ORDER[0], 0x21);
    assert.equal(GPT2_BYTE_ORDER.indexOf(0x20), 220);
    assert.equal(GPT2_BYTE_ORDER.indexOf(0x0a), 198);
  });
});

describe('learnMerges', () => {
  const words = new Map([
    ['Ġlow', 5],
    ['Ġlower', 2],
  ]);

  it('merges the most frequent pair first, ties to the smaller ids', () => {
    const bpe = learnMerges(words, { modelVocabSize: 259, minFrequency: 2 });
    // l-o, o-w and Ġ-l are all seen 7 times; 'l' (id 75) has the smallest id.
    assert.deepEqual(bpe.merges, [
      ['l', 'o'],
      ['Ġ', 'lo'],
      ['Ġlo', 'w'],
    ]);
    assert.deepEqual(bpe.tokens.slice(256), ['lo', 'Ġlo', 'Ġlow']);
  });

  it('stops below the target when no pair reaches minFrequency', () => {
    const bpe = learnMerges(words, { modelVocabSize: 1000, minFrequency: 3 });
    assert.equal(bpe.tokens.length, 259);
    const more = learnMerges(words, { modelVocabSize: 1000, minFrequency: 2 });
    assert.deepEqual(more.tokens.slice(259), ['er', 'Ġlower']); // (e, r) and (Ġlow, e) tie at 2; 'e' has the smaller id
  });

  it('merges runs of one symbol left to right without overlap ("aaaa" → "aa aa")', () => {
    const bpe = learnMerges(
      new Map([
        ['aaaa', 1],
        ['ab', 3],
      ]),
      { modelVocabSize: 259, minFrequency: 1 },
    );
    // "aaaa" holds (a, a) 3 times, tying with (a, b); the smaller right id wins. Merged left to right it
    // becomes "aa aa", whose one (aa, aa) pair is the last merge.
    assert.deepEqual(bpe.merges, [
      ['a', 'a'],
      ['a', 'b'],
      ['aa', 'aa'],
    ]);
  });

  it('learns a vocabulary with unique tokens whose merges rebuild every token', () => {
    const text = 'the theory then there the other thesis; 12 123 1234 ';
    const counter = new WordCounter([]);
    for (let i = 0; i < 20; i++) counter.add(text.repeat(i + 1));
    const bpe = learnMerges(counter.counts, { modelVocabSize: 300, minFrequency: 2 });
    assert.equal(new Set(bpe.tokens).size, bpe.tokens.length);
    for (const [left, right] of bpe.merges) assert.ok(bpe.tokens.includes(left + right));
    assert.ok(bpe.tokens.includes('Ġthe'));
  });

  it('rejects a vocabulary smaller than the byte alphabet', () => {
    assert.throws(() => learnMerges(words, { modelVocabSize: 100, minFrequency: 2 }), RangeError);
  });
});

describe('WordCounter', () => {
  it('cuts added tokens out before pre-tokenizing, longest match first', () => {
    const counter = new WordCounter(['<|endoftext|>', 'ab', 'abc']);
    counter.add('x abc<|endoftext|>x ab');
    assert.deepEqual(
      [...counter.counts],
      [
        ['x', 2],
        ['Ġ', 2],
      ],
    );
  });

  it('sees "\\n\\n" as one word when it is not followed by text on the same piece', () => {
    const counter = new WordCounter([]);
    counter.add('a\n\n\nb');
    assert.deepEqual([...counter.counts.keys()], ['a', 'ĊĊ', 'Ċ', 'b']);
  });
});
