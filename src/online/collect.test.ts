import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadCheckpoint, saveCheckpoint } from '../nn/checkpoint.ts';
import { createCausalLM } from '../nn/hf-config.ts';
import { Store } from '../store/store.ts';
import { collectSimulated, roundComparisons } from './collect.ts';
import { readCrowd, readWorldPrompts } from './data.ts';
import { registerSnapshot } from './snapshots.ts';
import { tinyOnline } from './test-fixtures.ts';

test('simulated collection: cut short and resumed, it stores exactly what an uninterrupted one does', async () => {
  const fx = await tinyOnline(5);
  // A second, different snapshot: same tokenizer, other weights.
  const other = join(fx.dir, 'other');
  const { family } = loadCheckpoint(fx.init);
  saveCheckpoint(other, {
    model: createCausalLM(family, { seed: 99 }),
    meta: { kind: 'policy', lineage: [] },
    tokenizerPath: join(fx.init, 'tokenizer.json'),
  });
  const crowd = readCrowd(fx.world);
  const prompts = readWorldPrompts(fx.world).train;
  const collect = async (store: Store, targets: number[]) => {
    const deployed = [
      registerSnapshot(store, {
        from: fx.init,
        modelsDir: join(fx.dir, `models-${store.path.length}`),
        name: 'base',
      }),
      registerSnapshot(store, {
        from: other,
        modelsDir: join(fx.dir, `models-${store.path.length}`),
        name: 'other',
      }),
    ];
    for (const target of targets) {
      await collectSimulated({
        store,
        round: 1,
        deployed,
        target,
        prompts,
        crowd,
        sampling: { maxNewTokens: 8, temperature: 1, topP: 0.95 },
        batch: 4,
        seed: 7,
      });
    }
    return store.db
      .prepare(
        `SELECT v.prompt, c.choice, c.strength, c.task, w.name AS worker, ra.text AS a, rb.text AS b, ma.name AS ma, mb.name AS mb
           FROM comparisons c JOIN conversations v ON v.id = c.conversation_id JOIN workers w ON w.id = c.worker_id
           JOIN responses ra ON ra.id = c.response_a JOIN responses rb ON rb.id = c.response_b
           JOIN models ma ON ma.id = ra.model_id JOIN models mb ON mb.id = rb.model_id ORDER BY c.id`,
      )
      .all();
  };
  using straight = Store.open(join(fx.dir, 'a.db'));
  using resumed = Store.open(join(fx.dir, 'bb.db'));
  const once = await collect(straight, [10]);
  // 7 is mid-batch (batches of 4): the resumed run must redo batch 2 and skip its first 3 items.
  const twice = await collect(resumed, [7, 10]);
  assert.equal(roundComparisons(resumed, 1), 10);
  assert.deepEqual(twice, once);
  const rows = once as { ma: string; mb: string; choice: string }[];
  assert.ok(rows.every((r) => r.ma !== r.mb));
  assert.ok(new Set(rows.map((r) => r.ma)).size === 2, 'both snapshots are shown first some of the time');
});
