// --precision bf16 in the RL trainers (bfloat16 autocast forwards, float32 everything else) and their device
// checks. Runs on the CPU (torch's CPU autocast); the same code paths take 'cuda' on a GPU build.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { autocast, builtWithCuda, cudaAvailable, liveTensors, noGrad, tidy } from '../engine/index.ts';
import { loadCheckpoint, saveCheckpoint } from '../nn/checkpoint.ts';
import { generateBatch, leftPad } from '../nn/generate.ts';
import { defaultDistillConfig, distill } from './distill.ts';
import { responseLogitsAt } from './evaluate.ts';
import { ActorCritic } from './policy.ts';
import { defaultPPOConfig, type PPOConfig, validatePPOConfig } from './ppo-config.ts';
import { type PPOStepMetrics, trainPPO } from './ppo.ts';
import { actorCriticAt } from './ppo-update.ts';
import { sampleRollout } from './rollout.ts';
import { letterReward, tinyPolicy, toyDistillConfig, toyPPOConfig } from './test-fixtures.ts';

/** The dtypes of the tensors in a .safetensors file (from its JSON header). */
function safetensorsDtypes(path: string): Set<string> {
  const bytes = readFileSync(path);
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString()) as Record<
    string,
    { dtype?: string }
  >;
  return new Set(
    Object.entries(header)
      .filter(([k]) => k !== '__metadata__')
      .map(([, v]) => v.dtype ?? '?'),
  );
}

/** Whether a float32 value has bits below bfloat16's 7-bit mantissa (i.e. was not rounded to bf16). */
const finerThanBf16 = (v: number): boolean =>
  (new Uint32Array(new Float32Array([v]).buffer)[0]! & 0xffff) !== 0;

test('bf16 forwards: policy, value and reference logits come back float32, within bfloat16 rounding of fp32', async () => {
  const fx = tinyPolicy(7);
  const policy = loadCheckpoint(fx.init).model.eval();
  const ac = new ActorCritic(policy, 'shared', null, { seed: 1 }).eval();
  const prompts = await fx.tokenizer.encodeBatch(fx.prompts.slice(0, 4), { allowSpecial: false });
  const rollout = await sampleRollout(policy, fx.tokenizer, prompts, {
    maxNewTokens: 6,
    seed: 1,
    precision: 'bf16',
  });
  try {
    noGrad(() =>
      tidy(() => {
        const fp = actorCriticAt(ac, rollout, 'fp32');
        const bf = actorCriticAt(ac, rollout, 'bf16');
        const ref = responseLogitsAt(policy, rollout, 'bf16');
        for (const t of [bf.logits, bf.values, ref]) assert.equal(t.dtype, 'float32');
        const logitGap = bf.logits.sub(fp.logits).abs().max().item();
        const scale = fp.logits.abs().max().item();
        // Autocast ran (bf16 rounding shows) and changed nothing beyond it (8-bit mantissa: ~0.4 % relative).
        assert.ok(logitGap > 0 && logitGap < 0.02 * scale + 1e-3, `logits gap ${logitGap} at scale ${scale}`);
        const valueGap = bf.values.sub(fp.values).abs().max().item();
        assert.ok(valueGap < 0.02 * fp.values.abs().max().item() + 1e-3, `values gap ${valueGap}`);
        assert.equal(ref.sub(bf.logits).abs().max().item(), 0, 'same model, same autocast: same logits');
      }),
    );
  } finally {
    rollout.dispose();
    for (const p of [...ac.parameters()]) p.dispose();
  }
});

test('generateBatch inside bf16 autocast returns float32 log-probs that are not rounded to bfloat16', async () => {
  const fx = tinyPolicy(8);
  const policy = loadCheckpoint(fx.init).model.eval();
  const prompts = await fx.tokenizer.encodeBatch(fx.prompts.slice(0, 4), { allowSpecial: false });
  const values = noGrad(() =>
    tidy(() => {
      const { ids, mask } = leftPad(prompts, fx.tokenizer.padId);
      const out = autocast({ device: policy.device }, () =>
        generateBatch(policy, ids, mask, { maxNewTokens: 6, padId: fx.tokenizer.padId, seed: 3 }),
      );
      assert.equal(out.logprobs.dtype, 'float32');
      return Array.from(out.logprobs.toTypedArray() as Float32Array);
    }),
  );
  // Without the float32 cast of the logits, CPU autocast's log_softmax gives bf16 values (all fail this).
  assert.ok(values.filter(finerThanBf16).length > values.length / 2, `log-probs ${values.slice(0, 6)}`);
  for (const p of policy.parameters()) p.dispose();
});

const ppoConfig = (out: string, overrides: Partial<PPOConfig> = {}): PPOConfig =>
  toyPPOConfig(out, { checkpointEvery: 20, ...overrides });

test('PPO with precision bf16 raises the toy reward by a margin; weights, value head and AdamW state stay float32', async () => {
  const fx = tinyPolicy(1);
  const steps: PPOStepMetrics[] = [];
  const before = liveTensors();
  const result = await trainPPO({
    config: ppoConfig(join(fx.dir, 'ppo'), { precision: 'bf16', device: 'cpu' }),
    init: fx.init,
    tokenizer: fx.tokenizer,
    prompts: fx.prompts,
    reward: letterReward('Q'),
    onEvent: (e) => {
      if (e.type === 'step') steps.push(e.metrics);
    },
  });
  assert.equal(liveTensors(), before, `live tensors ${before} → ${liveTensors()}`);
  const mean = (xs: PPOStepMetrics[]) => xs.reduce((a, s) => a + s.reward, 0) / xs.length;
  const first = mean(steps.slice(0, 3));
  const last = mean(steps.slice(-3));
  assert.ok(last > first + 0.1, `reward ${first.toFixed(3)} → ${last.toFixed(3)}`);
  assert.ok(steps.every((s) => Number.isFinite(s.kl) && Number.isFinite(s.valueLoss) && s.entropy > 0));
  assert.ok(steps.at(-1)!.kl < 15, `KL ${steps.at(-1)!.kl} stays bounded`);
  assert.deepEqual(safetensorsDtypes(join(result.checkpoint, 'model.safetensors')), new Set(['F32']));
  assert.deepEqual(safetensorsDtypes(join(result.checkpoint, 'ppo-optimizer.safetensors')), new Set(['F32']));
  const saved = loadCheckpoint(result.checkpoint);
  assert.ok(
    Object.keys(saved.extra).some((k) => k.startsWith('value_head.')),
    'the value head is saved',
  );
  assert.equal((saved.meta?.training as Record<string, unknown> | undefined)?.['precision'], 'bf16');
  for (const t of [...saved.model.parameters(), ...Object.values(saved.extra)]) t.dispose();
});

test('context distillation with precision bf16 cuts KL to the teacher by a margin; float32 checkpoint; the teacher cache is keyed by precision', async () => {
  const fx = tinyPolicy(3);
  // Sharpen the random LM (larger weights: logits of order 1, attention that reads the prefix), so the
  // teacher's HHH prefix moves its predictions well above bf16's rounding.
  const sharp = join(fx.dir, 'sharp');
  const loaded = loadCheckpoint(fx.init);
  noGrad(() => {
    for (const [name, p] of loaded.model.namedParameters())
      if (p.ndim >= 2) p.mul_(name.includes('wte') ? 20 : Math.sqrt(20));
  });
  saveCheckpoint(sharp, {
    model: loaded.model,
    meta: { kind: 'lm', lineage: [] },
    tokenizerPath: join(fx.dir, 'tokenizer.json'),
  });
  for (const p of loaded.model.parameters()) p.dispose();
  const out = join(fx.dir, 'distill');
  const before = liveTensors();
  const report = await distill({
    config: toyDistillConfig(out, { device: 'cpu', precision: 'bf16' }),
    init: sharp,
    tokenizer: fx.tokenizer,
    hhhPrompt: 'Below are dialogues.\n-----\n\nHuman: Say Q.\n\nAssistant: QQQ QQ Q.\n-----\n',
    dialogues: Array.from({ length: 96 }, (_, i) => `${fx.prompts[i % fx.prompts.length]} It is ${i % 7}.`),
    evalPrompts: fx.prompts.slice(0, 4),
    gold: letterReward('Q'),
  });
  assert.equal(liveTensors(), before, 'teacher, student and optimiser state are freed');
  assert.ok(report.klBefore > 5e-3, `the prefix matters to the teacher: KL ${report.klBefore}`);
  assert.ok(report.klAfter < 0.2 * report.klBefore, `KL ${report.klBefore} → ${report.klAfter}`);
  assert.deepEqual(safetensorsDtypes(join(report.checkpoint, 'model.safetensors')), new Set(['F32']));
  assert.deepEqual(safetensorsDtypes(join(report.checkpoint, 'optimizer.safetensors')), new Set(['F32']));
  const meta = JSON.parse(readFileSync(join(out, 'teacher-cache', 'meta.json'), 'utf8')) as {
    key: { precision?: string };
  };
  assert.equal(meta.key.precision, 'bf16');
});

test('device and precision are checked: fp16 is refused, cuda without a usable GPU says why', async () => {
  assert.throws(
    () => validatePPOConfig({ ...defaultPPOConfig, precision: 'fp16' }),
    (err: Error) => err.name === 'PPOConfigError' && /precision expects 'fp32' or 'bf16'/.test(err.message),
  );
  assert.throws(
    () => validatePPOConfig({ ...defaultPPOConfig, device: 'gpu' }),
    /device expects auto, cpu, cuda or cuda:N/,
  );
  const fx = tinyPolicy(9);
  const common = { init: fx.init, tokenizer: fx.tokenizer, prompts: fx.prompts, reward: letterReward('Q') };
  await assert.rejects(
    distill({
      ...common,
      config: { ...defaultDistillConfig, out: join(fx.dir, 'd'), precision: 'fp16' },
      hhhPrompt: 'x',
      dialogues: fx.prompts,
    }),
    /precision expects 'fp32' or 'bf16'/,
  );
  if (!cudaAvailable()) {
    const why = builtWithCuda() ? /no GPU is visible/ : /built against a CPU-only libtorch/;
    await assert.rejects(
      trainPPO({ ...common, config: ppoConfig(join(fx.dir, 'p'), { device: 'cuda' }) }),
      why,
    );
  }
});
