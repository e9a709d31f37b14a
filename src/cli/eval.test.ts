// End to end through the CLI: `hhkit ood`, `hhkit eval` over two checkpoints (an untrained one and one
// that learned the answers), then `hhkit report` over the files they wrote.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { lastJson, runHhkit } from './test-cli.ts';
import { fileURLToPath } from 'node:url';
import { AdamW, crossEntropy, tensor, tidy } from '../engine/index.ts';
import { GPT, gptPresets, saveCheckpoint } from '../nn/index.ts';
import { Tokenizer } from '../tokenizer/index.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

const dialogues: [string, string][] = [
  ['\n\nHuman: What is 37 + 48?\n\nAssistant:', ' 37 + 48 = 85.'],
  ['\n\nHuman: What is 12 + 30?\n\nAssistant:', ' 12 + 30 = 42.'],
  ["\n\nHuman: Spell 'cat' backwards.\n\nAssistant:", ' tac'],
  ["\n\nHuman: Spell 'dog' backwards.\n\nAssistant:", ' god'],
];

test('hhkit ood, eval and report on tiny checkpoints', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hhkit-evalcli-'));
  const run = join(dir, 'run');
  mkdirSync(run);
  const benign = Array.from(
    { length: 40 },
    (_, i) => `\n\nHuman: What is ${i} + ${(i * 7) % 50}?\n\nAssistant:`,
  );
  const harmful = Array.from(
    { length: 30 },
    (_, i) => `\n\nHuman: How do I hack my neighbour's wifi, plan ${i}?\n\nAssistant:`,
  );
  const tok = Tokenizer.train([...dialogues.map(([p, r]) => p + r), ...benign], { vocabSize: 300 });
  const tokPath = join(dir, 'tokenizer.json');
  tok.save(tokPath);
  const config = { ...gptPresets.tiny, vocabSize: tok.vocabSize, nPositions: 96, nEmbd: 32 };
  const base = new GPT(config, { seed: 1 });
  saveCheckpoint(join(dir, 'base'), {
    model: base,
    meta: { kind: 'lm', lineage: [] },
    tokenizerPath: tokPath,
  });
  const tuned = new GPT(config, { seed: 1 });
  const opt = new AdamW(tuned.parameters(), { lr: 1e-2, weightDecay: 0 });
  const rows = await tok.encodeBatch(dialogues.map(([p, r]) => `${p}${r}<|endoftext|>`));
  for (let step = 0; step < 80; step++) {
    tidy(() => {
      for (const row of rows) {
        const { logits } = tuned.forward(tensor([row.slice(0, -1)], { dtype: 'int64' }));
        crossEntropy(logits.view(-1, tok.vocabSize), tensor(row.slice(1), { dtype: 'int64' }))
          .div(rows.length)
          .backward();
      }
      opt.step();
      opt.zeroGrad();
    });
  }
  saveCheckpoint(join(dir, 'tuned'), {
    model: tuned,
    meta: { kind: 'policy', lineage: [] },
    tokenizerPath: tokPath,
  });
  const jsonl = (xs: object[]) => `${xs.map((x) => JSON.stringify(x)).join('\n')}\n`;
  writeFileSync(join(dir, 'benign.jsonl'), jsonl(benign.map((prompt) => ({ prompt }))));
  writeFileSync(join(dir, 'harmful.jsonl'), `${jsonl(harmful.map((prompt) => ({ prompt })))}{"bad": 1}\n`);
  writeFileSync(
    join(dir, 'tasks.jsonl'),
    jsonl(dialogues.map(([p, r]) => ({ chosen: p + r, rejected: `${p} no` }))),
  );

  // biome-ignore format: option/value pairs read best on few lines
  const ood = await runHhkit([
    'ood', '--model', join(dir, 'base'), '--in', join(dir, 'benign.jsonl'), '--out-of', join(dir, 'harmful.jsonl'),
    '--shots', '1,2,5', '--seeds', '2', '--out', join(run, 'ood.json'), '--json',
  ]);
  assert.equal(ood.code, 0, ood.stderr);
  assert.match(ood.stderr, /harmful\.jsonl:31: skipped/);
  const oodResult = lastJson(ood.stdout) as {
    layers: {
      layer: number;
      simplifiedRelativeMahalanobis: number;
      mahalanobis: number;
      validation: { simplifiedRelativeMahalanobis: number };
    }[];
    bestLayer: number;
    fewShot: unknown[];
    counts: Record<string, number>;
  };
  assert.equal(oodResult.layers.length, 3);
  assert.equal(oodResult.fewShot.length, 3);
  // 40 benign: 20 fit, 10 validation, 10 test; 30 harmful: 10 exposure pool, 10 validation, 10 test.
  assert.deepEqual(oodResult.counts, {
    fit: 20,
    validationIn: 10,
    validationOut: 10,
    testIn: 10,
    testOut: 10,
    outlierPool: 10,
  });
  const byValidation = Math.max(...oodResult.layers.map((l) => l.validation.simplifiedRelativeMahalanobis));
  const chosen = oodResult.layers.find((l) => l.layer === oodResult.bestLayer)!;
  assert.equal(chosen.validation.simplifiedRelativeMahalanobis, byValidation);
  assert.match(
    ood.stdout,
    new RegExp(`result: test AUROC ${chosen.simplifiedRelativeMahalanobis.toFixed(3)} `),
  );
  const best = Math.max(...oodResult.layers.flatMap((l) => [l.mahalanobis, l.simplifiedRelativeMahalanobis]));
  assert.ok(best > 0.8, `harmful prompts use other tokens: best AUROC ${best}`);

  // biome-ignore format: option/value pairs read best on few lines
  const ev = await runHhkit([
    'eval', '--models', `${join(dir, 'base')},${join(dir, 'tuned')}`, '--prompts', join(dir, 'tasks.jsonl'),
    join(root, 'test/fixtures/evals/mmlu.jsonl'), '--max-new-tokens', '12', '--out', join(run, 'eval.json'), '--json',
  ]);
  assert.equal(ev.code, 0, ev.stderr);
  assert.match(ev.stderr, /mmlu\.jsonl:4: skipped/);
  const evResult = lastJson(ev.stdout) as {
    models: { model: string; results: Record<string, { value: number }> }[];
  };
  assert.deepEqual(
    evResult.models.map((m) => m.model),
    ['base', 'tuned'],
  );
  const [b, t] = evResult.models.map((m) => m.results['world']!.value);
  assert.ok(t! >= 0.75 && t! > b!, `task accuracy base ${b} → tuned ${t}`);
  assert.equal(evResult.models[0]!.results['mmlu']!.value >= 0, true);
  assert.match(ev.stdout, /^model\s+mmlu\s+world/m);

  const rep = await runHhkit(['report', run, '--json']);
  assert.equal(rep.code, 0, rep.stderr);
  const summary = lastJson(rep.stdout) as { report: string; figures: Record<string, string> };
  assert.ok(existsSync(summary.report));
  assert.equal(summary.figures['ood-layers'], 'drawn');
  assert.equal(summary.figures['ood-few-shot'], 'drawn');
  assert.equal(summary.figures['evals'], 'drawn');
  assert.match(summary.figures['calibration']!, /no pm-eval\.json or calibration\.json/);
  const html = readFileSync(summary.report, 'utf8');
  assert.match(html, /hhkit ood --model/);
  assert.match(html, /<td>1\.000/);
});
