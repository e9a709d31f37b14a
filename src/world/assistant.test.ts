import assert from 'node:assert/strict';
import { test } from 'node:test';
import { defaultMix, sampleResponse, wrongRateOf } from './assistant.ts';
import { goldJudge } from './judge.ts';
import { formatPrompt, sampleRequest } from './requests.ts';
import { Rng } from './rng.ts';

test('the base assistant: no surface style tells a right answer from a wrong one', () => {
  const rng = new Rng(3);
  const tally = { plain: [0, 0], eager: [0, 0], rude: [0, 0] };
  let misreads = 0;
  let wrongs = 0;
  for (let i = 0; i < 6000; i++) {
    const request = sampleRequest(rng, 'fact');
    const { kind, text } = sampleResponse(rng, request);
    if (kind === 'evasive' || kind === 'refusal' || kind === 'rambling') continue;
    const outcome = goldJudge(formatPrompt(request), ` ${text}`).outcome;
    if (kind === 'wrong')
      misreads += outcome === 'wrong' && !text.includes(request.frame.split('{}')[0]!) ? 1 : 0;
    if (kind === 'wrong') wrongs++;
    const style = kind === 'harmful' ? 'rude' : text.startsWith('Sure!') ? 'eager' : 'plain';
    tally[style][0]! += outcome === 'correct' ? 1 : 0;
    tally[style][1]! += 1;
  }
  const rightRate = (s: keyof typeof tally) => tally[s][0]! / tally[s][1]!;
  const expected = 1 - wrongRateOf(defaultMix);
  for (const style of ['plain', 'eager', 'rude'] as const)
    assert.ok(
      Math.abs(rightRate(style) - expected) < 0.05,
      `${style}: ${rightRate(style).toFixed(3)} right, expected ${expected.toFixed(3)} (n ${tally[style][1]})`,
    );
  // About half the wrong answers misread the question (a statement about another subject), all judged wrong.
  assert.ok(misreads / wrongs > 0.35 && misreads / wrongs < 0.6, `${misreads} misreads of ${wrongs}`);
});
