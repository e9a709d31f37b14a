// A user's model through the pipeline: tiny random Hugging Face folders of the Llama family (Llama, Qwen2,
// Qwen3: GQA, tied head) and of GPT-NeoX (untied, partial rotary), each with a tokenizer trained by hhkit's own BPE on the
// world's dialogues, go through the real CLI: SFT (pretrain --loss-on assistant --init) → pm train → ppo →
// distill, best-of-n, eval and ood → serve answering one request. Every stage must write a checkpoint of the
// same family and finite numbers.
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
import { hhkitJson as hhkit, TINY_LLAMA_HF } from './test-cli.ts';

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
  llama: TINY_LLAMA_HF,
  // Qwen2.5-like (q/k/v biases, rope_theta 1e6, tied) and Qwen3-like (q/k RMSNorm, explicit head_dim).
  qwen2: { ...TINY_LLAMA_HF, model_type: 'qwen2', rope_theta: 1000000 },
  qwen3: { ...TINY_LLAMA_HF, model_type: 'qwen3', head_dim: 16, rope_theta: 1000000 },
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
  test(`${name}: SFT → pm train → ppo → distill, best-of-n, eval, ood → serve through the CLI keep the family`, {
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

    // 4. The other stages that read a model: context distillation, best-of-N against the PM, the world's
    //    evals (task accuracy and sampled gold HH) and OOD detection from the trunk's activations.
    const distilled = join(dir, `${name}-distill`);
    const distill = await hhkit([
      'distill',
      ...['--init', join(sft, 'checkpoint'), '--world', world, '--out', distilled],
      ...['--steps', '2', '--batch-size', '2', '--dialogues', '8', '--eval-prompts', '2'],
      ...['--eval-examples', '2', '--max-tokens', '48', '--max-new-tokens', '4', '--checkpoint-every', '2'],
    ]);
    for (const key of ['klBefore', 'klAfter', 'goldAfter'])
      assert.ok(Number.isFinite(distill[key]), `distill ${key} ${JSON.stringify(distill[key])}`);
    assert.equal(modelType(join(distilled, 'checkpoint')), hf.model_type);
    const best = (await hhkit([
      'best-of-n',
      ...['--policy', join(distilled, 'checkpoint'), '--world', world, '--reward', pm],
      ...['--ns', '1,2', '--prompts', '2', '--max-new-tokens', '4'],
    ])) as unknown as { rows: { n: number; reward: number; gold: number }[] };
    assert.deepEqual(
      best.rows.map((r) => r.n),
      [1, 2],
    );
    for (const r of best.rows)
      assert.ok(Number.isFinite(r.reward) && Number.isFinite(r.gold), JSON.stringify(r));
    const evaluated = await hhkit([
      'eval',
      ...['--models', join(ppo, 'checkpoint'), '--world', world, '--held-out', '2', '--limit', '2'],
      ...['--max-new-tokens', '4', '--out', join(dir, `${name}-eval.json`)],
    ]);
    const [row] = (evaluated as unknown as { models: { results: Record<string, { value: number }> }[] })
      .models;
    for (const task of ['world', 'world-held-out']) {
      const value = row?.results[task]?.value;
      assert.ok(value !== undefined && value >= 0 && value <= 1, `${task}: ${JSON.stringify(value)}`);
    }
    // The tiny world has two OOD prompts; its helpful and harmless comparisons give the prompts instead.
    const ood = (await hhkit([
      'ood',
      ...['--model', join(sft, 'checkpoint'), '--in', join(world, 'helpful-test.jsonl')],
      ...['--out-of', join(world, 'harmless-test.jsonl'), '--limit', '24', '--shots', ''],
    ])) as unknown as { layers: { layer: number; mahalanobis: number }[] };
    assert.equal(
      ood.layers.length,
      hf.num_hidden_layers + 1,
      'a layer per hidden state, embeddings included',
    );
    for (const l of ood.layers) assert.ok(l.mahalanobis >= 0 && l.mahalanobis <= 1, JSON.stringify(l));

    // 5. serve the PPO policy and sample one Assistant turn.
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
