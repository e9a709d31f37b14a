// The Llama family and GPT-NeoX against their plain-PyTorch references (test/fixtures/nn/llama_ref.py,
// neox_ref.py; folders and goldens from gen_families.py): logits, loss, every parameter's gradient, padding,
// the KV cache and greedy decoding through generate(), for folders laid out as transformers writes them;
// dropout in training mode only.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { crossEntropy, noGrad, tidy } from '../engine/index.ts';
import { fusedDecoding, setFusedDecoding } from './attention.ts';
import type { CausalLM } from './causal-lm.ts';
import { familyFixture, golden, maxDiff } from './families.fixture.ts';
import { generate } from './generate.ts';
import { loadCausalLM } from './hf.ts';
import { createCausalLM, type FamilyConfig, familyConfigOf, withDropout } from './hf-config.ts';
import { LlamaForCausalLM } from './llama.ts';
import { GPTNeoXForCausalLM } from './gpt-neox.ts';

const FAMILIES = [
  { name: 'smollm2', cls: LlamaForCausalLM, nKVHead: 1, tied: true },
  { name: 'qwen2', cls: LlamaForCausalLM, nKVHead: 2, tied: false },
  { name: 'qwen3', cls: LlamaForCausalLM, nKVHead: 2, tied: true },
  { name: 'llama3', cls: LlamaForCausalLM, nKVHead: 1, tied: false },
  { name: 'mistral', cls: LlamaForCausalLM, nKVHead: 2, tied: false },
  { name: 'pythia', cls: GPTNeoXForCausalLM, nKVHead: 2, tied: false },
  { name: 'pythia-seq', cls: GPTNeoXForCausalLM, nKVHead: 2, tied: false },
] as const;

for (const { name, cls, nKVHead, tied } of FAMILIES) {
  const want = golden(name);
  const ids = want('ids');
  const [B, T] = ids.shape as [number, number];
  const load = (): CausalLM => loadCausalLM(familyFixture(name)).model;

  test(`${name}: logits, loss and every parameter gradient match PyTorch (≤ 1e-4)`, () => {
    const model = load();
    assert.ok(model instanceof cls);
    assert.equal(model.lmConfig.nKVHead, nKVHead);
    assert.equal(
      model.namedParameters().some(([n]) => n === 'lm_head.weight'),
      !tied && cls === LlamaForCausalLM,
    );
    const V = model.lmConfig.vocabSize;
    let logitsDiff = 0;
    tidy(() => {
      const { logits } = model.forward(ids);
      const d = maxDiff(logits, want('logits'));
      logitsDiff = d;
      assert.ok(d <= 1e-4, `logits differ by ${d}`);
      const loss = crossEntropy(
        logits.narrow(1, 0, T - 1).reshape(-1, V),
        ids.narrow(1, 1, T - 1).reshape(-1),
      );
      assert.ok(
        Math.abs(loss.item() - want('loss').item()) <= 1e-5,
        `loss ${loss.item()} vs ${want('loss').item()}`,
      );
      loss.backward();
    });
    let worst = 0;
    let count = 0;
    for (const [pname, p] of model.namedParameters()) {
      const g = p.grad;
      assert.ok(g, `${pname} has no gradient`);
      const d = maxDiff(g, want(`grad.${pname}`));
      worst = Math.max(worst, d);
      count++;
      assert.ok(d <= 1e-4, `grad of ${pname} differs by ${d}`);
      assert.ok(tidy(() => g.abs().max().item()) > 1e-4, `grad of ${pname} is ~0`);
    }
    assert.ok(count > 10);
    console.log(
      `# ${name}: max |Δ| logits ${logitsDiff.toExponential(2)}, grads ${worst.toExponential(2)} (${count} parameters)`,
    );
  });

  test(`${name}: padding, and the KV cache token by token, match the full forward`, () => {
    const model = load().eval();
    noGrad(() =>
      tidy(() => {
        const mask = want('padded_mask');
        const { logits } = model.forward(want('padded_ids'), { attentionMask: mask });
        const refLogits = want('padded_logits');
        for (const [row, start, len] of [
          [0, 3, T - 3],
          [1, 0, T - 2],
        ] as const) {
          const ours = logits.select(0, row).narrow(0, start, len);
          const d = maxDiff(ours, refLogits.select(0, row).narrow(0, start, len));
          assert.ok(d <= 1e-4, `row ${row} differs by ${d}`);
        }
        const full = model.forward(ids).logits;
        // Both attention paths of a decoding step: the native kernel and the general ops.
        const was = fusedDecoding();
        for (const fused of [true, false]) {
          setFusedDecoding(fused);
          const cache = model.makeCache(B, T);
          try {
            for (let i = 0; i < T; i++) {
              const step = model.forward(ids.narrow(1, i, 1), { cache }).logits;
              assert.ok(maxDiff(step, full.narrow(1, i, 1)) <= 1e-5, `position ${i}, fused ${fused}`);
            }
          } finally {
            cache.dispose();
            setFusedDecoding(was);
          }
        }
      }),
    );
  });

  test(`${name}: greedy decoding with the cache through generate() gives PyTorch's tokens`, () => {
    const model = load().eval();
    const prompt = want('greedy_prompt').toArray() as number[][];
    const pmask = want('greedy_mask').toArray() as number[][];
    const prompts = prompt.map((row, b) => row.filter((_, i) => pmask[b]![i] === 1));
    const expected = want('greedy_tokens').toArray() as number[][];
    const out = generate(model, prompts, { maxNewTokens: expected[0]!.length, padId: 0, greedy: true });
    assert.deepEqual(out.tokens, expected);
  });
}

test('rotary frequencies (llama3 rope_scaling, Qwen3 head_dim, Pythia rotary_pct) equal the reference inv_freq', () => {
  for (const name of ['llama3', 'qwen3', 'pythia', 'smollm2']) {
    const model = loadCausalLM(familyFixture(name)).model as LlamaForCausalLM | GPTNeoXForCausalLM;
    const want = golden(name)('inv_freq').toTypedArray() as Float32Array;
    const ours = model.rope.frequencies;
    assert.equal(ours.length, want.length, name);
    for (const [i, f] of ours.entries()) {
      assert.ok(Math.abs(f - want[i]!) <= 1e-6 * want[i]!, `${name} inv_freq[${i}] ${f} vs ${want[i]}`);
    }
  }
  // llama3's fixture hits all three bands: kept (high frequency), interpolated, divided by factor.
  const theta = 500000;
  const plain = [0, 1, 2, 3].map((i) => 1 / theta ** ((2 * i) / 8));
  const scaled = (loadCausalLM(familyFixture('llama3')).model as LlamaForCausalLM).rope.frequencies;
  assert.ok(Math.abs(scaled[0]! - plain[0]!) < 1e-7, 'high frequency kept');
  assert.ok(Math.abs(scaled[3]! - plain[3]! / 32) < 1e-9, 'low frequency divided by factor');
  assert.ok(scaled[1]! < plain[1]! && scaled[1]! > plain[1]! / 32, 'medium frequency interpolated');
});

test('inv_freq is one non-persistent float32 buffer per model, rotary_emb.inv_freq as in Hugging Face; to(bf16) keeps it float32', () => {
  for (const [name, path] of [
    ['smollm2', 'model.rotary_emb.inv_freq'],
    ['pythia', 'gpt_neox.rotary_emb.inv_freq'],
  ] as const) {
    const model = loadCausalLM(familyFixture(name)).model as LlamaForCausalLM | GPTNeoXForCausalLM;
    assert.deepEqual(
      model.namedBuffers().map(([n]) => n),
      [path],
      `${name}: shared by the layers, registered once`,
    );
    assert.ok(!(path in model.stateDict()), `${name}: not saved`);
    const ids = golden(name)('ids');
    const fp32 = noGrad(() => model.forward(ids).logits);
    model.to('bfloat16');
    const invFreq = model.rope.inv_freq;
    assert.equal(invFreq.dtype, 'float32', name);
    assert.deepEqual(invFreq.toTypedArray(), model.rope.frequencies, name);
    const bf16 = noGrad(() => model.forward(ids).logits);
    assert.equal(model.rope.inv_freq, invFreq, `${name}: the same tensor serves every forward`);
    // bf16 weights and activations: within a few percent of the logits' range.
    const d = maxDiff(bf16.float(), fp32);
    const range = fp32.abs().max().item();
    assert.ok(d <= 0.05 * range, `${name}: bf16 logits differ by ${d} (range ${range})`);
    for (const t of [fp32, bf16, ...model.parameters(), invFreq]) t.dispose();
  }
});

test('dropout (attention_dropout; NeoX also hidden_dropout) acts only in training mode; eval equals no dropout', () => {
  for (const [name, configs] of [
    ['smollm2', [{ attentionDropout: 0.3 }]],
    ['qwen3', [{ attentionDropout: 0.3 }]],
    // NeoX: each of its two settings on its own, so both are shown to be wired in.
    ['pythia', [{ attentionDropout: 0.3 }, { hiddenDropout: 0.3 }]],
    ['pythia-seq', [{ hiddenDropout: 0.3 }]],
  ] as const) {
    const ids = golden(name)('ids');
    const plain = loadCausalLM(familyFixture(name)).model;
    for (const dropouts of configs) {
      const fc = familyConfigOf(plain);
      assert.notEqual(fc.family, 'gpt2');
      const model = createCausalLM({ ...fc, config: { ...fc.config, ...dropouts } } as FamilyConfig, {
        seed: 5,
      });
      model.loadStateDict(plain.stateDict());
      noGrad(() =>
        tidy(() => {
          const want = plain.forward(ids).logits;
          const a = model.forward(ids).logits;
          const b = model.forward(ids).logits;
          assert.ok(maxDiff(a, b) > 1e-3, `${name} ${JSON.stringify(dropouts)}: training forwards differ`);
          assert.ok(maxDiff(a, want) > 1e-3, `${name}: training differs from no dropout`);
          model.eval();
          assert.equal(maxDiff(model.forward(ids).logits, want), 0, `${name}: eval equals no dropout`);
        }),
      );
    }
  }
});

test('withDropout sets every dropout of the family and keeps the weights', () => {
  for (const name of ['smollm2', 'pythia']) {
    const ids = golden(name)('ids');
    const model = withDropout(loadCausalLM(familyFixture(name)).model, 0.2, { seed: 1 });
    const fc = familyConfigOf(model);
    if (fc.family === 'llama') assert.equal(fc.config.attentionDropout, 0.2);
    else if (fc.family === 'gpt_neox') {
      assert.equal(fc.config.attentionDropout, 0.2);
      assert.equal(fc.config.hiddenDropout, 0.2);
    } else assert.fail(`${name} is ${fc.family}`);
    const d = noGrad(() => maxDiff(model.eval().forward(ids).logits, golden(name)('logits')));
    assert.ok(d <= 1e-4, `${name}: eval logits after withDropout differ by ${d}`);
    assert.equal(withDropout(model, 0.2), model, 'unchanged when already set');
  }
});
