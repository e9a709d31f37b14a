// A user's model through the pipeline: tiny random Hugging Face folders of the Llama family (GQA, tied
// head) and of GPT-NeoX (untied, partial rotary), each with a tokenizer trained by hhkit's own BPE on the
// world's dialogues, go through the real CLI: SFT (pretrain --loss-on assistant --init) → pm train → ppo →
// serve answering one request. Every stage must write a checkpoint of the same family and finite numbers.
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { saveCausalLM } from '../nn/hf.ts';
import { createCausalLM, familyConfigFromHf } from '../nn/hf-config.ts';
import { e2eWorldCounts, tinyWorldLM } from '../online/test-fixtures.ts';
import { startServer } from '../server/test-fixtures.ts';
import { newToken, Store } from '../store/store.ts';
import { Tokenizer } from '../tokenizer/index.ts';
import { hhkitJson as hhkit } from './test-cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'hhkit-families-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const modelType = (checkpoint: string): unknown =>
  (JSON.parse(readFileSync(join(checkpoint, 'config.json'), 'utf8')) as Record<string, unknown>)[
    'model_type'
  ];

const worldReady = tinyWorldLM(dir, {
  worldSeed: 5,
  lmSeed: 1,
  counts: e2eWorldCounts,
});

// Real-model config keys, scaled down: SmolLM-like (llama, 4 query heads sharing 2 KV heads, tied) and
// Pythia-like (gpt_neox, rotary on a quarter of each head, parallel residual, untied).
const families = {
  llama: {
    model_type: 'llama',
    hidden_size: 32,
    intermediate_size: 64,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    max_position_embeddings: 256,
    tie_word_embeddings: true,
  },
  gpt_neox: {
    model_type: 'gpt_neox',
    hidden_size: 32,
    intermediate_size: 64,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    max_position_embeddings: 256,
    rotary_pct: 0.25,
  },
};

for (const [name, hf] of Object.entries(families)) {
  test(`${name}: SFT → pm train → ppo → serve through the CLI keep the family`, {
    timeout: 120_000,
  }, async () => {
    const { world } = await worldReady;
    const tokenizerPath = join(dir, 'tokenizer.json');
    const vocabSize = Tokenizer.fromFile(tokenizerPath).vocabSize;
    const folder = join(dir, `${name}-init`);
    const model = createCausalLM(familyConfigFromHf({ ...hf, vocab_size: vocabSize }, `${name} config`), {
      seed: 3,
    });
    saveCausalLM(folder, model);
    copyFileSync(tokenizerPath, join(folder, 'tokenizer.json'));
    for (const p of model.parameters()) p.dispose();

    // 1. SFT: loss on the Assistant's replies, from the user's folder (its tokenizer.json is reused).
    const sft = join(dir, `${name}-sft`);
    const lm = await hhkit([
      'pretrain',
      '--data',
      join(world, 'helpful-train.jsonl'),
      '--init',
      folder,
      '--loss-on',
      'assistant',
      '--out',
      sft,
      '--block-size',
      '64',
      '--batch-size',
      '4',
      '--steps',
      '3',
      '--warmup-steps',
      '1',
      '--eval-every',
      '0',
      '--checkpoint-every',
      '3',
    ]);
    assert.ok(Number.isFinite(lm['lastLoss']), JSON.stringify(lm));
    assert.equal(modelType(join(sft, 'checkpoint')), hf.model_type);

    // 2. The preference model: the SFT trunk plus a scalar head.
    const pm = join(dir, `${name}-pm`);
    const pmSummary = await hhkit([
      'pm',
      'train',
      '--init',
      join(sft, 'checkpoint'),
      '--data',
      join(world, 'helpful-train.jsonl'),
      '--eval',
      join(world, 'helpful-test.jsonl'),
      '--out',
      pm,
      '--batch-size',
      '8',
      '--steps',
      '2',
      '--max-length',
      '96',
    ]);
    assert.ok(Number.isFinite(pmSummary['evalAccuracy']), JSON.stringify(pmSummary));
    assert.equal(modelType(join(pm, 'checkpoint')), hf.model_type);

    // 3. PPO against that PM: policy, frozen reference and value head all of the user's family.
    const ppo = join(dir, `${name}-ppo`);
    await hhkit([
      'ppo',
      '--init',
      join(sft, 'checkpoint'),
      '--world',
      world,
      '--reward',
      pm,
      '--out',
      ppo,
      '--steps',
      '2',
      '--batch-size',
      '4',
      '--mini-batch-size',
      '2',
      '--max-new-tokens',
      '6',
      '--eval-every',
      '0',
      '--eval-prompts',
      '2',
    ]);
    assert.equal(modelType(join(ppo, 'checkpoint')), hf.model_type);
    const steps = readFileSync(join(ppo, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((m) => m['type'] === 'step');
    assert.equal(steps.length, 2);
    for (const s of steps)
      for (const key of ['reward', 'kl', 'valueLoss'])
        assert.ok(Number.isFinite(s[key]), `${key} ${JSON.stringify(s[key])}`);

    // 4. serve the PPO policy and sample one Assistant turn.
    const dbPath = join(dir, `${name}.db`);
    const token = newToken();
    {
      using store = Store.open(dbPath);
      store.addWorker({ name: 'e2e', role: 'crowdworker', token });
      store.ensureRound(1);
    }
    const server = await startServer([
      '--db',
      dbPath,
      '--models',
      join(ppo, 'checkpoint'),
      '--port',
      '0',
      '--max-new-tokens',
      '4',
      '--round',
      '1',
    ]);
    try {
      const res = await fetch(`${server.url}/api/turns`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ text: 'What is 2 plus 2?' }),
      });
      const body = await res.text();
      assert.equal(res.status, 200, body);
      assert.ok(typeof (JSON.parse(body) as { conversationId: unknown }).conversationId === 'number', body);
    } finally {
      server.child.kill('SIGTERM');
    }
  });
}
