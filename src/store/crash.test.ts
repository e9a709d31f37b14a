import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { comparisonRecord } from './records.ts';
import { Store } from './store.ts';

const dir = mkdtempSync(join(tmpdir(), 'hhkit-crash-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const here = dirname(fileURLToPath(import.meta.url));
const writer = join(here, 'crash-writer.ts');

test('SIGKILL during a stream of inserts: the db opens, passes integrity_check, holds every reported id', async () => {
  const path = join(dir, 'crash.db');
  Store.open(path).close(); // schema in place before the child starts, so it only inserts
  const child = spawn(process.execPath, ['--import', 'tsx', writer, path, '1000000'], {
    stdio: ['ignore', 'pipe', 'inherit'],
    cwd: join(here, '..', '..'), // so `--import tsx` resolves from the repo's node_modules
  });
  const exited = new Promise<NodeJS.Signals | null>((resolve) =>
    child.on('exit', (_code, signal) => resolve(signal)),
  );
  const reported: number[] = [];
  const killAfter = 400;
  // Kill when the child's own output says it is mid-stream (no timers involved), then keep
  // reading: every line that still arrives was printed after its commit returned.
  for await (const line of createInterface({ input: child.stdout })) {
    reported.push(Number(line));
    if (reported.length === killAfter) child.kill('SIGKILL');
  }
  assert.equal(await exited, 'SIGKILL');
  assert.ok(reported.length >= killAfter, `child reported only ${reported.length} ids`);
  assert.ok(existsSync(`${path}-wal`), 'the kill left a WAL file to recover');

  const raw = new Database(path);
  assert.equal(raw.pragma('integrity_check', { simple: true }), 'ok');
  raw.close();
  using store = Store.open(path);
  const present = new Set(store.db.prepare('SELECT id FROM comparisons').pluck().all() as number[]);
  const missing = reported.filter((id) => !present.has(id));
  assert.deepEqual(missing, []);
  // Each reported comparison is whole: its conversation, responses and worker rows are there too.
  const last = reported.at(-1)!;
  assert.match(comparisonRecord(store, last)?.chosen ?? '', /Assistant: 6 \(\d+\)$/);
  assert.deepEqual(store.db.pragma('foreign_key_check'), []);
  console.log(
    `# child reported ${reported.length} ids; ${present.size} comparisons in the db after the kill`,
  );
});
