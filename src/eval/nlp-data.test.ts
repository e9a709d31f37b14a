// Eval and prompt files (hhkit eval, hhkit ood) that stop mid-way: the lines before the break are used, the
// break is one `lost` skip at file:line (not a zlib error without a file name), and strict makes it an error.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { constants, gunzipSync, gzipSync } from 'node:zlib';
import { DataFileError } from '../data/errors.ts';
import { loadPrompts } from './nlp-data.ts';

const dir = mkdtempSync(join(tmpdir(), 'hhkit-nlpdata-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('a truncated .gz prompt file: the prompts before the break, one lost skip at file:line; strict throws', () => {
  const lines = Array.from({ length: 2000 }, (_, i) =>
    JSON.stringify({ prompt: `\n\nHuman: ${i}?\n\nAssistant:` }),
  );
  const gz = gzipSync(`${lines.join('\n')}\n`);
  const cut = gz.subarray(0, Math.floor(gz.length * 0.5));
  const path = join(dir, 'ood-harmful.jsonl.gz');
  writeFileSync(path, cut);
  const complete =
    gunzipSync(cut, { finishFlush: constants.Z_SYNC_FLUSH }).toString('utf8').split('\n').length - 1;
  const { prompts, skipped } = loadPrompts(path);
  assert.equal(prompts.length, complete);
  assert.deepEqual(
    skipped.map((s) => [s.where, s.lost]),
    [[`${path}:${complete + 1}`, true]],
  );
  assert.match(skipped[0]!.reason, /file stops here \(unexpected end of file\)/);
  assert.throws(
    () => loadPrompts(path, { strict: true }),
    (err: unknown) => {
      assert.ok(err instanceof DataFileError);
      assert.equal(err.line, complete + 1);
      return true;
    },
  );
  assert.throws(() => loadPrompts(dir), {
    name: 'FilePathError',
    message: /is a directory, expected a file/,
  });
});
