import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { byteLevelPreTokenizer } from 'tokenizers';
import { canChunk, safeChunks } from './chunks.ts';
import { mulberry32 } from '../util/random.ts';

describe('safeChunks', () => {
  it('cuts after a non-space before "\\n" or " x", never inside a whitespace run', () => {
    assert.deepEqual([...safeChunks('ab cd\nef', 1)], ['ab', ' cd', '\nef']);
    assert.deepEqual([...safeChunks('a  b \n\nc', 1)], ['a  b \n\nc']);
    assert.deepEqual([...safeChunks('short text', 100)], ['short text']);
    assert.deepEqual([...safeChunks('', 5)], ['']);
  });

  it('yields pieces that pre-tokenize exactly as the whole text', () => {
    const preTokenizer = byteLevelPreTokenizer(false, true);
    const words = (text: string): string[] => preTokenizer.preTokenizeString(text).map(([word]) => word);
    const alphabet = [
      'a',
      'b',
      ' ',
      '  ',
      '\n',
      '\n\n',
      ' \n',
      '\t',
      '.',
      '1',
      "'s",
      "'",
      'é',
      '😀',
      '\u00A0',
      '-',
    ];
    const random = mulberry32(7); // seeded, so a failure reproduces
    let cuts = 0;
    for (let trial = 0; trial < 500; trial++) {
      const text = Array.from({ length: 60 }, () => alphabet[Math.floor(random() * alphabet.length)]!).join(
        '',
      );
      const chunkChars = 1 + Math.floor(random() * 10);
      const chunks = [...safeChunks(text, chunkChars)];
      cuts += chunks.length - 1;
      assert.equal(chunks.join(''), text);
      chunks.slice(0, -1).forEach((chunk) => {
        assert.ok(chunk.length >= chunkChars);
      });
      assert.deepEqual(chunks.flatMap(words), words(text), JSON.stringify(text));
    }
    assert.ok(cuts > 1000, `only ${cuts} cuts: the property was barely exercised`);
  });
});

describe('canChunk', () => {
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  const marker = {
    id: 5,
    content: '\n\nHuman:',
    special: false,
    lstrip: false,
    rstrip: false,
    single_word: false,
  };

  it('accepts GPT-2-style pipelines whose added tokens hold no cut point', () => {
    assert.equal(canChunk({ normalizer: null, pre_tokenizer: byteLevel, added_tokens: [marker] }), true);
  });

  it('refuses anything else', () => {
    assert.equal(
      canChunk({ normalizer: { type: 'NFC' }, pre_tokenizer: byteLevel, added_tokens: [] }),
      false,
    );
    assert.equal(canChunk({ normalizer: null, pre_tokenizer: { ...byteLevel, use_regex: false } }), false);
    assert.equal(canChunk({ normalizer: null, pre_tokenizer: { type: 'Whitespace' } }), false);
    const spaced = { ...marker, content: 'New York' };
    assert.equal(canChunk({ normalizer: null, pre_tokenizer: byteLevel, added_tokens: [spaced] }), false);
    const stripped = { ...marker, lstrip: true };
    assert.equal(canChunk({ normalizer: null, pre_tokenizer: byteLevel, added_tokens: [stripped] }), false);
  });
});
