// GPT against the plain-PyTorch reference (test/fixtures/nn/gpt_ref.py; fixtures from gen_parity.py):
// logits, loss, hidden states and the gradient of every parameter, plus padding, dropout and KV cache.
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import {
  crossEntropy,
  liveTensors,
  loadSafetensors,
  noGrad,
  type Tensor,
  tensor,
  tidy,
} from '../engine/index.ts';
import { loadCheckpoint } from './checkpoint.ts';
import { GPT, gptPresets } from './gpt.ts';
import { KVCache, KVCacheError } from './kvcache.ts';

const fixture = (name: string): string =>
  fileURLToPath(new URL(`../../test/fixtures/nn/${name}`, import.meta.url));
const ref = loadSafetensors(fixture('parity.safetensors')).tensors;
const want = (name: string): Tensor => {
  const t = ref[name];
  if (!t) throw new Error(`parity.safetensors has no '${name}'`);
  return t;
};
const maxDiff = (a: Tensor, b: Tensor): number => {
  assert.deepEqual([...a.shape], [...b.shape], 'shapes differ');
  return tidy(() => a.sub(b).abs().max().item());
};
const ids = want('ids');
const [B, T] = ids.shape as [number, number];

test('logits, loss and every parameter gradient match the PyTorch reference (≤ 1e-4)', () => {
  const model = loadCheckpoint(fixture('tiny-gpt2')).model as GPT;
  const V = model.config.vocabSize;
  tidy(() => {
    const { logits } = model.forward(ids);
    assert.ok(maxDiff(logits, want('logits')) <= 1e-4, `logits differ by ${maxDiff(logits, want('logits'))}`);
    const loss = crossEntropy(logits.narrow(1, 0, T - 1).reshape(-1, V), ids.narrow(1, 1, T - 1).reshape(-1));
    assert.ok(
      Math.abs(loss.item() - want('loss').item()) <= 1e-5,
      `loss ${loss.item()} vs ${want('loss').item()}`,
    );
    loss.backward();
  });
  const names = model.namedParameters().map(([n]) => n);
  const refNames = Object.keys(ref)
    .filter((k) => k.startsWith('grad.'))
    .map((k) => k.slice(5));
  assert.deepEqual([...names].sort(), refNames.sort(), 'same parameters as the reference');
  let worst = 0;
  for (const [name, p] of model.namedParameters()) {
    const g = p.grad;
    assert.ok(g, `${name} has no gradient`);
    const d = maxDiff(g, want(`grad.${name}`));
    worst = Math.max(worst, d);
    assert.ok(d <= 1e-4, `grad of ${name} differs by ${d}`);
    // A gradient of substance, so the comparison can fail.
    assert.ok(tidy(() => g.abs().max().item()) > 1e-3, `grad of ${name} is ~0`);
  }
  assert.ok(worst < 1e-4);
});

test('hidden states: L + 1 tensors (B, T, C) equal to the reference; hidden = ln_f(last)', () => {
  const model = loadCheckpoint(fixture('tiny-gpt2')).model as GPT;
  noGrad(() =>
    tidy(() => {
      const out = model.forward(ids, { outputHiddenStates: true });
      const states = out.hiddenStates!;
      assert.equal(states.length, model.config.nLayer + 1);
      states.forEach((s, i) => {
        assert.deepEqual([...s.shape], [B, T, model.config.nEmbd]);
        assert.ok(maxDiff(s, want(`hidden_states.${i}`)) <= 1e-4, `hidden state ${i}`);
      });
      assert.equal(maxDiff(out.hidden, model.transformer.ln_f.forward(states.at(-1)!)), 0);
      assert.equal(model.forward(ids).hiddenStates, undefined);
    }),
  );
});

test('padding: masked rows match the reference and the unpadded rows at real positions', () => {
  const model = loadCheckpoint(fixture('tiny-gpt2')).model as GPT;
  noGrad(() =>
    tidy(() => {
      const mask = want('padded_mask');
      const { logits } = model.forward(want('padded_ids'), { attentionMask: mask });
      const refLogits = want('padded_logits');
      // Row 0: 3 left pads; row 1: 2 right pads; row 2: none.
      const real: [number, number, number][] = [
        [0, 3, T - 3],
        [1, 0, T - 2],
        [2, 0, T],
      ];
      for (const [row, start, len] of real) {
        const ours = logits.select(0, row).narrow(0, start, len);
        assert.ok(
          maxDiff(ours, refLogits.select(0, row).narrow(0, start, len)) <= 1e-4,
          `row ${row} vs PyTorch`,
        );
        const alone = model.forward(ids.select(0, row).narrow(0, start, len).unsqueeze(0)).logits.squeeze(0);
        assert.ok(maxDiff(ours, alone) <= 1e-5, `row ${row} vs unpadded`);
      }
      // A bool mask works like a 0/1 mask; explicit positionIds like derived ones.
      const asBool = model.forward(want('padded_ids'), { attentionMask: mask.ne(0) }).logits;
      assert.equal(maxDiff(asBool, logits), 0);
      const positionIds = mask.cumsum(1).sub(1).clamp(0);
      const explicit = model.forward(want('padded_ids'), { attentionMask: mask, positionIds }).logits;
      assert.equal(maxDiff(explicit, logits), 0);
    }),
  );
});

test('dropout acts only in training mode; eval is deterministic', () => {
  const config = { ...gptPresets.tiny, dropout: 0.3 };
  const model = new GPT(config, { seed: 3 });
  const noDrop = new GPT({ ...config, dropout: 0 }, { seed: 3 });
  noGrad(() =>
    tidy(() => {
      assert.equal(model.training, true);
      const a = model.forward(ids).logits;
      const b = model.forward(ids).logits;
      assert.ok(maxDiff(a, b) > 1e-3, 'training forwards differ');
      model.eval();
      assert.ok(
        model.namedModules().every(([, m]) => !m.training),
        'eval() reaches every submodule',
      );
      const c = model.forward(ids).logits;
      const d = model.forward(ids).logits;
      assert.equal(maxDiff(c, d), 0);
      assert.equal(maxDiff(c, noDrop.forward(ids).logits), 0, 'eval equals the dropout-free model');
      model.train();
      assert.ok(maxDiff(model.forward(ids).logits, c) > 1e-3);
    }),
  );
});

test('KV cache: token-by-token and chunked forwards give the full-forward logits (≤ 1e-5)', () => {
  const model = loadCheckpoint(fixture('tiny-gpt2')).model as GPT;
  model.eval();
  noGrad(() =>
    tidy(() => {
      const full = model.forward(ids).logits;
      const cache = new KVCache(model.config, B, T);
      for (let i = 0; i < T; i++) {
        const step = model.forward(ids.narrow(1, i, 1), { cache }).logits;
        assert.equal(cache.length, i + 1);
        assert.ok(maxDiff(step, full.narrow(1, i, 1)) <= 1e-5, `position ${i}`);
      }
      assert.throws(() => model.forward(ids.narrow(1, 0, 1), { cache }), KVCacheError);
      cache.reset();
      const prompt = model.forward(ids.narrow(1, 0, 6), { cache, logits: 'last' }).logits;
      assert.deepEqual([...prompt.shape], [B, 1, model.config.vocabSize]);
      assert.ok(maxDiff(prompt, full.narrow(1, 5, 1)) <= 1e-5);
      const rest = model.forward(ids.narrow(1, 6, T - 6), { cache }).logits;
      assert.ok(maxDiff(rest, full.narrow(1, 6, T - 6)) <= 1e-5);
      cache.dispose();
    }),
  );
});

test('KV cache with left padding: prompt with a mask, then tokens, match the full padded forward', () => {
  const model = loadCheckpoint(fixture('tiny-gpt2')).model as GPT;
  noGrad(() =>
    tidy(() => {
      const padded = want('padded_ids').narrow(0, 0, 1); // 3 left pads
      const mask = want('padded_mask').narrow(0, 0, 1);
      const full = model.forward(padded, { attentionMask: mask }).logits;
      const cache = new KVCache(model.config, 1, T);
      const p = 5;
      const first = model.forward(padded.narrow(1, 0, p), { cache, attentionMask: mask.narrow(1, 0, p) });
      assert.ok(maxDiff(first.logits.narrow(1, 3, 2), full.narrow(1, 3, 2)) <= 1e-5);
      for (let i = p; i < T; i++) {
        const step = model.forward(padded.narrow(1, i, 1), {
          cache,
          attentionMask: mask.narrow(1, 0, i + 1),
        });
        assert.ok(maxDiff(step.logits, full.narrow(1, i, 1)) <= 1e-5, `position ${i}`);
      }
      cache.dispose();
    }),
  );
});

test('forward inside tidy leaks no tensors; bad inputs give clear errors', () => {
  const model = new GPT(gptPresets.tiny, { seed: 1 });
  const before = liveTensors();
  tidy(() => {
    const { logits } = model.forward(ids);
    crossEntropy(logits.reshape(-1, 50), ids.reshape(-1)).backward();
  });
  model.zeroGrad();
  assert.equal(liveTensors(), before);
  const long = tensor([Array.from({ length: 33 }, () => 1)], { dtype: 'int64' });
  assert.throws(() => model.forward(long), /exceed the model's context length \(maxPositions 32\)/);
  assert.throws(() => model.forward(ids.reshape(-1)), /ids must be \(B, T\)/);
  assert.throws(() => model.forward(ids, { attentionMask: ids.narrow(1, 0, 2) }), /attentionMask must be/);
});
