// The LM corpus reader on a file that stops mid-way: the documents before the break are kept, the break is
// reported with file:line (never a raw zlib error), and strict turns it and any bad line into a DataFileError.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { DataFileError } from '../data/errors.ts';
import { corpusWarnings, newCorpusReport, readCorpusDocuments } from './corpus.ts';

const dir = mkdtempSync(join(tmpdir(), 'hhkit-corpus-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const lines = Array.from({ length: 2000 }, (_, i) =>
  JSON.stringify({ text: `\n\nHuman: ${i}?\n\nAssistant: ${i}.` }),
);

async function read(path: string, strict = false) {
  const report = newCorpusReport();
  const texts: string[] = [];
  for await (const docs of readCorpusDocuments(path, report, { strict }))
    for (const d of docs) texts.push(d.text);
  return { texts, report };
}

test('a truncated .gz corpus keeps the documents before the break and reports where it stopped', async () => {
  const gz = gzipSync(`${lines.join('\n')}\n`);
  const path = join(dir, 'cut.jsonl.gz');
  writeFileSync(path, gz.subarray(0, Math.floor(gz.length * 0.5)));
  const { texts, report } = await read(path);
  assert.ok(texts.length > 0 && texts.length < 2000, `got ${texts.length}`);
  for (const [i, t] of texts.entries()) assert.equal(t, `\n\nHuman: ${i}?\n\nAssistant: ${i}.`);
  assert.equal(report.skipped, 1);
  assert.deepEqual(report.stoppedAt && [report.stoppedAt.file, report.stoppedAt.line], [
    path,
    texts.length + 1,
  ]);
  assert.match(
    corpusWarnings(report)[0] ?? '',
    new RegExp(`^WARNING: ${path}:${texts.length + 1}: file stops here`),
  );
  await assert.rejects(read(path, true), (err: unknown) => {
    assert.ok(err instanceof DataFileError);
    assert.equal(err.line, texts.length + 1);
    return true;
  });
});

test('a corrupt .gz and a bad line under strict are DataFileErrors naming file:line', async () => {
  const gz = gzipSync(`${lines.join('\n')}\n`);
  gz.fill(0x55, 100, 140);
  const path = join(dir, 'corrupt.jsonl.gz');
  writeFileSync(path, gz);
  assert.equal((await read(path)).report.stoppedAt?.file, path);
  const bad = join(dir, 'bad.jsonl');
  writeFileSync(bad, `${lines[0]}\nnot json\n${lines[1]}\n`);
  assert.deepEqual((await read(bad)).report.examples.length, 1);
  await assert.rejects(read(bad, true), {
    name: 'DataFileError',
    message: new RegExp(`^${bad}:2: invalid JSON`),
  });
});
