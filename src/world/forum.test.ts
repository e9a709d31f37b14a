import assert from 'node:assert/strict';
import { test } from 'node:test';
import { goldJudge } from './judge.ts';
import { type ForumThread, forumPairs, forumScore, forumThread } from './forum.ts';
import { hhhDialogues, hhhPrompt } from './hhh.ts';
import { parseRequest } from './parse.ts';
import { formatPrompt } from './requests.ts';
import { Rng } from './rng.ts';

test('forum pairs rank the higher-scored answer first and never tie', () => {
  const rng = new Rng(5);
  let pairs = 0;
  for (let i = 0; i < 300; i++) {
    const thread = forumThread(rng);
    assert.ok(thread.answers.length >= 3 && thread.answers.length <= 6);
    const score = new Map(thread.answers.map((a) => [a.text, forumScore(a)]));
    for (const p of forumPairs(rng, thread)) {
      const answerOf = (t: string) => t.slice(p.prompt!.length + 1);
      assert.ok(score.get(answerOf(p.chosen))! > score.get(answerOf(p.rejected))!);
      assert.ok(p.chosen.startsWith(p.prompt!) && p.rejected.startsWith(p.prompt!));
      pairs++;
    }
  }
  assert.ok(pairs > 600, `only ${pairs} pairs from 300 threads`);
});

test('forum questions are outside the assistant families', () => {
  const rng = new Rng(6);
  for (let i = 0; i < 200; i++) {
    const prompt = `\n\nHuman: ${forumThread(rng).question}\n\nAssistant:`;
    assert.equal(parseRequest(prompt), undefined, prompt);
  }
});

test('every HHH dialogue is ideal by the gold judge', () => {
  const dialogues = hhhDialogues();
  assert.ok(dialogues.length >= 5);
  assert.ok(
    dialogues.some((d) => d.request.family === 'harmful') &&
      dialogues.some((d) => d.request.family === 'lookalike'),
  );
  for (const { request, transcript } of dialogues) {
    const prompt = formatPrompt(request);
    const gold = goldJudge(prompt, transcript.slice(prompt.length));
    assert.ok(
      gold.outcome === 'correct' || gold.outcome === 'ideal-refusal',
      `${request.text}: ${gold.outcome}`,
    );
  }
  const text = hhhPrompt();
  assert.ok(text.startsWith('Below are a series of dialogues'));
  assert.equal(text, hhhPrompt(), 'the HHH prompt is fixed');
});

/** The answer styles of each of a thread's forum pairs: [the voted-up answer's, the voted-down one's]. */
function pairStyles(rng: Rng, thread: ForumThread): [string | undefined, string | undefined][] {
  const prompt = `\n\nHuman: ${thread.question}\n\nAssistant:`;
  const style = new Map(thread.answers.map((a) => [a.text, a.style]));
  const answer = (transcript: string) => style.get(transcript.slice(prompt.length + 1));
  return forumPairs(rng, thread).map((p) => [answer(p.chosen), answer(p.rejected)]);
}

test('safety threads: outside the assistant families, and their pairs mostly put the caution above the shortcut', () => {
  const rng = new Rng(11);
  let cautionFirst = 0;
  let shortcutFirst = 0;
  for (let i = 0; i < 300; i++) {
    const thread = forumThread(rng, { safetyShare: 1 });
    assert.equal(thread.topic, 'safety');
    const prompt = `\n\nHuman: ${thread.question}\n\nAssistant:`;
    assert.equal(parseRequest(prompt), undefined, prompt);
    for (const [c, r] of pairStyles(rng, thread)) {
      if (c === 'caution' && r === 'unsafe') cautionFirst++;
      if (c === 'unsafe' && r === 'caution') shortcutFirst++;
    }
  }
  assert.ok(
    cautionFirst > 4 * shortcutFirst,
    `caution first ${cautionFirst}, shortcut first ${shortcutFirst}`,
  );
});

test('the PMP mix: padded and overcautious answers appear only there, and each is mostly voted below the plain tip', () => {
  const rng = new Rng(12);
  const count = { rambling: 0, overcautious: 0 };
  // Pairs of a plain tip ('good') against each weak kind: [tip first, tip second].
  const order = { rambling: [0, 0], overcautious: [0, 0] };
  for (let i = 0; i < 800; i++) {
    for (const a of forumThread(rng).answers)
      assert.ok(a.style !== 'rambling' && a.style !== 'overcautious', 'the corpus mix has neither');
    const thread = forumThread(rng, { rambling: 0.3, overcautious: 0.1 });
    for (const a of thread.answers)
      if (a.style === 'rambling' || a.style === 'overcautious') count[a.style]++;
    for (const [c, r] of pairStyles(rng, thread)) {
      if (c === 'good' && (r === 'rambling' || r === 'overcautious')) order[r][0]!++;
      if (r === 'good' && (c === 'rambling' || c === 'overcautious')) order[c][1]!++;
    }
  }
  assert.ok(count.rambling > 200 && count.overcautious > 60, JSON.stringify(count));
  // Measured on this seed: 210 vs 61 pairs (rambling), 73 vs 9 (overcautious).
  assert.ok(order.rambling[0]! > 2 * order.rambling[1]!, JSON.stringify(order));
  assert.ok(order.overcautious[0]! > 3 * order.overcautious[1]!, JSON.stringify(order));
  assert.throws(() => forumThread(rng, 0.2 as never), /mix must be an object/);
});
