import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { readRunInputs } from '../report/inputs.ts';
import { Store } from '../store/store.ts';
import { type OnlineConfig, resolveOnlineConfig } from './config.ts';
import { readWorldPrompts } from './data.ts';
import { type OnlineEvent, runOnline } from './rounds.ts';
import { tinyOnline } from './test-fixtures.ts';

const tinyConfig = (world: string, init: string, out: string): OnlineConfig =>
  resolveOnlineConfig({
    world,
    init,
    out,
    rounds: 2,
    comparisonsPerRound: 24,
    evalComparisons: 24,
    collectBatch: 8,
    maxNewTokens: 10,
    evalPrompts: 8,
    bootstrap: 50,
    pm: { steps: 3, batchSize: 8, lrMultiplier: 0.1 },
    ppo: { steps: 2, batchSize: 8, miniBatchSize: 8, ppoEpochs: 1, maxNewTokens: 10, checkpointEvery: 1 },
  });

// A run stopped by an error at a stage boundary; kill -9 at random moments (inside stages and writes) is
// src/cli/online-kill.test.ts.
test("a 2-round online run on a tiny world: a run stopped as round 1's PPO starts reruns without redoing finished stages; table, store, Elo", async () => {
  const fx = await tinyOnline(3);
  const config = tinyConfig(fx.world, fx.init, join(fx.dir, 'online'));

  // 1. A run stopped (an error thrown) when round 1's PPO starts (its deploy, collect, data and PM
  //    stages are finished).
  class Stopped extends Error {}
  await assert.rejects(
    runOnline(config, {
      onEvent: (e) => {
        if (e.type === 'stage' && e.round === 1 && e.stage === 'ppo' && e.status === 'started')
          throw new Stopped();
      },
    }),
    Stopped,
  );
  const midState = JSON.parse(readFileSync(join(config.out, 'state.json'), 'utf8')) as {
    rounds: { round: number; pm?: unknown; ppo?: unknown }[];
  };
  assert.ok(midState.rounds.find((r) => r.round === 1)?.pm, 'round 1 PM finished before the stop');
  assert.equal(midState.rounds.find((r) => r.round === 1)?.ppo, undefined);

  // 2. The rerun skips every finished stage and continues with round 1's PPO.
  const events: OnlineEvent[] = [];
  const result = await runOnline(config, { onEvent: (e) => events.push(e) });
  const status = (round: number, stage: string) =>
    events.find((e) => e.type === 'stage' && e.round === round && e.stage === stage && e.status !== 'done')
      ?.type === 'stage'
      ? (
          events.find((e) => e.type === 'stage' && e.round === round && e.stage === stage) as {
            status: string;
          }
        ).status
      : 'absent';
  for (const stage of ['data', 'pm', 'ppo', 'register', 'evaluate'])
    assert.equal(status(0, stage), 'skipped', `round 0 ${stage}`);
  for (const stage of ['deploy', 'collect', 'data', 'pm'])
    assert.equal(status(1, stage), 'skipped', `round 1 ${stage}`);
  for (const stage of ['ppo', 'register', 'evaluate'])
    assert.equal(status(1, stage), 'started', `round 1 ${stage}`);
  assert.equal(status(2, 'collect'), 'started');

  // 3. The table: one row per round, PM trained on the static data plus every round so far.
  assert.deepEqual(
    result.rows.map((r) => r.round),
    [0, 1, 2],
  );
  assert.deepEqual(
    result.rows.map((r) => r.newComparisons),
    [0, 24, 24],
  );
  assert.equal(result.rows[1]!.comparisons, result.rows[0]!.comparisons + 24);
  assert.equal(result.rows[0]!.comparisons, 72, 'the tiny world has 48 + 24 static training comparisons');
  for (const r of result.rows) {
    assert.ok(r.gold >= 0 && r.gold <= 1, `gold HH ${r.gold}`);
    assert.ok(r.pmCrowdAccuracy >= 0 && r.pmCrowdAccuracy <= 1);
    assert.ok(
      r.elo !== undefined && r.lower! <= r.elo && r.elo <= r.upper!,
      `Elo ${r.elo} in [${r.lower}, ${r.upper}]`,
    );
    assert.ok(Number.isFinite(r.pmElo));
  }
  assert.match(result.table, /policy-r2/);
  assert.ok(existsSync(result.files.table) && existsSync(result.files.metrics));

  // 4. The store: simulated comparisons with their round and both (different) model ids, and lineage.
  using store = Store.open(result.files.store, { mustExist: true });
  const rows = store.db
    .prepare(
      `SELECT c.round_id AS round, c.source, c.task, c.worker_id AS worker, ra.model_id AS a, rb.model_id AS b
         FROM comparisons c JOIN responses ra ON ra.id = c.response_a JOIN responses rb ON rb.id = c.response_b
        WHERE c.round_id > 0`,
    )
    .all() as {
    round: number;
    source: string;
    task: string;
    worker: number | null;
    a: number | null;
    b: number | null;
  }[];
  assert.equal(rows.length, 24 * 3, 'rounds 1, 2 and the closing round 3, no duplicates after the resume');
  assert.deepEqual([...new Set(rows.map((r) => r.round))].sort(), [1, 2, 3]);
  assert.ok(
    rows.every(
      (r) => r.source === 'simulated' && r.worker !== null && r.a !== null && r.b !== null && r.a !== r.b,
    ),
  );
  assert.ok(rows.some((r) => r.task === 'red-team') && rows.some((r) => r.task === 'helpful'));
  const policy = store.db.prepare("SELECT id FROM models WHERE name = 'policy-r2'").get() as { id: number };
  assert.deepEqual(
    store.lineage(policy.id).map((m) => m.name),
    ['policy-r2', 'base'],
  );
  const lastDeploy = store.db
    .prepare(
      'SELECT DISTINCT ra.model_id AS id FROM comparisons c JOIN responses ra ON ra.id = c.response_a WHERE c.round_id = 3',
    )
    .all();
  assert.equal(lastDeploy.length, 4, 'the closing round deploys base and all three policies');
  // The closing round rates the held-out prompts (those gold HH is measured on: the first evalPrompts of
  // the static set); the training rounds draw the generated RL prompts only.
  const worldPrompts = readWorldPrompts(fx.world);
  const heldOut = new Set(worldPrompts.eval.slice(0, config.evalPrompts).map((p) => p.prompt));
  const promptsOf = (round: number) =>
    (
      store.db
        .prepare(
          'SELECT DISTINCT v.prompt FROM comparisons c JOIN conversations v ON v.id = c.conversation_id WHERE c.round_id = ?',
        )
        .all(round) as { prompt: string }[]
    ).map((r) => r.prompt);
  assert.ok(
    promptsOf(3).length > 1 && promptsOf(3).every((p) => heldOut.has(p)),
    'closing round: held-out prompts',
  );
  for (const round of [1, 2])
    assert.ok(
      promptsOf(round).every((p) => !heldOut.has(p)),
      `round ${round}: training prompts`,
    );

  // 5. Elo across rounds, in the file the report reads.
  assert.deepEqual(result.elo.map((e) => e.model).sort(), ['base', 'policy-r0', 'policy-r1', 'policy-r2']);
  const inputs = readRunInputs(config.out);
  assert.ok('data' in inputs.elo, JSON.stringify(inputs.elo));
  if ('data' in inputs.elo) assert.equal(inputs.elo.data.rounds.length, 3);

  // 6. A finished run rerun does no work: every stage is skipped.
  const again: OnlineEvent[] = [];
  await runOnline(config, { onEvent: (e) => again.push(e) });
  assert.ok(again.every((e) => e.type !== 'stage' || e.stage === 'elo' || e.status === 'skipped'));
});

test("policyFrom 'previous': round 1's PPO starts from round 0's policy (its first step's KL to the initial policy is not zero); 'init' starts at the initial policy", async () => {
  const fx = await tinyOnline(4);
  const firstKL = async (policyFrom: OnlineConfig['policyFrom']) => {
    const config = resolveOnlineConfig({
      ...tinyConfig(fx.world, fx.init, join(fx.dir, policyFrom)),
      rounds: 1,
      evalComparisons: 0,
      policyFrom,
      ppo: { steps: 4, batchSize: 8, miniBatchSize: 8, ppoEpochs: 1, maxNewTokens: 10, lr: 3e-3 },
    });
    await runOnline(config);
    const steps = (round: number) =>
      readFileSync(join(config.out, 'rounds', String(round), 'ppo', 'metrics.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { type: string; kl: number })
        .filter((e) => e.type === 'step');
    return { r0Last: steps(0).at(-1)!.kl, r1First: steps(1)[0]!.kl };
  };
  const init = await firstKL('init');
  const previous = await firstKL('previous');
  assert.ok(init.r0Last > 0.01, `round 0's PPO moved the policy (KL ${init.r0Last})`);
  assert.ok(Math.abs(init.r1First) < 1e-3, `init: round 1 starts at the initial policy (KL ${init.r1First})`);
  // The first step's KL is a sampled estimate (it can come out negative); at the initial policy it is 0.
  assert.ok(
    Math.abs(previous.r1First) > 0.01,
    `previous: round 1 starts away from the initial policy (KL ${previous.r1First}, round 0's last ${init.r0Last})`,
  );
});

test("policyTrainer 'rs': round 1's policy is rejection-sampling finetuning against round 1's PM, from round 0's policy; registered, rated, resumable", async () => {
  const fx = await tinyOnline(5);
  const config = resolveOnlineConfig({
    ...tinyConfig(fx.world, fx.init, join(fx.dir, 'rs')),
    rounds: 1,
    policyTrainer: 'rs',
    policyFrom: 'previous',
    rs: { n: 4, epochs: 1, lr: 1e-3, batchSize: 8, prompts: 16 },
  });
  const events: OnlineEvent[] = [];
  const result = await runOnline(config, { onEvent: (e) => events.push(e) });
  // Round 0 trains with PPO only when it is not adopted: here rs makes both rounds' policies.
  for (const round of [0, 1]) {
    const dir = join(config.out, 'rounds', String(round), 'rs');
    const selection = JSON.parse(readFileSync(join(dir, 'selection.json'), 'utf8')) as {
      prompts: number;
      n: number;
      reward: { first: number; kept: number };
    };
    assert.equal(selection.prompts, 16);
    assert.equal(selection.n, 4);
    // The kept sample is the PM's best of 4: above the first sample on average unless the first was the
    // best on every prompt.
    assert.ok(selection.reward.kept > selection.reward.first, JSON.stringify(selection.reward));
    assert.equal(readFileSync(join(dir, 'samples.jsonl'), 'utf8').trim().split('\n').length, 16);
    assert.ok(existsSync(join(dir, 'sft', 'checkpoint')), `round ${round}: the finetuned checkpoint`);
    assert.ok(!existsSync(join(config.out, 'rounds', String(round), 'ppo')), `round ${round}: no PPO run`);
  }
  // Round 1 started from round 0's policy: its finetuning's init is round 0's checkpoint.
  const state = JSON.parse(readFileSync(join(config.out, 'state.json'), 'utf8')) as {
    rounds: { round: number; ppo?: { checkpoint: string } }[];
  };
  const sft1 = JSON.parse(
    readFileSync(join(config.out, 'rounds', '1', 'rs', 'sft', 'checkpoint', 'hhkit.json'), 'utf8'),
  ) as { training: { init: string } };
  assert.equal(sft1.training.init, state.rounds.find((r) => r.round === 0)!.ppo!.checkpoint);
  assert.deepEqual(result.elo.map((e) => e.model).sort(), ['base', 'policy-r0', 'policy-r1']);
  assert.ok(
    events.some((e) => e.type === 'stage' && e.round === 1 && e.stage === 'ppo' && e.status === 'done'),
  );
  // Rerun: nothing is redone.
  const again: OnlineEvent[] = [];
  await runOnline(config, { onEvent: (e) => again.push(e) });
  assert.ok(again.every((e) => e.type !== 'stage' || e.stage === 'elo' || e.status === 'skipped'));
  // Bad settings are refused with the key named.
  assert.throws(
    () => resolveOnlineConfig({ ...config, policyTrainer: 'dpo' as OnlineConfig['policyTrainer'] }),
    /policyTrainer must be ppo or rs/,
  );
  assert.throws(() => resolveOnlineConfig({ ...config, rs: { ...config.rs, n: 0 } }), /rs\.n must be/);
});
