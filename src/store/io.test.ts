import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { gunzipSync, gzipSync } from 'node:zlib';
import { ComparisonFileError, writeComparisons } from '../data/comparisons.ts';
import { DEFECT_KINDS, LoadReport, NOTE_KINDS } from '../data/report.ts';
import { plantedDefectsFile } from '../data/test-fixtures.ts';
import type { ComparisonRecord } from '../data/types.ts';
import { exportComparisons, importComparisons } from './io.ts';
import { Store } from './store.ts';

const dir = mkdtempSync(join(tmpdir(), 'hhkit-io-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('export(import(file)) reproduces every valid line byte-for-byte; defects counted exactly', async () => {
  const planted = plantedDefectsFile();
  const src = join(dir, 'planted.jsonl');
  writeFileSync(src, planted.bytes);
  using store = Store.open(join(dir, 'rt.db'));
  const report = new LoadReport();
  const { imported } = await importComparisons(store, src, { report, maxLineBytes: planted.maxLineBytes });
  assert.equal(imported, planted.validLines.length);
  assert.equal(store.countComparisons(), planted.validLines.length);
  for (const kind of DEFECT_KINDS)
    assert.equal(report.defects.get(kind)?.count ?? 0, planted.defects[kind] ?? 0, kind);
  for (const kind of NOTE_KINDS)
    assert.equal(report.notes.get(kind)?.count ?? 0, planted.notes[kind] ?? 0, kind);

  const out = join(dir, 'exported.jsonl');
  assert.equal(await exportComparisons(store, out), planted.validLines.length);
  const expected = Buffer.from(`${planted.validLines.join('\n')}\n`);
  assert.ok(readFileSync(out).equals(expected), 'exported bytes differ from the valid lines of the input');
  // Most lines were rebuilt from rows, not copied: only the three lines no style reproduces are kept verbatim.
  const verbatim = store.db.prepare('SELECT count(*) FROM comparisons WHERE line IS NOT NULL').pluck().get();
  assert.equal(verbatim, 3);
});

test('round trip of hhkit-written files in every style, gzipped, with all optional keys', async () => {
  const P = '\n\nHuman: Spell "cat" backwards.\n\nAssistant:';
  const records: ComparisonRecord[] = Array.from({ length: 300 }, (_, i) => ({
    chosen: `${P} tac ${i} — ✓`,
    rejected: `${P} act ${i}`,
    ...(i % 2 ? { prompt: P } : {}),
    ...(i % 3 ? { task: i % 3 === 1 ? ('helpful' as const) : ('harmless' as const) } : {}),
    ...(i % 5 ? { source: 'world:seed=3', worker: `w${i % 7}` } : {}),
    ...(i % 4 ? { strength: (i % 8) / 4, round: i % 3 } : {}),
  }));
  for (const style of ['hh', 'hh-utf8', 'compact'] as const) {
    const src = join(dir, `w-${style}.jsonl.gz`);
    await writeComparisons(src, records, style);
    using store = Store.open(':memory:');
    await importComparisons(store, src);
    // Rebuilt from rows (no verbatim copies needed for hhkit's own styles).
    assert.equal(
      store.db.prepare('SELECT count(*) FROM comparisons WHERE line IS NOT NULL').pluck().get(),
      0,
    );
    const out = join(dir, `e-${style}.jsonl.gz`);
    await exportComparisons(store, out);
    assert.ok(gunzipSync(readFileSync(out)).equals(gunzipSync(readFileSync(src))), `style ${style}`);
  }
});

test('an import is all or nothing: a strict-mode defect rolls back every record before it', async () => {
  const planted = plantedDefectsFile();
  const src = join(dir, 'strict.jsonl.gz');
  writeFileSync(src, gzipSync(planted.bytes));
  using store = Store.open(':memory:');
  await assert.rejects(importComparisons(store, src, { strict: true }), ComparisonFileError);
  assert.equal(store.countComparisons(), 0);
  assert.equal(store.db.inTransaction, false);
  // The store is still usable afterwards.
  const { imported } = await importComparisons(store, src, { maxLineBytes: planted.maxLineBytes });
  assert.equal(imported, planted.validLines.length);
});
