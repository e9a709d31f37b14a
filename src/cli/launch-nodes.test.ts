// `hhkit launch` across two machines: two network namespaces joined by a veth pair stand in for two hosts
// (each with its own interfaces; the hostname still resolves to loopback, as on a stock Debian machine).
// One rank per "machine" with --nnodes 2; the result must equal one process on the concatenated batch.
// Needs root and iproute2 (network namespaces); elsewhere the test is reported as skipped.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadSafetensors } from '../engine/index.ts';
import { tinyCorpus } from '../train/test-fixtures.ts';
import { type ChildRun, runChild } from '../util/child.ts';
import { lastJson, runHhkit } from './test-cli.ts';

const root = join(import.meta.dirname, '..', '..');
// Root alone is not enough (a container may lack CAP_NET_ADMIN): try to make and remove a namespace.
const probe = `hkprobe${process.pid % 100000}`;
const canNetns =
  process.getuid?.() === 0 &&
  spawnSync('ip', ['netns', 'add', probe]).status === 0 &&
  spawnSync('ip', ['netns', 'del', probe]).status === 0;

function sh(...args: string[]): void {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
}

function inNamespace(ns: string, args: string[]): Promise<ChildRun> {
  // A rank that cannot reach its peer waits for gloo's own connect retries; fail the test sooner.
  return runChild('ip', ['netns', 'exec', ns, process.execPath, join(root, 'bin', 'hhkit.js'), ...args], {
    cwd: root,
    env: { ...process.env, HHKIT_NUM_THREADS: '1', HHKIT_DIST_TIMEOUT: '60' },
    timeoutMs: 90_000,
  });
}

test('two machines (network namespaces over veth), one rank each, equal one process on the whole batch', {
  skip: !canNetns && 'needs root and iproute2 for network namespaces',
}, async () => {
  const id = `${process.pid % 100000}`;
  const [ns0, ns1, v0, v1] = [`hk${id}n0`, `hk${id}n1`, `hk${id}a`, `hk${id}b`];
  const net = `10.${200 + (process.pid % 50)}.${process.pid % 250}`;
  try {
    sh('netns', 'add', ns0);
    sh('netns', 'add', ns1);
    sh('link', 'add', v0, 'type', 'veth', 'peer', 'name', v1);
    sh('link', 'set', v0, 'netns', ns0);
    sh('link', 'set', v1, 'netns', ns1);
    sh('-n', ns0, 'addr', 'add', `${net}.1/24`, 'dev', v0);
    sh('-n', ns1, 'addr', 'add', `${net}.2/24`, 'dev', v1);
    for (const [ns, v] of [
      [ns0, v0],
      [ns1, v1],
    ] as const) {
      sh('-n', ns, 'link', 'set', v, 'up');
      sh('-n', ns, 'link', 'set', 'lo', 'up');
    }
    const corpus = tinyCorpus();
    // biome-ignore format: option/value pairs read best on few lines
    const model = [
      '--data', corpus.path, '--vocab-size', '300', '--block-size', '32', '--n-layer', '1', '--n-head', '2',
      '--n-embd', '32', '--lr', '3e-3', '--warmup-steps', '2', '--eval-every', '0', '--steps', '4',
      '--grad-accum', '2', '--device', 'cpu', '--json',
    ];
    const launch = (node: number) => [
      'launch',
      '--nproc',
      '1',
      '--nnodes',
      '2',
      '--node-rank',
      String(node),
      '--master-addr',
      `${net}.1`,
      '--master-port',
      '29517',
      '--',
      'pretrain',
      ...model,
      '--out',
      join(corpus.dir, 'two'),
      '--batch-size',
      '4',
    ];
    const [n0, n1] = await Promise.all([inNamespace(ns0, launch(0)), inNamespace(ns1, launch(1))]);
    assert.equal(n0.code, 0, n0.stderr);
    assert.equal(n1.code, 0, n1.stderr);
    assert.match(n1.stderr, /launch: rank 1 of 2 started/);
    const one = await runHhkit(['pretrain', ...model, '--out', join(corpus.dir, 'one'), '--batch-size', '8']);
    assert.equal(one.code, 0, one.stderr);
    assert.equal(lastJson(n0.stdout)['worldSize'], 2);
    const wa = loadSafetensors(join(corpus.dir, 'one', 'checkpoint', 'model.safetensors')).tensors;
    const wb = loadSafetensors(join(corpus.dir, 'two', 'checkpoint', 'model.safetensors')).tensors;
    let worst = 0;
    for (const [name, t] of Object.entries(wa)) worst = Math.max(worst, t.sub(wb[name]!).abs().max().item());
    assert.ok(worst < 2e-5, `largest parameter difference ${worst}`);
  } finally {
    spawnSync('ip', ['netns', 'del', ns0]);
    spawnSync('ip', ['netns', 'del', ns1]);
  }
});
