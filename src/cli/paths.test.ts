// Issue 14: the wrong kind of path, a file that is not a database, a damaged checkpoint gave raw Node stack
// traces (or a good message with a stack and exit 1). Each is now one line, `hhkit: …`, and exit 2.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { type CliRun, runHhkit } from './test-cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'hhkit-cli-paths-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const corpus = join(dir, 'corpus.jsonl');
writeFileSync(corpus, `${JSON.stringify({ text: '\n\nHuman: hi\n\nAssistant: hello' })}\n`.repeat(40));
const notADb = join(dir, 'notes.db');
writeFileSync(notADb, 'these are my notes, not SQLite\n');
const pairs = join(dir, 'pairs.jsonl');
writeFileSync(
  pairs,
  '{"chosen": "\\n\\nHuman: a\\n\\nAssistant: b", "rejected": "\\n\\nHuman: a\\n\\nAssistant: c"}\n',
);
const folder = join(dir, 'a-folder');
mkdirSync(folder);
// A run folder whose latest checkpoint has a damaged trainer.json (cut short mid-write by hand).
const run = join(dir, 'run');
mkdirSync(join(run, 'checkpoints', 'step-000010'), { recursive: true });
writeFileSync(join(run, 'checkpoints', 'step-000010', 'trainer.json'), '{"step": 10, "config": {');
symlinkSync(join('checkpoints', 'step-000010'), join(run, 'checkpoint'));

// `progress`: the run prints its progress lines (tokenizer, data) before it meets the error.
const cases: { name: string; args: string[]; message: RegExp; progress?: boolean }[] = [
  {
    name: 'a folder as --data',
    args: ['pretrain', '--data', folder, '--out', join(dir, 'o1')],
    message: /--data .*a-folder: is a folder, expected a file/,
  },
  {
    name: 'a file as --out',
    args: ['pretrain', '--data', corpus, '--out', corpus],
    message: /--out .*corpus\.jsonl: is a file, expected a folder/,
  },
  {
    name: 'a folder as pm train --data',
    args: ['pm', 'train', '--data', folder, '--out', join(dir, 'o2')],
    message: /--data .*a-folder: is a folder, expected a file/,
  },
  {
    name: 'a file as data split --out',
    args: ['data', 'split', pairs, '--out', pairs],
    message: /--out .*pairs\.jsonl: is a file, expected a folder/,
  },
  {
    name: 'a non-SQLite --db (import)',
    args: ['data', 'import', pairs, '--db', notADb],
    message: /notes\.db: not an SQLite database/,
  },
  {
    name: 'a non-SQLite --db (elo, read-only)',
    args: ['elo', '--db', notADb],
    message: /notes\.db: not an SQLite database/,
  },
  {
    name: 'a folder as --db',
    args: ['data', 'export', '--db', folder, '--out', join(dir, 'x.jsonl')],
    message: /a-folder: is a folder, expected an SQLite database file/,
  },
  {
    name: 'a folder that is not a checkpoint as pm eval --model',
    args: ['pm', 'eval', '--model', folder, '--data', pairs],
    message: /a-folder.*config\.json/,
  },
  {
    name: 'a broken trainer.json on --resume',
    args: ['pretrain', '--data', corpus, '--out', run, '--resume', '--vocab-size', '300', '--steps', '20'],
    message: /trainer\.json: not a valid trainer state/,
    progress: true,
  },
];

/** One line, `hhkit: …`, last on stderr (alone unless the run had progress to show), no stack trace, exit 2. */
function assertOneLine(r: CliRun, message: RegExp, progress = false): void {
  assert.equal(r.code, 2, r.stderr);
  const lines = r.stderr.trim().split('\n');
  if (!progress) assert.equal(lines.length, 1, `expected one line, got:\n${r.stderr}`);
  assert.match(lines.at(-1)!, /^hhkit: /);
  assert.match(lines.at(-1)!, message);
  assert.equal(lines.filter((l) => l.startsWith('hhkit: ') || /^\s+at /.test(l)).length, 1, r.stderr);
}

for (const c of cases) {
  test(`${c.name}: one line, exit 2`, async () =>
    assertOneLine(await runHhkit(c.args), c.message, c.progress));
}
