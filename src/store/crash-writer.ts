/**
 * Test helper for crash.test.ts (run as a child process): inserts comparisons one by one into the
 * store given as argv[2], printing each id on stdout only after its transaction returned. The test
 * SIGKILLs it mid-stream. Stops by itself after argv[3] inserts (a guard, should the parent die).
 */
import { writeSync } from 'node:fs';
import { insertComparisonRecord } from './records.ts';
import { Store } from './store.ts';

const [path, limitArg] = process.argv.slice(2);
if (!path) throw new Error('usage: crash-writer.ts DB [LIMIT]');
const limit = Number(limitArg ?? 1_000_000);
const store = Store.open(path);
const P = '\n\nHuman: Count the letters in "banana".\n\nAssistant:';
for (let i = 0; i < limit; i++) {
  const id = insertComparisonRecord(store, {
    chosen: `${P} 6 (${i})`,
    rejected: `${P} ${'5 '.repeat(1 + (i % 50))}`,
    task: 'helpful',
    worker: `w${i % 10}`,
    round: 1,
  });
  // writeSync: the id reaches the pipe before the next insert starts, with no buffering in between.
  writeSync(1, `${id}\n`);
}
store.close();
