// Fuzz test of the eval and prompt readers: generated JSONL files (plain, gzipped, gzips cut short) of
// good items in each benchmark's format, or good prompt lines, mixed with blank lines, broken lines of
// every kind (wrong types, missing fields, labels out of range, invalid UTF-8, unpaired surrogates) and
// random bytes. Every good line must load as its item or prompt, every bad one be reported as file:line
// (and be where a strict load stops), a cut file be reported where it stops, and nothing crash. Seeded: the
// seed is printed; HHKIT_FUZZ_SEED replays a run.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { DataFileError } from '../data/errors.ts';
import {
  assertAccounted,
  Fuzz,
  type FuzzFile,
  type FuzzLine,
  fuzzCase,
  fuzzSeed,
  INVALID_UTF8,
  writeFuzzFile,
} from '../util/test-fuzz.ts';
import { type EvalFormat, type EvalItem, loadEvalFile, loadPrompts } from './nlp-data.ts';

const FILES = 150;
const utf8 = (s: string) => Buffer.from(s, 'utf8');
const word = (f: Fuzz) => f.pick(['Paris', 'cat', '42', 'blue', 'é', '😀', 'x']);
const words = (f: Fuzz) => `${word(f)}${f.text(4)}`;

/** A good line of `format` and the item it must load as (without `where`), or of the prompt file. */
type Good = { json: Record<string, unknown>; expect: unknown };

function goodItem(f: Fuzz, format: EvalFormat | 'prompts'): Good {
  const q = words(f);
  const choices = Array.from({ length: 2 + f.int(4) }, () => words(f));
  const gold = f.int(choices.length);
  const mc = (context: string) => ({ kind: 'choice', context, choices: choices.map((c) => ` ${c}`), gold });
  const labels = choices.map((_, i) => String.fromCharCode(65 + i));
  switch (format) {
    case 'mmlu':
      return {
        json: { question: q, choices, answer: f.chance(0.5) ? gold : labels[gold]! },
        expect: mc(`Question: ${q}\nAnswer:`),
      };
    case 'qa': {
      const answers = Array.from({ length: 1 + f.int(3) }, () => words(f));
      return {
        json:
          answers.length === 1 && f.chance(0.5)
            ? { question: q, answer: answers[0] }
            : { question: q, answers },
        expect: { kind: 'qa', prompt: `Question: ${q}\nAnswer:`, answers },
      };
    }
    case 'lambada': {
      const parts = Array.from({ length: 2 + f.int(5) }, () => word(f));
      const text = parts.join(' ');
      const cut = text.lastIndexOf(' ');
      return {
        json: { text: f.chance(0.3) ? `${text}  ` : text },
        expect: { kind: 'last-word', context: text.slice(0, cut), target: text.slice(cut) },
      };
    }
    case 'hellaswag':
      return {
        json: { ctx: q, endings: choices, label: f.chance(0.5) ? gold : String(gold) },
        expect: mc(q),
      };
    case 'arc':
      return {
        json: {
          question: { stem: q, choices: choices.map((text, i) => ({ text, label: labels[i] })) },
          answerKey: labels[gold],
        },
        expect: mc(`Question: ${q}\nAnswer:`),
      };
    default: {
      if (f.chance(0.6)) return { json: { prompt: q }, expect: q };
      const prompt = `\n\nHuman: ${q}\n\nAssistant:`;
      return { json: { chosen: `${prompt} ${f.text(3).replaceAll('Assistant:', 'A:')}` }, expect: prompt };
    }
  }
}

/** Breaks one field of a good line of `format` so that the reader must refuse it. */
function brokenItem(f: Fuzz, format: EvalFormat | 'prompts', good: Good): Record<string, unknown> {
  const j = good.json;
  const nonString = () => {
    let v = f.json(2);
    while (typeof v === 'string') v = f.json(2);
    return v;
  };
  const options: Record<string, unknown>[] = (() => {
    switch (format) {
      case 'mmlu':
        return [
          { ...j, question: nonString() },
          { ...j, choices: [words(f)] },
          { ...j, choices: [words(f), 3] },
          { ...j, answer: (j['choices'] as unknown[]).length + f.int(3) },
          { ...j, answer: f.pick(['Z', 'a', '', -1, 1.5, null, [0]]) },
        ];
      case 'qa':
        return [
          { question: nonString(), answer: words(f) },
          { question: words(f), answer: f.pick(['', '  ', 3]) },
          { question: words(f), answers: [] },
          { question: words(f), answers: [words(f), 7] },
        ];
      case 'lambada':
        return [{ text: nonString() }, { text: f.pick(['word', ' word', 'word ', '']) }];
      case 'hellaswag':
        return [
          { ...j, ctx: undefined },
          { ...j, endings: [words(f)] },
          { ...j, label: f.pick(['', undefined, 9, -1, '1.0', 'x']) },
        ];
      case 'arc':
        return [
          { ...j, answerKey: 'Q' },
          { ...j, answerKey: 1 },
          { ...j, question: { stem: nonString(), choices: [] } },
          { ...j, question: { stem: words(f), choices: [{ text: 1, label: 'A' }] } },
        ];
      default:
        return [
          { prompt: nonString() },
          { prompt: f.pick(['', '   ', '\n\n']) },
          { chosen: `no assistant turn ${word(f)}` },
          { answer: words(f) },
        ];
    }
  })();
  return f.pick(options);
}

function line(f: Fuzz, format: EvalFormat | 'prompts'): FuzzLine {
  const good = goodItem(f, format);
  const json = JSON.stringify(good.json);
  const kind = f.int(14);
  if (kind < 5) return { kind: 'good', bytes: utf8(f.chance(0.2) ? `${json}\r` : json), expect: good.expect };
  if (kind === 5) return { kind: 'blank', bytes: utf8(f.pick(['', ' ', '\t', '\r'])) };
  if (kind === 6) return { kind: 'bad', bytes: utf8(json.slice(0, 1 + f.int(json.length - 1))) };
  if (kind === 7)
    return { kind: 'bad', bytes: utf8(JSON.stringify(f.pick([[good.json], 'text', 3, null, true]))) };
  if (kind <= 9) return { kind: 'bad', bytes: utf8(JSON.stringify(brokenItem(f, format, good))) };
  if (kind === 10) {
    const bytes = utf8(json);
    const starts = [...bytes.keys()].filter((i) => (bytes[i]! & 0xc0) !== 0x80);
    const at = f.pick(starts);
    return {
      kind: 'bad',
      bytes: Buffer.concat([bytes.subarray(0, at), f.pick(INVALID_UTF8), bytes.subarray(at)]),
    };
  }
  if (kind === 11) {
    // An unpaired surrogate escaped into one of the line's strings: "…\\udXXX…".
    const at = json.indexOf('"', 1 + json.indexOf(':')) + 1;
    const surrogateEscape = `\\u${(0xd800 + f.int(0x800)).toString(16)}`;
    return { kind: 'bad', bytes: utf8(`${json.slice(0, at)}${surrogateEscape}${json.slice(at)}`) };
  }
  const raw = f.chance(0.5) ? f.bytes(1 + f.int(60)) : f.mutateBytes(utf8(json));
  return { kind: 'any', bytes: Buffer.from(raw.filter((b) => b !== 0x0a)) };
}

/** Where a strict load must stop: the first reported line (a cut file's first lost line included). */
function assertStrictStop(file: FuzzFile, reported: Map<number, string>, load: () => unknown): void {
  const first = Math.min(...reported.keys());
  try {
    load();
    assert.equal(reported.size, 0, `a strict load passed over line ${first}`);
  } catch (err) {
    if (!(err instanceof DataFileError)) throw err;
    assert.equal(err.line, first, err.message);
    assert.ok(err.message.startsWith(`${file.path}:${first}: `), err.message);
  }
}

const lineOf = (where: string, path: string) => {
  assert.ok(where.startsWith(`${path}:`), where);
  return Number(where.slice(path.length + 1));
};

function checkEvalFile(file: FuzzFile, format: EvalFormat): void {
  const { items, skipped } = loadEvalFile(file.path, format);
  const loaded = new Map<number, unknown>();
  for (const item of items as (EvalItem & { where: string })[]) {
    const { where, ...rest } = item;
    loaded.set(lineOf(where, file.path), rest);
  }
  const reported = new Map(skipped.map((s) => [lineOf(s.where, file.path), s.reason] as const));
  assert.equal(reported.size, skipped.length, 'each skipped line is listed once');
  const lost = skipped.filter((s) => s.lost);
  assertAccounted(file, {
    loaded,
    reported,
    blankLines: null,
    stoppedAt: lost.length ? lineOf(lost[0]!.where, file.path) : null,
  });
  assertStrictStop(file, reported, () => loadEvalFile(file.path, format, { strict: true }));
}

function checkPromptFile(file: FuzzFile): void {
  const { prompts, skipped } = loadPrompts(file.path);
  const reported = new Map(skipped.map((s) => [lineOf(s.where, file.path), s.reason] as const));
  const lost = skipped.filter((s) => s.lost);
  const stoppedAt = lost.length ? lineOf(lost[0]!.where, file.path) : null;
  const end = stoppedAt ?? file.lines.length + 1;
  // Prompts come back deduplicated, in first-seen order: a good line is loaded when its prompt is there.
  const loaded = new Map<number, unknown>();
  const returned = new Set(prompts);
  file.lines.forEach((l, i) => {
    if (l.kind === 'good' && i + 1 < end && returned.has(l.expect as string)) loaded.set(i + 1, l.expect);
  });
  assertAccounted(file, { loaded, reported, blankLines: null, stoppedAt });
  const expectedOrder = [
    ...new Set(file.lines.slice(0, end - 1).flatMap((l) => (l.kind === 'good' ? [l.expect] : []))),
  ];
  const goodOnly = prompts.filter((p) => expectedOrder.includes(p));
  assert.deepEqual(goodOnly, expectedOrder, 'prompts in first-seen order');
  assert.equal(new Set(prompts).size, prompts.length, 'no duplicate prompts');
  assertStrictStop(file, reported, () => loadPrompts(file.path, { strict: true }));
}

test('fuzz: the eval and prompt readers load every good line, report every bad one at file:line, never crash', async (t) => {
  const seed = fuzzSeed(t, 'eval/prompt readers');
  const f = new Fuzz(seed);
  const dir = mkdtempSync(join(tmpdir(), 'hhkit-fuzz-eval-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const formats = ['mmlu', 'qa', 'lambada', 'hellaswag', 'arc', 'prompts'] as const;
  for (let i = 0; i < FILES; i++) {
    const format = f.pick(formats);
    const lines = Array.from({ length: 1 + f.int(24) }, () => line(f, format));
    const file = writeFuzzFile(f, dir, `e${i}.jsonl`, lines);
    await fuzzCase(seed, i, { format, lines, file: file.bytes }, () =>
      format === 'prompts' ? checkPromptFile(file) : checkEvalFile(file, format),
    );
  }
});
