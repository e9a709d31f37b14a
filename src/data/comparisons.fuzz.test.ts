// Fuzz test of the comparison-file loader: a few hundred generated files (plain, gzipped, gzips cut
// short) of good records in several writers' styles mixed with blank lines, broken lines of every kind and
// random bytes. Every good line must load as written, every bad one be reported at its file:line (and be
// where a strict load stops), a cut file be reported where it stops, and nothing crash. Seeded: the seed
// is printed; HHKIT_FUZZ_SEED replays a run.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  assertAccounted,
  Fuzz,
  type FuzzLine,
  fuzzCase,
  fuzzSeed,
  INVALID_UTF8,
  writeFuzzFile,
} from '../util/test-fuzz.ts';
import { ComparisonFileError, readComparisonEntries } from './comparisons.ts';
import { DataFileError } from './errors.ts';
import { LoadReport } from './report.ts';
import type { ComparisonRecord } from './types.ts';

const FILES = 300;
const MAX_LINE_BYTES = 4096;

/** Non-blank well-formed text. */
const words = (f: Fuzz) => `${f.pick(['Hi', 'What', 'x', 'Why?', '2+2'])}${f.text(5)}`;

function record(f: Fuzz): ComparisonRecord {
  let prompt = `\n\nHuman: ${words(f)}\n\nAssistant:`;
  if (f.chance(0.3)) prompt += ` ${f.text(4)}\n\nHuman: ${words(f)}\n\nAssistant:`;
  const r: ComparisonRecord = { chosen: `${prompt} ${f.text(6)}`, rejected: `${prompt} ${f.text(6)}` };
  if (f.chance(0.2)) r.prompt = prompt;
  if (f.chance(0.2)) r.task = f.pick(['helpful', 'harmless'] as const);
  if (f.chance(0.1)) r.source = words(f);
  if (f.chance(0.1)) r.worker = words(f);
  if (f.chance(0.1)) r.strength = f.pick([1, 2.5, -3, 0]);
  if (f.chance(0.1)) r.round = f.int(5);
  return r;
}

/** The JSON text of an object in one of the styles real writers use. */
function serialise(f: Fuzz, value: object): string {
  const style = f.int(3);
  if (style === 0) return JSON.stringify(value);
  // Python's json.dumps: ", " and ": " separators, non-ASCII escaped (ensure_ascii, astral as pairs).
  const python = `{${Object.entries(value)
    .map(([k, v]) => `${JSON.stringify(k)}: ${JSON.stringify(v)}`)
    .join(', ')}}`.replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return style === 1 ? python : ` ${JSON.stringify(value, null, 0)}\t`;
}

const utf8 = (s: string) => Buffer.from(s, 'utf8');

function line(f: Fuzz, index: number): FuzzLine {
  const r = record(f);
  const json = serialise(f, f.chance(0.1) ? { ...r, [f.pick(['id', 'meta', 'label'])]: f.json(2) } : r);
  const kind = f.int(20);
  if (kind < 7) {
    // A good line, sometimes with a BOM (first line only) or a CRLF ending.
    const bom = index === 0 && f.chance(0.3) ? '\ufeff' : '';
    const bytes = utf8(`${bom}${json}${f.chance(0.2) ? '\r' : ''}`);
    assert.ok(bytes.length <= MAX_LINE_BYTES, 'a good line fits the line limit');
    return { kind: 'good', bytes, expect: r };
  }
  if (kind === 7) return { kind: 'blank', bytes: utf8(f.pick(['', ' ', '\t', '\r', '  \r', '\u00a0'])) };
  if (kind === 8) {
    const core = json.trim(); // '{' … '}': every shorter prefix is unfinished JSON
    return { kind: 'bad', bytes: utf8(core.slice(0, 1 + f.int(core.length - 1))) };
  }
  if (kind === 9) {
    let value = f.json(3);
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) value = [value];
    return { kind: 'bad', bytes: utf8(JSON.stringify(value)) };
  }
  if (kind === 10) {
    const { [f.pick(['chosen', 'rejected'] as const)]: _dropped, ...rest } = r;
    return { kind: 'bad', bytes: utf8(serialise(f, rest)) };
  }
  if (kind === 11) {
    let wrong = f.json(2);
    while (typeof wrong === 'string') wrong = f.json(2);
    return { kind: 'bad', bytes: utf8(serialise(f, { ...r, [f.pick(['chosen', 'rejected'])]: wrong })) };
  }
  if (kind === 12) {
    const blank = f.pick(['', ' ', '\n\t ']);
    return { kind: 'bad', bytes: utf8(serialise(f, { ...r, [f.pick(['chosen', 'rejected'])]: blank })) };
  }
  if (kind === 13) {
    // One unpaired surrogate (an odd count of surrogate units cannot all pair up).
    const key = f.pick(['chosen', 'rejected'] as const);
    const at = f.int(r[key].length + 1);
    const unit = String.fromCharCode(0xd800 + f.int(0x800));
    const broken = { ...r, [key]: r[key].slice(0, at) + unit + r[key].slice(at) };
    return { kind: 'bad', bytes: utf8(serialise(f, broken)) };
  }
  if (kind === 14) {
    // Invalid UTF-8 at a character boundary (before an ASCII byte or a lead byte, after a whole character).
    const bytes = utf8(json);
    const starts = [...bytes.keys()].filter((i) => (bytes[i]! & 0xc0) !== 0x80);
    const at = f.pick(starts);
    const bad = f.pick(INVALID_UTF8);
    return { kind: 'bad', bytes: Buffer.concat([bytes.subarray(0, at), bad, bytes.subarray(at)]) };
  }
  if (kind === 15) {
    // A raw control character inside a string (JSON requires it escaped).
    const at = json.indexOf('"chosen":') + '"chosen":'.length;
    const cut = json.indexOf('"', at) + 1;
    return {
      kind: 'bad',
      bytes: utf8(json.slice(0, cut) + f.pick(['\u0000', '\u0001', '\t', '\u001f']) + json.slice(cut)),
    };
  }
  if (kind === 16) {
    const field = f.pick([
      { task: f.pick(['red-team', 'Helpful', '', 'harmful']) },
      { task: f.pick([1, null, ['helpful']]) },
      { round: f.pick([-1, 1.5, '2', 2 ** 60]) },
      { strength: f.pick(['3', [], {}]) },
      { prompt: `Not a prefix: ${words(f)}` },
      { source: '' },
      { worker: 7 },
    ]);
    // null for an optional key counts as absent; { task: null } is a good line.
    if ('task' in field && field.task === null) {
      const { task: _absent, ...expect } = r;
      return { kind: 'good', bytes: utf8(serialise(f, { ...r, ...field })), expect };
    }
    return { kind: 'bad', bytes: utf8(serialise(f, { ...r, ...field })) };
  }
  if (kind === 17) {
    const long = { ...r, chosen: `${r.chosen}${'x'.repeat(MAX_LINE_BYTES)}` };
    return { kind: 'bad', bytes: utf8(serialise(f, long)) };
  }
  // Random bytes, or a good line with bytes flipped, inserted or deleted: anything goes but a crash.
  const raw = f.chance(0.5) ? f.bytes(1 + f.int(60)) : f.mutateBytes(utf8(json));
  return { kind: 'any', bytes: Buffer.from(raw.filter((b) => b !== 0x0a)) };
}

test('fuzz: the comparison loader loads every good line, reports every bad one at file:line, never crashes', async (t) => {
  const seed = fuzzSeed(t, 'comparison loader');
  const f = new Fuzz(seed);
  const dir = mkdtempSync(join(tmpdir(), 'hhkit-fuzz-data-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  let lines = 0;
  for (let i = 0; i < FILES; i++) {
    const generated = Array.from({ length: 1 + f.int(24) }, (_, k) => line(f, k));
    const file = writeFuzzFile(f, dir, `f${i}.jsonl`, generated);
    lines += generated.length;
    await fuzzCase(seed, i, { lines: generated, file: file.bytes }, async () => {
      const report = new LoadReport(10_000);
      const loaded = new Map<number, unknown>();
      for await (const entry of readComparisonEntries(file.path, { report, maxLineBytes: MAX_LINE_BYTES })) {
        assert.ok(!loaded.has(entry.line), `line ${entry.line} loaded twice`);
        assert.equal(entry.file, file.path);
        assert.equal(
          entry.record.chosen,
          entry.split.prompt + entry.split.chosenResponse,
          'the split loses nothing',
        );
        loaded.set(entry.line, entry.record);
      }
      const reported = new Map<number, string>();
      for (const [kind, tally] of report.defects) {
        assert.equal(tally.examples.length, tally.count, `every ${kind} line is listed`);
        for (const e of tally.examples) {
          assert.equal(e.file, file.path);
          assert.ok(!reported.has(e.line), `line ${e.line} reported twice`);
          reported.set(e.line, `${kind}: ${e.reason}`);
        }
      }
      const stopped = report.unreadable;
      assertAccounted(file, {
        loaded,
        reported,
        blankLines: report.blankLines,
        stoppedAt: stopped.length ? stopped[0]!.line : null,
      });
      assert.equal(report.valid, loaded.size);
      assert.equal(report.records, report.valid + report.skipped);
      if (file.stopsAt !== null)
        assert.match(
          report.warnings().join('\n'),
          new RegExp(`WARNING: .*:${file.stopsAt}: file stops here`),
        );

      // Strict: the load stops at the first reported line, naming file:line.
      const first = Math.min(...reported.keys());
      try {
        for await (const _ of readComparisonEntries(file.path, {
          strict: true,
          maxLineBytes: MAX_LINE_BYTES,
        })) {
          // drain
        }
        assert.equal(reported.size, 0, `a strict load passed over line ${first}`);
      } catch (err) {
        if (!(err instanceof DataFileError)) throw err;
        assert.equal(err.line, first, `strict stop: ${err.message}`);
        assert.ok(err.message.startsWith(`${file.path}:${first}: `), err.message);
        if (first !== file.stopsAt) assert.ok(err instanceof ComparisonFileError, err.message);
      }
    });
  }
  t.diagnostic(`${FILES} files, ${lines} lines`);
});
