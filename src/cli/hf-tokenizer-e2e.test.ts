// A user's own tokenizer through the pipeline: a tiny random Llama folder whose tokenizer.json is shaped like
// a Hub model's (byte-level BPE, digits split, its own "<|end_of_text|>" eos named only by
// tokenizer_config.json, stop ids in generation_config.json, no pad, no "\n\nHuman:"/"\n\nAssistant:" tokens,
// no "<|endofcontext|>") goes through the real CLI: SFT (pretrain --loss-on assistant) → pm train → ppo. The
// SFT mask must cover replies, the PM reads its score at the eos, PPO stops on the multi-token "\n\nHuman:",
// and every checkpoint keeps the tokenizer's companion files.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { saveCausalLM } from '../nn/hf.ts';
import { createCausalLM, familyConfigFromHf } from '../nn/hf-config.ts';
import { e2eWorldCounts, tinyWorldLM } from '../online/test-fixtures.ts';
import { Tokenizer } from '../tokenizer/index.ts';
import { HF_EOS, QWEN25_CHAT_TEMPLATE, writeHfStyleTokenizer } from '../tokenizer/test-fixtures.ts';
import { hhkitJson as hhkit, runHhkit, TINY_LLAMA_HF } from './test-cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'hhkit-hftok-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const worldReady = tinyWorldLM(dir, {
  worldSeed: 5,
  lmSeed: 1,
  counts: e2eWorldCounts,
});

/** A tiny SmolLM-like Llama folder (GQA, tied) with the Hub-shaped tokenizer trained on the world's dialogues. */
async function userFolder(name: string, chatTemplate?: string): Promise<{ folder: string; world: string }> {
  const { world } = await worldReady;
  const folder = join(dir, name);
  mkdirSync(folder);
  const texts = readFileSync(join(world, 'helpful-train.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => (JSON.parse(l) as { chosen: string }).chosen);
  const tokenizerPath = writeHfStyleTokenizer(folder, texts, chatTemplate);
  const hf = { ...TINY_LLAMA_HF, vocab_size: Tokenizer.fromFile(tokenizerPath).vocabSize };
  const model = createCausalLM(familyConfigFromHf(hf, `${name} config`), { seed: 3 });
  saveCausalLM(folder, model);
  for (const p of model.parameters()) p.dispose();
  return { folder, world };
}

const ppoSteps = (out: string) =>
  readFileSync(join(out, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((m) => m['type'] === 'step');

async function chain(name: string, folder: string, world: string, extra: string[]): Promise<void> {
  const sft = join(dir, `${name}-sft`);
  const lm = await hhkit([
    'pretrain',
    ...[
      '--data',
      join(world, 'helpful-train.jsonl'),
      '--init',
      folder,
      '--loss-on',
      'assistant',
      '--out',
      sft,
    ],
    ...['--block-size', '64', '--batch-size', '4', '--steps', '3', '--warmup-steps', '1'],
    ...['--eval-every', '0', '--checkpoint-every', '3'],
    ...extra,
  ]);
  assert.ok(Number.isFinite(lm['lastLoss']), JSON.stringify(lm));
  for (const file of ['tokenizer_config.json', 'generation_config.json'])
    assert.ok(existsSync(join(sft, 'checkpoint', file)), `SFT checkpoint lacks ${file}`);

  const pm = join(dir, `${name}-pm`);
  const pmSummary = await hhkit([
    'pm',
    'train',
    ...['--init', join(sft, 'checkpoint'), '--data', join(world, 'helpful-train.jsonl')],
    ...['--eval', join(world, 'helpful-test.jsonl'), '--out', pm],
    ...['--batch-size', '8', '--steps', '2', '--max-length', '96'],
    ...extra,
  ]);
  assert.ok(Number.isFinite(pmSummary['evalAccuracy']), JSON.stringify(pmSummary));
  assert.ok(existsSync(join(pm, 'checkpoint', 'tokenizer_config.json')));

  const ppo = join(dir, `${name}-ppo`);
  await hhkit([
    'ppo',
    ...['--init', join(sft, 'checkpoint'), '--world', world, '--reward', pm, '--out', ppo],
    ...['--steps', '2', '--batch-size', '4', '--mini-batch-size', '2', '--max-new-tokens', '6'],
    ...['--eval-every', '0', '--eval-prompts', '2'],
    ...extra,
  ]);
  const steps = ppoSteps(ppo);
  assert.equal(steps.length, 2);
  for (const s of steps)
    for (const key of ['reward', 'kl', 'valueLoss'])
      assert.ok(Number.isFinite(s[key]), `${key} ${JSON.stringify(s[key])}`);
  assert.ok(existsSync(join(ppo, 'checkpoint', 'generation_config.json')));
}

test('a Hub-shaped tokenizer without hhkit tokens: SFT → pm train → ppo', { timeout: 180_000 }, async () => {
  const { folder, world } = await userFolder('base');
  const tok = Tokenizer.fromFile(join(folder, 'tokenizer.json'));
  assert.equal(tok.eosId, tok.tokenToId(HF_EOS));
  assert.equal(tok.humanTurnId, undefined);
  await chain('base', folder, world, []);
});

test("--chat-template: the same chain in the folder's ChatML template, remembered by every checkpoint", {
  timeout: 180_000,
}, async () => {
  const { folder, world } = await userFolder('chat', QWEN25_CHAT_TEMPLATE);
  await chain('chat', folder, world, ['--chat-template']);
  for (const stage of ['chat-sft', 'chat-pm', 'chat-ppo']) {
    const tok = Tokenizer.fromFile(join(dir, stage, 'checkpoint', 'tokenizer.json'));
    assert.equal(tok.format.name, 'chatml', `${stage} checkpoint's tokenizer`);
  }
  // A template-less folder: one line naming the file, exit 2, before any training.
  const { folder: plain, world: w } = await userFolder('plain');
  const run = await runHhkit(
    ['pm', 'train', '--init', plain, '--data', join(w, 'helpful-train.jsonl')].concat([
      '--out',
      join(dir, 'plain-pm'),
      '--steps',
      '1',
      '--chat-template',
    ]),
  );
  assert.equal(run.code, 2, run.stderr);
  assert.match(run.stderr, /plain\/tokenizer_config\.json: has no "chat_template"/);
});
