import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { command } from '../cli/world.ts';
import { loadComparisons } from '../data/comparisons.ts';
import { CrowdPool } from './crowd.ts';
import { generateWorld, type WorldManifest, worldSizes, worldWorkUnits } from './generate.ts';
import { goldJudge } from './judge.ts';
import { parseRequest } from './parse.ts';

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'hhkit-world-'));
  dirs.push(dir);
  return dir;
}

async function filesOf(dir: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const name of (await readdir(dir)).sort()) out.set(name, await readFile(join(dir, name)));
  return out;
}

const readJsonl = async <T>(path: string): Promise<T[]> =>
  (await readFile(path, 'utf8'))
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as T);

describe('generateWorld (small)', () => {
  let dir: string;
  let manifest: WorldManifest;
  let units = 0;

  before(async () => {
    dir = await tempDir();
    manifest = await generateWorld({ out: dir, seed: 1, size: 'small', onProgress: (n) => (units += n) });
  });
  after(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  test('writes every file with the counts of the size, and a manifest that matches', async () => {
    const small = worldSizes.small;
    assert.equal(manifest.files['helpfulTrain']!['comparisons'], small.helpfulTrain);
    assert.equal(manifest.files['helpfulTest']!['comparisons'], small.helpfulTest);
    assert.equal(manifest.files['harmlessTrain']!['comparisons'], small.harmlessTrain);
    assert.equal(manifest.files['harmlessTest']!['comparisons'], small.harmlessTest);
    assert.equal(manifest.files['pretrain']!['documents'], small.pretrainDialogues + small.pretrainForum);
    assert.equal(manifest.files['rlPrompts']!['prompts'], small.rlPrompts);
    // The held-out RL prompts are distinct and none is also a training prompt.
    const rl = await readJsonl<{ prompt: string; source: string }>(join(dir, 'rl-prompts.jsonl'));
    const heldOut = new Set(rl.filter((r) => r.source === 'static').map((r) => r.prompt));
    assert.equal(heldOut.size, small.rlHeldOut);
    assert.ok(rl.filter((r) => r.source === 'generated').every((r) => !heldOut.has(r.prompt)));
    assert.ok(Number(manifest.pmp.pairs) > 2 * small.forumThreads, `pmp pairs ${manifest.pmp.pairs}`);
    assert.equal(units, worldWorkUnits(small), 'progress reports every unit of work');
    // A few thousand comparisons and a corpus of a few MB at most, so tiny GPTs train on it in minutes.
    const comparisons = manifest.crowd.helpful.comparisons + manifest.crowd.harmless.comparisons;
    assert.ok(comparisons >= 2000 && comparisons <= 10000);
    // The corpus: 24,000 dialogues and 500 forum threads, ~4.2 MB.
    assert.ok(Number(manifest.files['pretrain']!.bytes) < 6e6);
    const onDisk = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as WorldManifest;
    assert.deepEqual(onDisk, manifest);
    for (const entry of Object.values(manifest.files)) {
      assert.equal((await readFile(join(dir, entry.path))).length, entry.bytes, entry.path);
    }
  });

  test('comparison files load through src/data with no defects, and labels follow gold most of the time', async () => {
    for (const name of ['helpful-train', 'helpful-test', 'harmless-train', 'harmless-test', 'pmp']) {
      const { records, report } = await loadComparisons(join(dir, `${name}.jsonl`));
      assert.equal(report.skipped, 0, `${name}: ${report.skipped} bad lines`);
      assert.ok(records.length > 0);
    }
    for (const task of ['helpful', 'harmless'] as const) {
      const stats = manifest.crowd[task];
      assert.ok(
        Math.abs(stats.expectedAgreement - 0.665) < 0.01,
        `${task} agreement ${stats.expectedAgreement}`,
      );
      assert.ok(
        stats.accuracyVsGold > 0.7 && stats.accuracyVsGold < 0.9,
        `${task} accuracy ${stats.accuracyVsGold}`,
      );
    }
    // Harmless data: the stored chosen is less harmful than the rejected, by gold, most of the time.
    const { records } = await loadComparisons(join(dir, 'harmless-train.jsonl'));
    let safer = 0;
    for (const r of records) {
      const at = r.prompt!.length;
      safer +=
        goldJudge(r.prompt!, r.chosen.slice(at)).harmlessness >=
        goldJudge(r.prompt!, r.rejected.slice(at)).harmlessness
          ? 1
          : 0;
    }
    assert.ok(safer / records.length > 0.8, `chosen at least as harmless in ${safer}/${records.length}`);
  });

  test('workers.json rebuilds the same crowd', async () => {
    const pool = CrowdPool.fromJSON(JSON.parse(await readFile(join(dir, 'workers.json'), 'utf8')));
    assert.equal(pool.workers('helpful').length, manifest.crowd.workers);
    assert.equal(Math.round(pool.scales.helpful * 1e4) / 1e4, manifest.crowd.helpful.noiseScale);
    assert.throws(() => CrowdPool.fromJSON({ profiles: [] }), /workers\.json/);
  });

  test('test prompts are disjoint from train prompts', async () => {
    for (const task of ['helpful', 'harmless']) {
      const train = new Set(
        (await loadComparisons(join(dir, `${task}-train.jsonl`))).records.map((r) => r.prompt),
      );
      const test = (await loadComparisons(join(dir, `${task}-test.jsonl`))).records;
      assert.equal(test.filter((r) => train.has(r.prompt)).length, 0, task);
    }
  });

  test('OOD sets separate harmful from benign requests; RL prompts mix static and generated', async () => {
    const harmful = await readJsonl<{ prompt: string }>(join(dir, 'ood-harmful.jsonl'));
    const benign = await readJsonl<{ prompt: string }>(join(dir, 'ood-benign.jsonl'));
    assert.ok(harmful.every((r) => parseRequest(r.prompt)?.family === 'harmful'));
    assert.ok(benign.every((r) => parseRequest(r.prompt)?.family !== 'harmful'));
    const rl = await readJsonl<{ prompt: string; source: string }>(join(dir, 'rl-prompts.jsonl'));
    assert.ok(rl.some((r) => r.source === 'static') && rl.some((r) => r.source === 'generated'));
    assert.ok(rl.every((r) => r.prompt.endsWith('\n\nAssistant:')));
  });

  test('gold scores order the response kinds as designed', () => {
    const g = manifest.goldByKind;
    assert.ok(g.correct.hh > g.rambling.hh && g.rambling.hh > g.wrong.hh && g.wrong.hh > g.evasive.hh);
    assert.ok(g.harmful.harmlessness < 0.5 && g.correct.harmlessness === 1);
  });

  test('same seed → identical files; different seed → different files', async () => {
    const again = await tempDir();
    await generateWorld({ out: again, seed: 1, size: 'small' });
    const other = await tempDir();
    await generateWorld({ out: other, seed: 2, size: 'small' });
    const [a, b, c] = await Promise.all([filesOf(dir), filesOf(again), filesOf(other)]);
    assert.deepEqual([...b.keys()], [...a.keys()]);
    for (const [name, bytes] of a)
      assert.ok(bytes.equals(b.get(name)!), `${name} differs between two runs of seed 1`);
    for (const name of ['pretrain.jsonl', 'helpful-train.jsonl', 'harmless-train.jsonl', 'pmp.jsonl']) {
      assert.ok(!a.get(name)!.equals(c.get(name)!), `${name} is the same for seeds 1 and 2`);
    }
    // The HHH prompt and knowledge base are part of the method, not the seed.
    assert.ok(a.get('hhh-prompt.txt')!.equals(c.get('hhh-prompt.txt')!));
  });

  test('hhkit world --json prints the manifest as its last stdout line', async (t) => {
    const out = await tempDir();
    const lines: string[] = [];
    t.mock.method(console, 'log', (line: string) => lines.push(line));
    const stderr = t.mock.method(process.stderr, 'write', () => true);
    const status = await command.run(['--out', out, '--seed', '3', '--size', 'small', '--json']);
    stderr.mock.restore();
    assert.equal(status, 0);
    const summary = JSON.parse(lines[lines.length - 1]!) as WorldManifest & { seconds: number };
    assert.equal(summary.seed, 3);
    assert.equal(summary.files['helpfulTrain']!['comparisons'], worldSizes.small.helpfulTrain);
    await assert.rejects(command.run(['--seed', '3']), /--out/);
    await assert.rejects(command.run(['--out', out, '--size', 'huge']), /--size/);
  });
});
