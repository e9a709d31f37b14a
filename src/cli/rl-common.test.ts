import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { heldOutChosen } from './rl-common.ts';

test('heldOutChosen: the chosen responses of comparisons spread evenly over an ordered file (helpful first, harmless after), at most limit', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hhkit-heldout-'));
  try {
    const row = (task: string, i: number) =>
      JSON.stringify({
        chosen: `\n\nHuman: ${task} ${i}?\n\nAssistant: good`,
        rejected: `\n\nHuman: ${task} ${i}?\n\nAssistant: bad`,
        task,
      });
    const file = join(dir, 'test.jsonl');
    const rows = [
      ...Array.from({ length: 30 }, (_, i) => row('helpful', i)),
      ...Array.from({ length: 20 }, (_, i) => row('harmless', i)),
    ];
    writeFileSync(file, `${rows.join('\n')}\n`);
    const texts = await heldOutChosen(dir, 10, true, [file]);
    // 10 of 50 comparisons evenly: indices 0, 5, …, 45 → 6 helpful, 4 harmless (the first 10 would all be
    // helpful), chosen responses only.
    assert.equal(texts.length, 10);
    assert.equal(texts.filter((t) => t.includes('harmless')).length, 4, texts.join('|'));
    assert.ok(texts.every((t) => t.endsWith('good')));
    assert.equal(new Set(texts).size, 10);
    assert.equal((await heldOutChosen(dir, 400, true, [file])).length, 50, 'all of a small file');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
