// End to end through a real browser: `hhkit serve` on loopback with a tiny random checkpoint, Debian's
// chromium driven by playwright-core signs in, runs a two-step helpful dialogue, and the store then
// holds exactly those two comparisons; the admin page then revokes the worker's token. Needs /usr/bin/chromium (apt-get install chromium).
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadComparisons } from '../data/comparisons.ts';
import { newToken, Store } from '../store/store.ts';
import { saveTinyCheckpoint, startServer, tempDir } from './test-fixtures.ts';
import { launchChromium } from '../util/test-chromium.ts';

export const SCREENSHOT = join(tmpdir(), 'hhkit-serve-screenshot.png');

test('browser: sign in, two helpful steps with an edit, both comparisons stored and exportable', {
  timeout: 120_000,
}, async (t) => {
  const tmp = tempDir('hhkit-browser-');
  const dbPath = join(tmp.path, 'hhkit.db');
  const token = newToken();
  {
    using store = Store.open(dbPath);
    store.addWorker({ name: 'ana', role: 'crowdworker', token });
  }
  saveTinyCheckpoint(join(tmp.path, 'snap-a'), 1);
  saveTinyCheckpoint(join(tmp.path, 'snap-b'), 2);
  const server = await startServer([
    '--db',
    dbPath,
    '--models',
    `${join(tmp.path, 'snap-a')},${join(tmp.path, 'snap-b')}`,
    '--port',
    '0',
    '--max-new-tokens',
    '8',
    '--round',
    '2',
  ]);
  const context = await launchChromium(join(tmp.path, 'profile'), { width: 1000, height: 900 });
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${server.url}/`);
    await page.fill('#token', 'wrong-token');
    await page.click('#signin-form button');
    await page.waitForSelector('#status.error');
    await page.fill('#token', token);
    await page.click('#signin-form button');
    await page.waitForSelector('#work:not([hidden])');

    const step = async (text: string, choice: 'a' | 'b', strength: number, edit?: string) => {
      await page.fill('#message', text);
      await page.click('#send');
      await page.waitForSelector('#choose:not([hidden])', { timeout: 30_000 });
      await page.click(`.strength[data-choice="${choice}"][data-strength="${strength}"]`);
      if (edit !== undefined) await page.fill('#edit', edit);
    };
    await step('What is 3 plus 3? <b>bold?</b>', 'b', 3, 'It is 6.');
    await page.click('#submit-choice');
    await page.waitForSelector('#compose:not([hidden])');
    await step('And 4 plus 4?', 'a', 1);
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    t.diagnostic(`screenshot: ${SCREENSHOT}`);
    await page.click('#submit-choice');
    await page.locator('#who', { hasText: '2 comparisons' }).waitFor();
    // Text a worker typed is shown as text: no <b> element was created from it.
    assert.equal(await page.locator('#transcript b').count(), 0);
    assert.match((await page.locator('#transcript').textContent()) ?? '', /<b>bold\?<\/b>/);
    assert.deepEqual(errors, []);

    using store = Store.open(dbPath, { readonly: true });
    const rows = store.db
      .prepare(
        `SELECT c.choice, c.strength, c.edit, c.task, c.round_id AS round, w.name AS worker, v.prompt,
                ra.model_id IS NOT NULL AND rb.model_id IS NOT NULL AS hasModels, ra.sampling
           FROM comparisons c JOIN workers w ON w.id = c.worker_id JOIN conversations v ON v.id = c.conversation_id
           JOIN responses ra ON ra.id = c.response_a JOIN responses rb ON rb.id = c.response_b ORDER BY c.id`,
      )
      .all() as Record<string, unknown>[];
    assert.equal(rows.length, 2);
    assert.deepEqual(
      rows.map((r) => [
        r['choice'],
        r['strength'],
        r['edit'],
        r['task'],
        r['round'],
        r['worker'],
        r['hasModels'],
      ]),
      [
        ['b', 3, 'It is 6.', 'helpful', 2, 'ana', 1],
        ['a', 1, null, 'helpful', 2, 'ana', 1],
      ],
    );
    assert.equal(rows[0]!['prompt'], '\n\nHuman: What is 3 plus 3? <b>bold?</b>\n\nAssistant:');
    assert.equal(
      rows[1]!['prompt'],
      '\n\nHuman: What is 3 plus 3? <b>bold?</b>\n\nAssistant: It is 6.\n\nHuman: And 4 plus 4?\n\nAssistant:',
    );
    assert.equal(JSON.parse(rows[0]!['sampling'] as string).maxNewTokens, 8);

    // The admin export over HTTP loads as a comparison file.
    const res = await fetch(`${server.url}/api/admin/export`, {
      headers: { authorization: `Bearer ${server.adminToken}` },
    });
    assert.equal(res.status, 200);
    const file = join(tmp.path, 'export.jsonl');
    writeFileSync(file, await res.text());
    const { records, report } = await loadComparisons(file);
    assert.equal(records.length, 2);
    assert.equal(report.skipped, 0);
    assert.ok(records[1]!.chosen.startsWith(rows[1]!['prompt'] as string));
    assert.equal(records[0]!.worker, 'ana');

    // The admin page renders its tables with the admin token.
    await page.goto(`${server.url}/admin`);
    await page.fill('#token', server.adminToken);
    await page.click('#signin-form button');
    await page.waitForSelector('#panels:not([hidden])');
    await page.locator('#counts', { hasText: 'helpful' }).waitFor();
    await page.screenshot({ path: SCREENSHOT.replace('.png', '-admin.png'), fullPage: true });

    // Revoking ana's token from the workers table ends her sessions at once; her comparisons stay.
    page.on('dialog', (d) => d.accept());
    await page.locator('#workers tr', { hasText: 'ana' }).locator('button[data-action="revoke"]').click();
    await page.locator('#status', { hasText: "ana's token is revoked." }).waitFor();
    await page.locator('#workers tr', { hasText: 'ana' }).locator('text=revoked').waitFor();
    const me = await fetch(`${server.url}/api/me`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(me.status, 401);
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
    server.child.kill('SIGTERM');
    tmp.dispose();
  }
});
