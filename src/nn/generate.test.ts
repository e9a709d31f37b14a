import assert from 'node:assert/strict';
import { test } from 'node:test';
import { liveTensors, manualSeed, noGrad, rand, type Tensor, tensor, tidy } from '../engine/index.ts';
import { generate, generateBatch, leftPad } from './generate.ts';
import { GPT, gptPresets } from './gpt.ts';

// A tiny random GPT with amplified block weights and LM head, so greedy outputs vary from step to step and
// next-token distributions are peaked (top tokens well apart, as in a trained model) yet still random.
function tinyModel(): GPT {
  const model = new GPT({ ...gptPresets.tiny, nPositions: 64 }, { seed: 7 }).eval();
  noGrad(() => {
    for (const [name, p] of model.namedParameters()) {
      if (/(c_attn|c_proj|c_fc)\.weight$/.test(name)) p.mul_(20);
      if (name === 'transformer.ln_f.weight') p.mul_(30);
    }
  });
  return model;
}
const model = tinyModel();
const V = model.config.vocabSize;
const prompts = [[3, 17, 5, 9, 22], [41], [8, 8, 30]];

// Greedy decoding without a cache: the whole sequence goes through the model at every step.
function greedyNoCache(prompt: number[], steps: number): number[] {
  const seq = [...prompt];
  for (let i = 0; i < steps; i++) {
    const next = noGrad(() =>
      tidy(() => {
        const { logits } = model.forward(tensor([seq], { dtype: 'int64' })); // (1, T, V)
        return logits
          .select(1, seq.length - 1)
          .argmax(-1)
          .item();
      }),
    );
    seq.push(next);
  }
  return seq.slice(prompt.length);
}

// log p(response token | everything before) from one full forward over prompt + response.
function logprobsNoCache(prompt: number[], response: number[]): number[] {
  return noGrad(() =>
    tidy(() => {
      const seq = [...prompt, ...response];
      const logp = model.forward(tensor([seq], { dtype: 'int64' })).logits.logSoftmax(-1); // (1, T, V)
      const targets = tensor([response], { dtype: 'int64' }).unsqueeze(2); // (1, N, 1)
      const picked = logp.narrow(1, prompt.length - 1, response.length).gather(2, targets);
      return Array.from(picked.toTypedArray() as Float32Array);
    }),
  );
}

const close = (a: number[], b: number[], tol: number, what: string): void => {
  assert.equal(a.length, b.length, `${what}: lengths`);
  a.forEach((x, i) => {
    assert.ok(Math.abs(x - b[i]!) <= tol, `${what}[${i}]: ${x} vs ${b[i]}`);
  });
};

test('KV-cache greedy decoding gives exactly the tokens of cache-free greedy decoding', () => {
  for (const prompt of prompts) {
    const out = generate(model, [prompt], { maxNewTokens: 20, padId: 0, greedy: true });
    assert.deepEqual(out.tokens[0], greedyNoCache(prompt, 20));
    assert.equal(out.finished[0], false);
  }
});

test('left padding changes nothing: a batch of different-length prompts decodes as each prompt alone', () => {
  const batch = generate(model, prompts, { maxNewTokens: 16, padId: 0, greedy: true });
  prompts.forEach((prompt, b) => {
    const alone = generate(model, [prompt], { maxNewTokens: 16, padId: 0, greedy: true });
    assert.deepEqual(batch.tokens[b], alone.tokens[0], `row ${b}`);
    close(batch.logprobs[b]!, alone.logprobs[0]!, 1e-5, `row ${b} logprobs`);
  });
  // The padded rows really were padded: the widest prompt is 5 tokens.
  assert.ok(new Set(prompts.map((p) => p.length)).size > 1);
});

test('returned logprobs are the temperature-1 log-probs of a full forward, whatever the sampling settings', () => {
  for (const sampling of [{}, { temperature: 0.6, topP: 0.8 }, { temperature: 1.7 }]) {
    const out = generate(model, prompts, { maxNewTokens: 12, padId: 0, seed: 11, ...sampling });
    prompts.forEach((prompt, b) => {
      close(out.logprobs[b]!, logprobsNoCache(prompt, out.tokens[b]!), 1e-4, JSON.stringify(sampling));
    });
  }
});

test('top-p close to 0 is greedy decoding', () => {
  const greedy = generate(model, prompts, { maxNewTokens: 12, padId: 0, greedy: true });
  const nucleus = generate(model, prompts, { maxNewTokens: 12, padId: 0, topP: 1e-6, seed: 3 });
  assert.deepEqual(nucleus.tokens, greedy.tokens);
});

test('seeded sampling is reproducible, differs across seeds and leaves the global generator alone', () => {
  const opts = { maxNewTokens: 16, padId: 0, temperature: 1.3 };
  manualSeed(123);
  const a = generate(model, prompts, { ...opts, seed: 5 });
  const afterSeeded = tidy(() => rand([4]).toArray());
  manualSeed(123);
  const expected = tidy(() => rand([4]).toArray());
  assert.deepEqual(afterSeeded, expected, 'a seeded call must not advance the global generator');
  const b = generate(model, prompts, { ...opts, seed: 5 });
  const c = generate(model, prompts, { ...opts, seed: 6 });
  assert.deepEqual(a, b);
  assert.notDeepEqual(a.tokens, c.tokens);
  // Without a seed the global generator drives sampling, so manualSeed makes it reproducible too.
  manualSeed(9);
  const d = generate(model, prompts, opts);
  manualSeed(9);
  assert.deepEqual(generate(model, prompts, opts), d);
});

test('sampling follows the model distribution; top-p samples only inside the nucleus', () => {
  const prompt = [12, 4];
  const B = 3000;
  const probs = noGrad(() =>
    tidy(() => {
      const logits = model.forward(tensor([prompt], { dtype: 'int64' })).logits.select(1, 1); // (1, V)
      return Array.from(logits.div(0.8).softmax(-1).toTypedArray() as Float32Array);
    }),
  );
  const rows = Array.from({ length: B }, () => prompt);
  const counts = new Array<number>(V).fill(0);
  for (const t of generate(model, rows, { maxNewTokens: 1, padId: 0, temperature: 0.8, seed: 1 }).tokens) {
    counts[t[0]!]!++;
  }
  probs.forEach((p, id) => {
    // 5 standard errors of a binomial proportion
    const tol = 5 * Math.sqrt((p * (1 - p)) / B) + 1e-3;
    assert.ok(Math.abs(counts[id]! / B - p) <= tol, `token ${id}: ${counts[id]! / B} vs ${p}`);
  });
  // Nucleus of mass 0.5 at temperature 0.8: the smallest top set whose probability reaches 0.5.
  const ranked = probs.map((p, id) => [p, id] as const).sort((x, y) => y[0] - x[0]);
  const nucleus = new Set<number>();
  let mass = 0;
  for (const [p, id] of ranked) {
    if (mass >= 0.5) break;
    nucleus.add(id);
    mass += p;
  }
  assert.ok(nucleus.size >= 2, 'the test needs a nucleus of several tokens');
  const seen = new Set<number>();
  const opts = { maxNewTokens: 1, padId: 0, temperature: 0.8, topP: 0.5, seed: 2 };
  for (const t of generate(model, rows, opts).tokens) seen.add(t[0]!);
  assert.deepEqual([...seen].sort(), [...nucleus].sort());
});

test('rows stop at EOS or a stop id (kept as their last token), then pad; the loop ends when all stopped', () => {
  const free = generate(model, prompts, { maxNewTokens: 12, padId: 0, greedy: true });
  // Stop ids taken from the free-running output: row 0 stops at its 3rd token (EOS), row 2 at its 5th.
  const eosId = free.tokens[0]![2]!;
  const stopId = free.tokens[2]![4]!;
  const stopped = generate(model, prompts, {
    maxNewTokens: 12,
    padId: 0,
    greedy: true,
    eosId,
    stopIds: [stopId],
  });
  prompts.forEach((_, b) => {
    const full = free.tokens[b]!;
    const end = full.findIndex((t) => t === eosId || t === stopId);
    const expected = end < 0 ? full : full.slice(0, end + 1);
    assert.deepEqual(stopped.tokens[b], expected, `row ${b}`);
    assert.equal(stopped.finished[b], end >= 0);
    assert.equal(stopped.logprobs[b]!.length, expected.length);
  });
  assert.ok(stopped.tokens[0]!.length <= 3);
  // Tensor level: every row stops early here, so fewer than maxNewTokens steps run.
  tidy(() => {
    const { ids, mask } = leftPad(prompts, 0);
    const first = free.tokens.map((t) => t[0]!);
    const out = generateBatch(model, ids, mask, { maxNewTokens: 12, padId: 0, greedy: true, stopIds: first });
    assert.deepEqual(out.responses.shape, [3, 1]);
    assert.deepEqual(out.finished.toArray(), [true, true, true]);
    assert.deepEqual(out.sequences.shape, [3, 6]);
    assert.deepEqual(out.attentionMask.toArray(), [
      [true, true, true, true, true, true],
      [false, false, false, false, true, true],
      [false, false, true, true, true, true],
    ]);
  });
});

test('tensor-level batch: padding after a stop, zero logprobs there, masks line up with sequences', () => {
  tidy(() => {
    const { ids, mask } = leftPad(prompts, 0);
    const free = generate(model, [prompts[1]!], { maxNewTokens: 8, padId: 0, greedy: true }).tokens[0]!;
    const stopId = free[1]!; // row 1 stops after 2 tokens (unless another row hits it first: checked below)
    const out = generateBatch(model, ids, mask, {
      maxNewTokens: 8,
      padId: 0,
      greedy: true,
      stopIds: [stopId],
    });
    const N = out.responses.size(1);
    const responses = out.responses.toArray() as number[][];
    const responseMask = out.responseMask.toArray() as boolean[][];
    const logprobs = out.logprobs.toArray() as number[][];
    responses.forEach((row, b) => {
      const n = responseMask[b]!.filter(Boolean).length;
      for (let i = n; i < N; i++) {
        assert.equal(row[i], 0, 'pad after stop');
        assert.equal(logprobs[b]![i], 0, 'zero logprob after stop');
      }
      if (n < N) assert.equal(row[n - 1], stopId);
    });
    assert.equal(responseMask[1]!.filter(Boolean).length, 2);
    const seqs = out.sequences.toArray() as number[][];
    seqs.forEach((row, b) => {
      assert.deepEqual(row.slice(5), responses[b]);
    });
  });
});

test('no tensor leaks: live tensors are flat across calls', () => {
  const run = (): void => {
    generate(model, prompts, { maxNewTokens: 10, padId: 0, temperature: 0.9, topP: 0.9, seed: 1, eosId: 2 });
    tidy(() => {
      const { ids, mask } = leftPad(prompts, 0);
      const out: Record<string, Tensor> = {
        ...generateBatch(model, ids, mask, { maxNewTokens: 6, padId: 0 }),
      };
      return Object.keys(out).length;
    });
  };
  run();
  const before = liveTensors();
  for (let i = 0; i < 5; i++) run();
  assert.equal(liveTensors(), before);
});

test('bad options are rejected with a message naming the fix', () => {
  assert.throws(
    () => generate(model, prompts, { maxNewTokens: 100, padId: 0 }),
    /context length \(maxPositions 64\)/,
  );
  assert.throws(() => generate(model, prompts, { maxNewTokens: 4, padId: 0, topP: 0 }), /topP/);
  assert.throws(() => generate(model, [[]], { maxNewTokens: 4, padId: 0 }), /empty/);
  assert.throws(() => generate(model, prompts, { maxNewTokens: 4, padId: 0, eosId: V }), /stop id/);
});

test('a row stops after the token that completes a stop string, however the tokens split it', () => {
  const free = generate(model, prompts, { maxNewTokens: 12, padId: 0, greedy: true });
  // Each id's text is "<id>|"; the stop string spans row 1's 2nd and 3rd tokens and ends inside the 3rd's
  // text, so it is seen only once the 3rd token is sampled.
  const tokenText = (id: number) => `<${id}>|`;
  const [, second, third] = free.tokens[1]!;
  const stop = `${tokenText(second!)}<${third}`;
  const stopped = generate(model, prompts, {
    maxNewTokens: 12,
    padId: 0,
    greedy: true,
    stopStrings: [stop],
    tokenText,
  });
  prompts.forEach((_, b) => {
    const full = free.tokens[b]!;
    const text = full.map(tokenText);
    let end = full.length;
    for (let i = 0; i < full.length; i++)
      if (
        text
          .slice(0, i + 1)
          .join('')
          .includes(stop)
      ) {
        end = i + 1;
        break;
      }
    assert.deepEqual(stopped.tokens[b], full.slice(0, end), `row ${b}`);
    assert.equal(stopped.finished[b], end < full.length || text.join('').includes(stop));
  });
  assert.equal(stopped.tokens[1]!.length, 3);
  assert.throws(
    () => generate(model, prompts, { maxNewTokens: 2, padId: 0, stopStrings: ['x'] }),
    /tokenText/,
  );
});
