import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { tidy } from '../engine/index.ts';
import { exampleCount, IGNORE_INDEX, makeBatch } from './batches.ts';
import { prepareCorpus } from './dataset.ts';
import { tinyCorpus } from './test-fixtures.ts';

const BAD_LINES = ['{"text": "unterminated', '["not", "an object"]', '{"text": 42}', '', '{"text": "   "}'];

test('JSONL: malformed lines are reported with file:line and skipped; EOS ends every document', async () => {
  const corpus = tinyCorpus(50, BAD_LINES);
  const data = await prepareCorpus({
    data: corpus.path,
    cacheDir: join(corpus.dir, 'cache'),
    tokenizer: corpus.tokenizer,
    lossOn: 'all',
    evalFraction: 0.2,
  });
  assert.equal(data.report.documents, 50);
  assert.equal(data.report.skipped, 4);
  assert.equal(data.report.blankLines, 1);
  assert.match(data.report.examples[0]!, /corpus\.jsonl:51: invalid JSON/);
  assert.match(data.report.examples[1]!, /:52: expected a JSON object/);
  assert.match(data.report.examples[2]!, /:53: expected a string "text"/);
  assert.match(data.report.examples[3]!, /:55: empty "text"/);
  const eos = corpus.tokenizer.eosId;
  const count = (s: Uint16Array | Int32Array): number => [...s].filter((id) => id === eos).length;
  assert.equal(data.train.documents + data.eval.documents, 50);
  assert.equal(count(data.train.tokens), data.train.documents);
  assert.equal(count(data.eval.tokens), data.eval.documents);
  assert.ok(data.eval.documents > 0 && data.train.documents > data.eval.documents);
  assert.equal(data.train.tokens.at(-1), eos);
  // The token stream decodes back to the documents, in file order, each followed by EOS.
  const decoded = await corpus.tokenizer.decode([...data.train.tokens, ...data.eval.tokens]);
  for (const text of corpus.texts) assert.ok(decoded.includes(`${text}<|endoftext|>`));
});

test('the split is by document hash: the same documents in another order split the same way; cached', async () => {
  const corpus = tinyCorpus(80);
  const opts = { tokenizer: corpus.tokenizer, lossOn: 'all' as const, evalFraction: 0.25 };
  const a = await prepareCorpus({ ...opts, data: corpus.path, cacheDir: join(corpus.dir, 'a') });
  const reversed = join(corpus.dir, 'reversed.jsonl');
  writeFileSync(
    reversed,
    `${[...corpus.texts]
      .reverse()
      .map((text) => JSON.stringify({ text }))
      .join('\n')}\n`,
  );
  const b = await prepareCorpus({ ...opts, data: reversed, cacheDir: join(corpus.dir, 'b') });
  const docs = async (tokens: Uint16Array | Int32Array): Promise<string[]> =>
    (await corpus.tokenizer.decode([...tokens])).split('<|endoftext|>').filter(Boolean).sort();
  assert.deepEqual(await docs(a.eval.tokens), await docs(b.eval.tokens));
  assert.equal(a.fromCache, false);
  const again = await prepareCorpus({ ...opts, data: corpus.path, cacheDir: join(corpus.dir, 'a') });
  assert.equal(again.fromCache, true);
  assert.deepEqual([...again.train.tokens], [...a.train.tokens]);
  assert.ok(again.train.tokens instanceof Uint16Array);
  // A different evalFraction is a different dataset: the cache is not used.
  const other = await prepareCorpus({
    ...opts,
    evalFraction: 0.5,
    data: corpus.path,
    cacheDir: join(corpus.dir, 'a'),
  });
  assert.equal(other.fromCache, false);
});

test("SFT (lossOn 'assistant'): the loss mask covers exactly the Assistant replies and the token ending each", async () => {
  const corpus = tinyCorpus(20);
  const tok = corpus.tokenizer;
  const two =
    '\n\nHuman: hi\n\nAssistant: hello there\n\nHuman: What is 1 plus 2?\n\nAssistant: 1 plus 2 is 3.';
  const path = join(corpus.dir, 'sft.jsonl');
  writeFileSync(path, `${JSON.stringify({ text: two })}\n${JSON.stringify({ chosen: corpus.texts[0] })}\n`);
  const data = await prepareCorpus({
    data: path,
    cacheDir: join(corpus.dir, 'c'),
    tokenizer: tok,
    lossOn: 'assistant',
    evalFraction: 0.01,
  });
  const stream = data.train.documents === 2 ? data.train : data.eval;
  assert.equal(stream.documents, 2);
  const ids = [...stream.tokens];
  const mask = stream.mask!;
  const masked = ids.filter((_, i) => mask[i] === 1);
  const unmasked = ids.filter((_, i) => mask[i] === 0);
  // Masked: the replies, each closed by the token after it (the next Human marker, or EOS).
  const expected = ' hello there\n\nHuman: 1 plus 2 is 3.<|endoftext|>';
  const expectedSecond = ` ${corpus.texts[0]!.split('Assistant: ')[1]}<|endoftext|>`;
  const text = await tok.decode(masked);
  assert.equal(
    text,
    ids.indexOf(tok.eosId) < ids.indexOf(tok.assistantTurnId!)
      ? expectedSecond + expected
      : expected + expectedSecond,
  );
  // Nothing a Human said, and no "\n\nAssistant:" marker, is a target.
  const rest = await tok.decode(unmasked);
  assert.ok(rest.includes('hi') && rest.includes('What is 1 plus 2?'));
  assert.ok(!masked.includes(tok.assistantTurnId!));
  // Labels follow the mask: IGNORE_INDEX exactly where the target token is not masked in.
  tidy(() => {
    const T = 8;
    const n = exampleCount(stream, T);
    const batch = makeBatch(stream, [...Array(n).keys()], T);
    const labels = [...(batch.labels.toTypedArray() as BigInt64Array)].map(Number);
    labels.forEach((label, k) => {
      const target = Math.floor(k / T) * T + (k % T) + 1;
      assert.equal(label, mask[target] === 1 ? ids[target] : IGNORE_INDEX);
    });
    assert.equal(batch.targets, labels.filter((l) => l !== IGNORE_INDEX).length);
  });
});

test('.txt corpora: documents split at <|endoftext|>; a single document is split by tokens', async () => {
  const corpus = tinyCorpus(10);
  const path = join(corpus.dir, 'plain.txt');
  writeFileSync(path, corpus.texts.join(''));
  const data = await prepareCorpus({
    data: path,
    cacheDir: join(corpus.dir, 't'),
    tokenizer: corpus.tokenizer,
    lossOn: 'all',
    evalFraction: 0.2,
  });
  const total = data.train.tokens.length + data.eval.tokens.length;
  assert.ok(Math.abs(data.eval.tokens.length - 0.2 * total) <= 1);
  const multi = join(corpus.dir, 'multi.txt');
  writeFileSync(multi, corpus.texts.join('<|endoftext|>'));
  const split = await prepareCorpus({
    data: multi,
    cacheDir: join(corpus.dir, 'm'),
    tokenizer: corpus.tokenizer,
    lossOn: 'all',
    evalFraction: 0.2,
  });
  assert.equal(split.report.documents, 10);
});

test('examples: windows of T+1 tokens, inputs shifted by one from targets', () => {
  const stream = { tokens: Uint16Array.from({ length: 41 }, (_, i) => i), mask: null, documents: 1 };
  assert.equal(exampleCount(stream, 8), 5);
  tidy(() => {
    const batch = makeBatch(stream, [1, 3], 8);
    assert.deepEqual(batch.ids.shape, [2, 8]);
    assert.deepEqual(batch.ids.toArray(), [
      [8, 9, 10, 11, 12, 13, 14, 15],
      [24, 25, 26, 27, 28, 29, 30, 31],
    ]);
    assert.deepEqual(batch.labels.toArray(), [
      [9, 10, 11, 12, 13, 14, 15, 16],
      [25, 26, 27, 28, 29, 30, 31, 32],
    ]);
  });
});
