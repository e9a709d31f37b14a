import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  commonPrefixLength,
  countUnmarkedHuman,
  finalResponse,
  formatTranscript,
  parseTranscript,
  promptOf,
  splitComparison,
} from './transcript.ts';

const P = '\n\nHuman: What is 2+2?\n\nAssistant:';

test('parse and format are inverses on a well-formed multi-turn transcript', () => {
  const text = '\n\nHuman: hi\n\nAssistant: hello\n\nHuman: 2+2?\n\nAssistant: 4';
  const parsed = parseTranscript(text);
  assert.equal(parsed.preamble, '');
  assert.deepEqual(parsed.turns, [
    { role: 'human', text: 'hi' },
    { role: 'assistant', text: 'hello' },
    { role: 'human', text: '2+2?' },
    { role: 'assistant', text: '4' },
  ]);
  assert.equal(parsed.unmarkedHuman, 0);
  assert.equal(formatTranscript(parsed.turns), text);
});

test('an empty final turn parses to empty text and formats back to a bare marker', () => {
  const parsed = parseTranscript(P);
  assert.deepEqual(parsed.turns.at(-1), { role: 'assistant', text: '' });
  assert.equal(formatTranscript(parsed.turns), P);
});

test('"Human:" opening the text is a turn; "Human:" after a single newline stays inside the turn', () => {
  const parsed = parseTranscript('Human: hi\n\nAssistant: ok\nHuman: not a turn');
  assert.deepEqual(parsed.turns, [
    { role: 'human', text: 'hi' },
    { role: 'assistant', text: 'ok\nHuman: not a turn' },
  ]);
  assert.equal(parsed.unmarkedHuman, 2);
  assert.equal(countUnmarkedHuman('\n\nHuman: a\n\nHuman: b'), 0);
});

test('text before the first marker is the preamble', () => {
  const parsed = parseTranscript('System says hi\n\nHuman: q\n\nAssistant: a');
  assert.equal(parsed.preamble, 'System says hi');
  assert.equal(parsed.turns.length, 2);
  assert.deepEqual(parseTranscript('no markers').turns, []);
});

test('promptOf / finalResponse follow the last-"\\n\\nAssistant:" rule', () => {
  assert.equal(promptOf(`${P} 4`), P);
  assert.equal(finalResponse(`${P} 4`), ' 4');
  assert.equal(promptOf('\n\nHuman: only a question'), null);
  assert.equal(finalResponse('\n\nHuman: q'), null);
});

test('commonPrefixLength agrees with a naive loop across the block boundary', () => {
  const base = 'x'.repeat(130);
  for (const cut of [0, 1, 63, 64, 65, 127, 128, 129]) {
    const a = `${base.slice(0, cut)}A${base}`;
    const b = `${base.slice(0, cut)}B${base}`;
    assert.equal(commonPrefixLength(a, b), cut);
  }
  assert.equal(commonPrefixLength('abc', 'abc'), 3);
  assert.equal(commonPrefixLength('abc', 'ab'), 2);
});

test('normal comparison: prompt is the shared context, responses are what follows', () => {
  const s = splitComparison(`${P} 4, of course`, `${P} 4, or 5`);
  assert.ok(s);
  assert.equal(s.prompt, P);
  assert.equal(s.chosenResponse, ' 4, of course');
  assert.equal(s.rejectedResponse, ' 4, or 5');
  assert.deepEqual(s.notes, []);
});

test('a second "\\n\\nAssistant:" inside one response does not move it into the prompt', () => {
  const chosen = `${P} 4`;
  const rejected = `${P} 5\n\nAssistant: sorry, 4`;
  // The plain rule would disagree between the two sides…
  assert.notEqual(promptOf(chosen), promptOf(rejected));
  const s = splitComparison(chosen, rejected);
  assert.ok(s);
  assert.equal(s.prompt, P);
  assert.equal(s.rejectedResponse, ' 5\n\nAssistant: sorry, 4');
  assert.deepEqual(s.notes, ['extra-assistant-marker']);
});

test('empty response, identical pair and human turn in a response are noted, text untouched', () => {
  const empty = splitComparison(P, `${P} 4`);
  assert.ok(empty);
  assert.equal(empty.chosenResponse, '');
  assert.deepEqual(empty.notes, ['empty-response']);
  const same = splitComparison(`${P} 4`, `${P} 4`);
  assert.deepEqual(same?.notes, ['identical-pair']);
  const cont = splitComparison(`${P} 4\n\nHuman: thanks`, `${P} 5`);
  assert.deepEqual(cont?.notes, ['human-turn-in-response']);
});

test('no shared prefix: prompt is empty and the responses are the whole transcripts', () => {
  const chosen = '\n\nHuman: A?\n\nAssistant: a';
  const rejected = '\n\nHuman: B?\n\nAssistant: b';
  const s = splitComparison(chosen, rejected);
  assert.ok(s);
  assert.equal(s.prompt, '');
  assert.equal(s.chosenResponse, chosen);
  assert.deepEqual(s.notes, ['no-shared-prompt']);
});

test('unmarked "Human:" and leading text are noted', () => {
  assert.deepEqual(splitComparison('Human: hi\n\nAssistant: a', 'Human: hi\n\nAssistant: b')?.notes, [
    'unmarked-human',
  ]);
  assert.deepEqual(
    splitComparison('Intro\n\nHuman: q\n\nAssistant: a', 'Intro\n\nHuman: q\n\nAssistant: b')?.notes,
    ['leading-text'],
  );
});

test('an explicit prompt wins when it is a prefix of both, and is refused otherwise', () => {
  const chosen = `${P} 4\n\nAssistant: (really)`;
  const rejected = `${P} 4\n\nAssistant: (maybe)`;
  // Without the prompt the shared prefix reaches into the responses.
  assert.notEqual(splitComparison(chosen, rejected)?.prompt, P);
  const s = splitComparison(chosen, rejected, P);
  assert.equal(s?.prompt, P);
  assert.equal(s?.chosenResponse, ' 4\n\nAssistant: (really)');
  assert.equal(splitComparison(chosen, rejected, '\n\nHuman: other'), null);
});
