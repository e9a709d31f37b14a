import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Store } from '../store/store.ts';
import { ModelPool } from './models.ts';
import { cutAtTurnMarker } from './protocol.ts';
import { saveTinyCheckpoint, tempDir } from './test-fixtures.ts';

test('cutAtTurnMarker ends a response at the next turn marker', () => {
  assert.equal(cutAtTurnMarker(' Paris.\n\nHuman: and Spain?'), ' Paris.');
  assert.equal(cutAtTurnMarker(' a\n\nAssistant: b'), ' a');
  assert.equal(cutAtTurnMarker(' whole'), ' whole');
});

test('ModelPool serves two checkpoints from worker threads, registered in the store, seeded', async () => {
  const tmp = tempDir('hhkit-models-');
  using store = Store.open(join(tmp.path, 'db.sqlite'));
  saveTinyCheckpoint(join(tmp.path, 'snap-a'), 1);
  saveTinyCheckpoint(join(tmp.path, 'snap-b'), 2, 'policy-r2');
  const pool = await ModelPool.start(store, [join(tmp.path, 'snap-a'), join(tmp.path, 'snap-b')], {
    timeoutMs: 20_000,
  });
  try {
    assert.deepEqual(
      pool.deployed.map((m) => m.name),
      ['snap-a', 'policy-r2'],
    );
    const rows = store.db.prepare('SELECT id, name, kind FROM models ORDER BY id').all();
    assert.deepEqual(rows, [
      { id: pool.deployed[0]!.id, name: 'snap-a', kind: 'policy' },
      { id: pool.deployed[1]!.id, name: 'policy-r2', kind: 'policy' },
    ]);
    const prompt = '\n\nHuman: what is 3 plus 3?\n\nAssistant:';
    const sampling = { maxNewTokens: 12, temperature: 1, topP: 1, seed: 7 };
    const started = Date.now();
    const [a, b] = await Promise.all([
      pool.sample('snap-a', prompt, 2, sampling),
      pool.sample('policy-r2', prompt, 1, sampling),
    ]);
    // Seeded replay is exact when nothing else samples meanwhile: torch's CPU generator is one per process,
    // shared by the worker threads, so the two calls above may have interleaved on it.
    const alone = await pool.sample('snap-a', prompt, 2, sampling);
    assert.equal(a.length, 2);
    assert.equal(b.length, 1);
    for (const text of [...a, ...b]) {
      assert.ok(
        !text.includes('\n\nHuman:') && !text.includes('\n\nAssistant:'),
        `turn marker in ${JSON.stringify(text)}`,
      );
    }
    // Same seed, same model, same prompt: the same text (the worker restores nothing between jobs).
    const again = await pool.sample('snap-a', prompt, 2, sampling);
    assert.deepEqual(again, alone);
    // A random model almost never repeats itself across two seeds over 12 tokens.
    const other = await pool.sample('snap-a', prompt, 2, { ...sampling, seed: 8 });
    assert.notDeepEqual(other, alone);
    assert.ok(Date.now() - started < 20_000);
    // Re-deploying the same folders reuses the rows instead of adding new ones.
    const again2 = await ModelPool.start(store, [join(tmp.path, 'snap-a')]);
    assert.equal(again2.deployed[0]!.id, pool.deployed[0]!.id);
    await again2.close();
  } finally {
    await pool.close();
    tmp.dispose();
  }
});

test('ModelPool refuses at start a checkpoint whose weights hold NaN, naming the file and the tensor', async () => {
  const tmp = tempDir('hhkit-models-nan-');
  using store = Store.open(join(tmp.path, 'db.sqlite'));
  const dir = join(tmp.path, 'diverged');
  saveTinyCheckpoint(dir, 3);
  // Two NaN floats at the start of the token embedding (a diverged run, or flipped bytes).
  const weights = join(dir, 'model.safetensors');
  const bytes = readFileSync(weights);
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8'));
  const start = 8 + headerLength + (header['transformer.wte.weight'].data_offsets[0] as number);
  bytes.fill(0xff, start, start + 8);
  writeFileSync(weights, bytes);
  const refused = await ModelPool.start(store, [dir], { timeoutMs: 20_000 }).then(
    async (pool) => {
      await pool.close(); // started after all: stop its worker, or the test would hang here
      return null;
    },
    (err: Error) => err,
  );
  assert.ok(refused, 'start() refuses the model');
  assert.ok(
    refused.message.includes(
      `model ${dir}: worker failed: ${weights}: tensor 'transformer.wte.weight' holds 2 NaN/±Inf value(s)`,
    ) && refused.message.includes('--allow-nonfinite'),
    refused.message,
  );
  assert.deepEqual(store.db.prepare('SELECT name FROM models').all(), [], 'nothing registered');
  const allowed = await ModelPool.start(store, [dir], { timeoutMs: 20_000, allowNonFinite: true });
  assert.deepEqual(
    allowed.deployed.map((m) => m.name),
    ['diverged'],
  );
  await allowed.close();
  tmp.dispose();
});
