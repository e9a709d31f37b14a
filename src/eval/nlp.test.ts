import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { AdamW, crossEntropy, tensor, tidy } from '../engine/index.ts';
import { GPT, gptPresets } from '../nn/index.ts';
import { Tokenizer } from '../tokenizer/index.ts';
import { type EvalItem, loadEvalFile, loadPrompts, type MultipleChoiceItem } from './nlp-data.ts';
import { evaluateNlp, normalizeAnswer, scoreContinuations } from './nlp.ts';

const fixtures = join(import.meta.dirname, '..', '..', 'test', 'fixtures', 'evals');
const fixture = (name: string) => join(fixtures, name);

test('loaders: every public variant parses; bad lines are reported as file:line and skipped', () => {
  const arc = loadEvalFile(fixture('arc.jsonl'));
  assert.equal(arc.format, 'arc');
  assert.equal(arc.items.length, 4);
  const [first, second, hf] = arc.items as MultipleChoiceItem[];
  assert.equal(first!.context, 'Question: Which gas do plants take in from the air?\nAnswer:');
  assert.deepEqual(first!.choices, [' oxygen', ' carbon dioxide', ' helium', ' neon']);
  assert.equal(first!.gold, 1);
  assert.equal(second!.gold, 0, 'numeric labels "1"–"4"');
  assert.equal(hf!.gold, 1, 'Hugging Face form');
  assert.deepEqual(
    arc.skipped.map((s) => s.where),
    [`${fixture('arc.jsonl')}:4`, `${fixture('arc.jsonl')}:5`],
  );
  assert.match(arc.skipped[0]!.reason, /answerKey "E" is not one of the labels A/);
  assert.match(arc.skipped[1]!.reason, /not JSON/);

  const obqa = loadEvalFile(fixture('openbookqa.jsonl'));
  assert.equal(obqa.format, 'openbookqa');
  assert.deepEqual(
    obqa.items.map((i) => (i as MultipleChoiceItem).gold),
    [3, 3],
  );
  assert.equal(obqa.skipped[0]!.where, `${fixture('openbookqa.jsonl')}:3`);

  const hs = loadEvalFile(fixture('hellaswag.jsonl'));
  assert.equal(hs.format, 'hellaswag');
  assert.deepEqual(
    hs.items.map((i) => (i as MultipleChoiceItem).gold),
    [3, 3],
  );
  assert.equal(
    (hs.items[1] as MultipleChoiceItem).context,
    'Clean and jerk: A lady walks to a barbell. She bends down and grabs the pole. the lady',
  );
  assert.deepEqual(
    hs.skipped.map((s) => [s.where.split(':').at(-1), s.reason.slice(0, 10)]),
    [
      ['3', 'no "label"'],
      ['4', '"label" mu'],
    ],
  );

  const mmlu = loadEvalFile(fixture('mmlu.jsonl'));
  assert.deepEqual(
    mmlu.items.map((i) => (i as MultipleChoiceItem).gold),
    [2, 1, 2],
  );
  assert.equal(mmlu.skipped.length, 1);

  const lambada = loadEvalFile(fixture('lambada.jsonl'));
  assert.deepEqual(lambada.items[0], {
    kind: 'last-word',
    context: 'the cat sat on the mat and the dog sat on the',
    target: ' rug',
    where: `${fixture('lambada.jsonl')}:1`,
  });
  assert.equal(lambada.skipped[0]!.where, `${fixture('lambada.jsonl')}:3`);

  const qa = loadEvalFile(fixture('qa.jsonl'));
  assert.deepEqual(
    qa.items.map((i) => (i.kind === 'qa' ? i.answers : [])),
    [['blue'], ['red', 'blue', 'yellow']],
  );
  assert.equal(qa.skipped.length, 1);
  assert.throws(() => loadEvalFile(fixture('README.md')), /cannot tell which benchmark format/);
});

test('loadPrompts: prompt lines and comparison lines (prompt up to the last Assistant turn), deduplicated', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hhkit-prompts-'));
  const path = join(dir, 'p.jsonl');
  const chosen = '\n\nHuman: hi\n\nAssistant: hello';
  writeFileSync(
    path,
    [
      JSON.stringify({ prompt: '\n\nHuman: a\n\nAssistant:' }),
      JSON.stringify({ chosen, rejected: '\n\nHuman: hi\n\nAssistant: go away' }),
      JSON.stringify({ chosen, rejected: 'x' }),
      '{"nothing": 1}',
    ].join('\n'),
  );
  const { prompts, skipped } = loadPrompts(path);
  assert.deepEqual(prompts, ['\n\nHuman: a\n\nAssistant:', '\n\nHuman: hi\n\nAssistant:']);
  assert.deepEqual(
    skipped.map((s) => s.where),
    [`${path}:4`],
  );
});

test('normalizeAnswer: SQuAD normalisation', () => {
  assert.equal(normalizeAnswer('  The Blue, sky! '), 'blue sky');
});

// A tiny GPT that memorises the right answers of the fixture questions: before training it is near
// chance, after it every multiple-choice and last-word item is right.
test('multiple choice, last word and exact-match QA: accuracy rises from training on the gold answers; batching is exact', async () => {
  const sets: EvalItem[][] = ['arc.jsonl', 'mmlu.jsonl', 'lambada.jsonl', 'qa.jsonl'].map(
    (f) => loadEvalFile(fixture(f)).items,
  );
  const texts = sets
    .flat()
    .map((i) =>
      i.kind === 'choice'
        ? i.context + i.choices[i.gold]
        : i.kind === 'last-word'
          ? i.context + i.target
          : `${i.prompt} ${i.answers[0]}\n`,
    );
  const tok = Tokenizer.train(
    [...texts, ...sets.flat().flatMap((i) => (i.kind === 'choice' ? i.choices : []))],
    {
      vocabSize: 300,
    },
  );
  const model = new GPT(
    { ...gptPresets.tiny, vocabSize: tok.vocabSize, nPositions: 64, nEmbd: 32 },
    { seed: 1 },
  );

  // Batched, padded scores equal one-by-one scores.
  const ctx = await tok.encodeBatch(['Question: x\nAnswer:', 'a much longer context than the other one']);
  const cont = await tok.encodeBatch([' yes', ' no way']);
  const requests = ctx.map((c, i) => ({ context: c, continuation: cont[i]! }));
  const batched = scoreContinuations(model, requests, { batchSize: 2 });
  const single = requests.map((r) => scoreContinuations(model, [r])[0]!);
  for (const [i, b] of batched.entries()) assert.ok(Math.abs(b.logprob - single[i]!.logprob) < 1e-4);
  assert.ok(batched.every((b) => b.logprob < 0));

  const before = await Promise.all(sets.map((items) => evaluateNlp(model, tok, items)));
  const opt = new AdamW(model.parameters(), { lr: 1e-2, weightDecay: 0 });
  const ids = await tok.encodeBatch(texts.map((t) => t));
  for (let step = 0; step < 60; step++) {
    tidy(() => {
      for (const row of ids) {
        const input = tensor([row.slice(0, -1)], { dtype: 'int64' });
        const target = tensor(row.slice(1), { dtype: 'int64' });
        const { logits } = model.forward(input); // (1, T, V)
        crossEntropy(logits.view(-1, tok.vocabSize), target).div(ids.length).backward();
      }
      opt.step();
      opt.zeroGrad();
    });
  }
  const after = await Promise.all(sets.map((items) => evaluateNlp(model, tok, items)));
  for (const [i, name] of ['arc', 'mmlu', 'lambada', 'qa'].entries()) {
    assert.equal(after[i]!.value, 1, `${name} after training: ${after[i]!.value}`);
    assert.ok(before[i]!.value < 1, `${name} before training: ${before[i]!.value}`);
  }
  assert.equal(after[0]!.accuracyNorm, 1);
  assert.equal(after[2]!.count, 2);
});
