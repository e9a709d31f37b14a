import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import {
  ComparisonFileError,
  type ComparisonRecord,
  LoadReport,
  loadComparisons,
  readComparisonEntries,
  readComparisons,
  writeComparisons,
} from './comparisons.ts';
import { detectLineStyle, formatComparison } from './format.ts';
import { DEFECT_KINDS, NOTE_KINDS } from './report.ts';
import { assignSplit, hashUnit } from './split.ts';
import { plantedDefectsFile } from './test-fixtures.ts';

const dir = mkdtempSync(join(tmpdir(), 'hhkit-data-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const P = '\n\nHuman: 2+2?\n\nAssistant:';
const sample: ComparisonRecord[] = [
  { chosen: `${P} 4`, rejected: `${P} 5` },
  { chosen: `${P} four 🎉`, rejected: `${P} fünf`, task: 'harmless', worker: 'w1', strength: 3, round: 1 },
  { chosen: `${P} 4`, rejected: `${P} 22`, prompt: P, source: 'test' },
];

test('write then read gives the same records, plain and gzipped', async () => {
  for (const name of ['s.jsonl', 's.jsonl.gz']) {
    const path = join(dir, name);
    assert.equal(await writeComparisons(path, sample), 3);
    const { records, report } = await loadComparisons(path);
    assert.deepEqual(records, sample);
    assert.equal(report.valid, 3);
    assert.equal(report.skipped, 0);
  }
  const gz = readFileSync(join(dir, 's.jsonl.gz'));
  assert.deepEqual([gz[0], gz[1]], [0x1f, 0x8b]);
});

test('the default line style is the HH release style; async iterables are accepted', async () => {
  const path = join(dir, 'style.jsonl');
  async function* gen() {
    yield sample[1]!;
  }
  await writeComparisons(path, gen());
  const line = readFileSync(path, 'utf8');
  assert.equal(line, `${formatComparison(sample[1]!, 'hh')}\n`);
  assert.ok(line.startsWith('{"chosen": "\\n\\nHuman: 2+2?'));
  assert.ok(
    line.includes('\\ud83c\\udf89') && line.includes('f\\u00fcnf'),
    'non-ASCII is escaped like json.dumps',
  );
  assert.ok(line.includes('"task": "harmless", "worker": "w1", "strength": 3, "round": 1}'));
});

test('a failed write leaves the previous file in place and no temp file behind', async () => {
  const path = join(dir, 'atomic.jsonl');
  await writeComparisons(path, sample);
  const before = readFileSync(path, 'utf8');
  function* failing(): Generator<ComparisonRecord> {
    yield sample[0]!;
    throw new Error('producer failed');
  }
  await assert.rejects(writeComparisons(path, failing()), /producer failed/);
  assert.equal(readFileSync(path, 'utf8'), before);
  assert.deepEqual(
    readdirSync(dir).filter((f) => f.includes('.tmp-')),
    [],
  );
});

test('line styles are detected from the line text', () => {
  const r = sample[1]!;
  for (const style of ['hh', 'hh-utf8', 'compact'] as const) {
    assert.equal(detectLineStyle(formatComparison(r, style), r), style);
  }
  assert.equal(detectLineStyle(`${formatComparison(r, 'compact')} `, r), null);
});

test('planted defects: exact counts per kind, every valid line kept in order', async () => {
  const planted = plantedDefectsFile();
  const path = join(dir, 'planted.jsonl');
  writeFileSync(path, planted.bytes);
  const report = new LoadReport();
  const entries = [];
  for await (const e of readComparisonEntries(path, { report, maxLineBytes: planted.maxLineBytes }))
    entries.push(e);
  assert.deepEqual(
    entries.map((e) => e.raw),
    planted.validLines,
  );
  assert.equal(report.records, planted.records);
  assert.equal(report.valid, planted.validLines.length);
  assert.equal(report.blankLines, planted.blankLines);
  for (const kind of DEFECT_KINDS) {
    assert.equal(report.defects.get(kind)?.count ?? 0, planted.defects[kind] ?? 0, `defect ${kind}`);
  }
  for (const kind of NOTE_KINDS) {
    assert.equal(report.notes.get(kind)?.count ?? 0, planted.notes[kind] ?? 0, `note ${kind}`);
  }
  // Locations point at the real line: line 2 of the file is the first planted defect.
  assert.deepEqual(report.defects.get('invalid-json')?.examples[0], {
    file: path,
    line: 2,
    reason: report.defects.get('invalid-json')?.examples[0]?.reason,
  });
  assert.match(report.defects.get('missing-key')?.examples[0]?.reason ?? '', /missing key "rejected"/);
  // Nulls are absent, unknown keys dropped, keys in canonical order.
  const withNull = entries.find((e) => e.raw.includes('"worker": null'));
  assert.deepEqual(withNull?.record, {
    chosen: `${withNull?.record.chosen}`,
    rejected: withNull?.record.rejected,
    strength: 1,
  });
  const json = JSON.parse(JSON.stringify(report));
  assert.equal(json.defects['bad-value'].count, 4);
  assert.equal(json.stats.promptTurns.count, planted.validLines.length);
});

test('strict mode throws a typed error naming file:line at the first bad line', async () => {
  const planted = plantedDefectsFile();
  const path = join(dir, 'strict.jsonl');
  writeFileSync(path, planted.bytes);
  let seen = 0;
  await assert.rejects(
    (async () => {
      for await (const _ of readComparisons(path, { strict: true })) seen++;
    })(),
    (err: unknown) =>
      err instanceof ComparisonFileError &&
      err.line === 2 &&
      err.kind === 'invalid-json' &&
      err.message.startsWith(`${path}:2:`),
  );
  assert.equal(seen, 1);
});

test('a truncated gzip is one "unreadable" defect after the lines that did arrive', async () => {
  const lines = Array.from({ length: 2000 }, (_, i) =>
    formatComparison({ chosen: `${P} ${i}`, rejected: `${P} x${i}` }),
  );
  const gz = gzipSync(`${lines.join('\n')}\n`);
  const path = join(dir, 'cut.jsonl.gz');
  writeFileSync(path, gz.subarray(0, Math.floor(gz.length * 0.6)));
  const { records, report } = await loadComparisons(path);
  assert.ok(records.length > 0 && records.length < 2000, `got ${records.length}`);
  assert.equal(report.defects.get('unreadable')?.count, 1);
  // Every record that arrived is intact (no half line passed as valid).
  for (const [i, r] of records.entries()) assert.equal(r.chosen, `${P} ${i}`);
  // The lost tail counts as a skipped record, so a caller that reports only when skipped > 0 still reports it,
  // and it is a loud warning naming file:line (the first line not read).
  const stop = records.length + 1;
  assert.equal(report.skipped, 1);
  assert.deepEqual(report.summary().unreadable, [`${path}:${stop}`]);
  assert.deepEqual(report.warnings(), [
    `WARNING: ${path}:${stop}: file stops here (unexpected end of file); the rest of the file is lost, only the lines before it were read`,
  ]);
  assert.match(report.format(), /^WARNING: /);
  await assert.rejects(loadComparisons(path, { strict: true }), (err: unknown) => {
    assert.ok(err instanceof ComparisonFileError);
    assert.equal(err.kind, 'unreadable');
    assert.equal(err.line, stop);
    return true;
  });
});

test('a plain file that starts with the gzip magic bytes is read as gzip and said to stop at line 1', async () => {
  // Found by the loader's fuzz test: a first line of random bytes beginning 1f 8b.
  const path = join(dir, 'magic.jsonl');
  writeFileSync(
    path,
    Buffer.concat([
      Buffer.from([0x1f, 0x8b, 0xbe, 0xa5]),
      Buffer.from(`\n${formatComparison(sample[0]!)}\n`),
    ]),
  );
  const { records, report } = await loadComparisons(path);
  assert.equal(records.length, 0);
  assert.deepEqual(report.summary().unreadable, [`${path}:1`]);
  assert.match(
    report.warnings().join('\n'),
    /:1: file stops here \(.*read as gzip: its first bytes are the gzip magic 1f 8b\)/,
  );
});

test('a missing file or a folder is an error naming the path, not a defect', async () => {
  await assert.rejects(loadComparisons(join(dir, 'nope.jsonl')), {
    name: 'FilePathError',
    message: `${join(dir, 'nope.jsonl')}: file not found`,
  });
  await assert.rejects(loadComparisons(dir), {
    name: 'FilePathError',
    message: /is a directory, expected a file/,
  });
});

test('a report accumulates over several files', async () => {
  const a = join(dir, 'a.jsonl');
  const b = join(dir, 'b.jsonl.gz');
  await writeComparisons(a, sample);
  await writeComparisons(b, sample.slice(0, 2));
  const { records, report } = await loadComparisons([a, b]);
  assert.equal(records.length, 5);
  assert.deepEqual(report.files, [a, b]);
  assert.equal(report.valid, 5);
  assert.match(report.format(), /records: 5 \(5 valid, 0 skipped/);
});

test('splits are deterministic, near the asked fraction, and keep a conversation together', () => {
  const records: ComparisonRecord[] = Array.from({ length: 4000 }, (_, i) => ({
    chosen: `\n\nHuman: question ${i}\n\nAssistant: yes`,
    rejected: `\n\nHuman: question ${i}\n\nAssistant: no`,
  }));
  const splits = records.map((r) => assignSplit(r, 0.1));
  const testFrac = splits.filter((s) => s === 'test').length / records.length;
  assert.ok(testFrac > 0.08 && testFrac < 0.12, `test fraction ${testFrac}`);
  assert.deepEqual(
    records.map((r) => assignSplit(r, 0.1)),
    splits,
  );
  assert.notDeepEqual(
    records.map((r) => assignSplit(r, 0.1, 1)),
    splits,
  );
  // Two comparisons at different turns of the same conversation land together.
  const later: ComparisonRecord = {
    chosen: '\n\nHuman: question 7\n\nAssistant: yes\n\nHuman: sure?\n\nAssistant: yes',
    rejected: '\n\nHuman: question 7\n\nAssistant: yes\n\nHuman: sure?\n\nAssistant: no',
  };
  assert.equal(assignSplit(later, 0.5), assignSplit(records[7]!, 0.5));
  assert.equal(hashUnit('x', 0), hashUnit('x', 0));
});
