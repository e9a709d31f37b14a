// Hugging Face folders: sharded bf16 weights (kept or upcast), saving in transformers' layout and loading
// back, GPT-2 folders through the same loader, and the errors for what hhkit refuses.
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { noGrad, tensor, tidy } from '../engine/index.ts';
import { ModelConfigError } from './causal-lm.ts';
import { loadCheckpoint } from './checkpoint.ts';
import { familyFixture, golden, maxDiff } from './families.fixture.ts';
import { GPT } from './gpt.ts';
import { INDEX_FILE, loadCausalLM, MissingTensorsError, saveCausalLM } from './hf.ts';
import { UnsupportedModelError } from './hf-config.ts';
import type { GPTNeoXForCausalLM } from './gpt-neox.ts';
import { LlamaForCausalLM } from './llama.ts';

const tmp = (): string => mkdtempSync(join(tmpdir(), 'hhkit-hf-'));
const readConfig = (dir: string): Record<string, unknown> =>
  JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
// dtype of every tensor in a safetensors file's header
const headerDtypes = (path: string): Record<string, string> => {
  const bytes = readFileSync(path);
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8')) as Record<string, { dtype: string }>;
  delete header['__metadata__'];
  return Object.fromEntries(Object.entries(header).map(([k, v]) => [k, v.dtype]));
};

test('sharded bf16 folder: upcast matches PyTorch on the bf16 weights (≤ 1e-4); kept, it stays bf16', () => {
  const dir = familyFixture('smollm2-bf16-sharded');
  assert.ok(existsSync(join(dir, INDEX_FILE)) && !existsSync(join(dir, 'model.safetensors')));
  const want = golden('smollm2-bf16-sharded');
  const up = loadCausalLM(dir, { upcast: true });
  assert.equal(up.storedDtype, 'bfloat16');
  assert.equal(up.model.dtype, 'float32');
  const kept = loadCausalLM(dir);
  assert.equal(kept.model.dtype, 'bfloat16');
  noGrad(() =>
    tidy(() => {
      const d = maxDiff(up.model.forward(want('ids')).logits, want('logits'));
      assert.ok(d <= 1e-4, `upcast logits differ by ${d}`);
      const logits16 = kept.model.forward(want('ids')).logits;
      assert.equal(logits16.dtype, 'bfloat16');
      assert.ok(maxDiff(logits16, want('logits')) < 0.25, 'bf16 forward near the float64 reference');
    }),
  );
});

test('save writes transformers layout (names, config keys, dtype, tied head absent) and loads back equal', () => {
  for (const name of ['smollm2', 'qwen2', 'qwen3', 'llama3', 'mistral', 'pythia']) {
    const src = familyFixture(name);
    const { model, hfConfig } = loadCausalLM(src);
    const dir = tmp();
    try {
      const { bos_token_id, eos_token_id } = hfConfig;
      saveCausalLM(dir, model, { hfConfig: { bos_token_id, eos_token_id } });
      const written = readConfig(dir);
      // Every key the fixture (transformers' layout) sets that the model depends on is written equal.
      for (const key of [
        'model_type',
        'architectures',
        'vocab_size',
        'hidden_size',
        'intermediate_size',
        'num_hidden_layers',
        'num_attention_heads',
        'num_key_value_heads',
        'head_dim',
        'max_position_embeddings',
        'hidden_act',
        'rms_norm_eps',
        'rope_theta',
        'rope_scaling',
        'tie_word_embeddings',
        'attention_bias',
        'mlp_bias',
        'sliding_window',
        'use_sliding_window',
        'rotary_pct',
        'rotary_emb_base',
        'layer_norm_eps',
        'use_parallel_residual',
        'attention_dropout',
        'hidden_dropout',
        'torch_dtype',
        'bos_token_id',
        'eos_token_id',
      ]) {
        if (!(key in hfConfig) || hfConfig[key] === null) continue;
        // transformers' Qwen2/Qwen3 configs keep sliding_window only when use_sliding_window is true.
        if (key === 'sliding_window' && hfConfig['use_sliding_window'] === false) continue;
        assert.deepEqual(written[key], hfConfig[key], `${name}: config.json ${key}`);
      }
      // Same tensor names and dtypes as the fixture's model.safetensors.
      assert.deepEqual(
        headerDtypes(join(dir, 'model.safetensors')),
        headerDtypes(join(src, 'model.safetensors')),
        `${name}: tensors`,
      );
      const back = loadCausalLM(dir).model;
      noGrad(() =>
        tidy(() => {
          const ids = golden(name)('ids');
          assert.equal(
            maxDiff(back.forward(ids).logits, model.forward(ids).logits),
            0,
            `${name} reloads equal`,
          );
        }),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
});

test('attention_dropout and hidden_dropout are read from config.json and written back on save', () => {
  for (const [name, keys] of [
    ['smollm2', { attention_dropout: 0.1 }],
    ['pythia', { attention_dropout: 0.1, hidden_dropout: 0.2 }],
  ] as const) {
    const src = tmp();
    const dir = tmp();
    try {
      cpSync(familyFixture(name), src, { recursive: true });
      writeFileSync(join(src, 'config.json'), JSON.stringify({ ...readConfig(src), ...keys }));
      const { model } = loadCausalLM(src);
      const config = (model as LlamaForCausalLM | GPTNeoXForCausalLM).config;
      assert.equal(config.attentionDropout, 0.1, name);
      if ('hiddenDropout' in config) assert.equal(config.hiddenDropout, 0.2, name);
      saveCausalLM(dir, model);
      const written = readConfig(dir);
      for (const [key, value] of Object.entries(keys)) assert.equal(written[key], value, `${name}: ${key}`);
    } finally {
      rmSync(src, { recursive: true, force: true });
      rmSync(dir, { recursive: true, force: true });
    }
  }
});

test('save sharded and in bf16: index.json weight_map, BF16 headers, torch_dtype bfloat16, reloads', () => {
  const { model } = loadCausalLM(familyFixture('qwen2'));
  const dir = tmp();
  try {
    saveCausalLM(dir, model, { dtype: 'bfloat16', maxShardBytes: 4000 });
    assert.equal(readConfig(dir)['torch_dtype'], 'bfloat16');
    assert.ok(!existsSync(join(dir, 'model.safetensors')));
    const index = JSON.parse(readFileSync(join(dir, INDEX_FILE), 'utf8')) as {
      metadata: { total_size: number };
      weight_map: Record<string, string>;
    };
    const shards = [...new Set(Object.values(index.weight_map))];
    assert.ok(shards.length > 1);
    assert.ok(shards.every((f) => /^model-\d{5}-of-\d{5}\.safetensors$/.test(f)));
    assert.deepEqual(Object.keys(index.weight_map).sort(), Object.keys(model.stateDict()).sort());
    for (const f of shards) {
      assert.ok(Object.values(headerDtypes(join(dir, f))).every((d) => d === 'BF16'));
    }
    const back = loadCausalLM(dir);
    assert.equal(back.model.dtype, 'bfloat16');
    // Saving again unsharded replaces the shards.
    saveCausalLM(dir, model);
    assert.ok(existsSync(join(dir, 'model.safetensors')) && !existsSync(join(dir, INDEX_FILE)));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('fp16 folders: F16 headers and torch_dtype float16 on save; kept as float16 or upcast, equal to the weights', () => {
  const { model } = loadCausalLM(familyFixture('pythia'));
  const dir = tmp();
  try {
    saveCausalLM(dir, model, { dtype: 'float16' });
    assert.equal(readConfig(dir)['torch_dtype'], 'float16');
    const dtypes = Object.values(headerDtypes(join(dir, 'model.safetensors')));
    assert.ok(dtypes.length > 0 && dtypes.every((d) => d === 'F16'), dtypes.join(','));
    const kept = loadCausalLM(dir);
    assert.equal(kept.storedDtype, 'float16');
    assert.equal(kept.model.dtype, 'float16');
    const up = loadCausalLM(dir, { upcast: true });
    assert.equal(up.model.dtype, 'float32');
    const want = model.stateDict();
    const halves = kept.model.stateDict();
    for (const [name, t] of Object.entries(up.model.stateDict())) {
      // float16 keeps 11 significant bits: the random init's weights (|w| < 1) round by < 2^-11.
      const d = maxDiff(t, want[name]!);
      assert.ok(d <= 2 ** -11, `${name}: upcast fp16 differs by ${d}`);
      assert.equal(halves[name]!.dtype, 'float16');
      assert.equal(maxDiff(halves[name]!, t), 0, `${name}: kept and upcast fp16 weights differ`);
    }
    for (const m of [model, kept.model, up.model]) for (const p of m.parameters()) p.dispose();
    // Only a pytorch_model.bin: refused with what to do.
    rmSync(join(dir, 'model.safetensors'));
    writeFileSync(join(dir, 'pytorch_model.bin'), 'pickle');
    assert.throws(
      () => loadCausalLM(dir),
      /pytorch_model\.bin is not read: re-save it with safe_serialization=True/,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('folders saved by transformers 5.18 itself (rope_parameters, dtype; check_transformers.py) load and match the goldens', () => {
  for (const name of ['llama3', 'qwen3', 'pythia']) {
    const dir = familyFixture(join('transformers-5.18', name));
    const config = readConfig(dir);
    assert.equal(config['transformers_version'], '5.18.0');
    assert.ok(
      config['rope_parameters'] && config['rope_theta'] === undefined && config['rotary_pct'] === undefined,
    );
    const { model } = loadCausalLM(dir);
    const want = golden(name);
    noGrad(() =>
      tidy(() => {
        const d = maxDiff(model.forward(want('ids')).logits, want('logits'));
        assert.ok(d <= 1e-4, `${name}: logits differ by ${d}`);
      }),
    );
    for (const p of model.parameters()) p.dispose();
  }
});

test('GPT-2 folders load through loadCausalLM as a GPT, as loadCheckpoint does', () => {
  const dir = fileURLToPath(new URL('../../test/fixtures/nn/tiny-gpt2', import.meta.url));
  const { model, family } = loadCausalLM(dir);
  assert.equal(family.family, 'gpt2');
  assert.ok(model instanceof GPT);
  const ids = tensor([[1, 2, 3]], { dtype: 'int64' });
  noGrad(() =>
    tidy(() => {
      assert.equal(maxDiff(model.forward(ids).logits, loadCheckpoint(dir).model.forward(ids).logits), 0);
    }),
  );
});

test('refusals: unsupported model_type, missing tensors, unknown rope_scaling, past the sliding window', () => {
  const dir = tmp();
  try {
    cpSync(familyFixture('smollm2'), dir, { recursive: true });
    const config = readConfig(dir);
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, model_type: 'falcon' }));
    assert.throws(
      () => loadCausalLM(dir),
      (err: Error) => {
        assert.ok(err instanceof UnsupportedModelError);
        assert.match(
          err.message,
          /config\.json: model_type "falcon" is not supported \(hhkit supports gpt2, llama/,
        );
        return true;
      },
    );
    writeFileSync(
      join(dir, 'config.json'),
      JSON.stringify({ ...config, rope_scaling: { rope_type: 'yarn', factor: 4 } }),
    );
    assert.throws(() => loadCausalLM(dir), /rope_scaling type "yarn" is not supported/);
    // Untied config over tied weights: lm_head.weight is missing.
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, tie_word_embeddings: false }));
    assert.throws(
      () => loadCausalLM(dir),
      (err: Error) => {
        assert.ok(err instanceof MissingTensorsError);
        assert.deepEqual(err.missing, ['lm_head.weight']);
        assert.ok(err.message.includes(dir) && err.message.includes('lm_head.weight'));
        return true;
      },
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const mistral = loadCausalLM(familyFixture('mistral')).model as LlamaForCausalLM;
  assert.equal(mistral.config.slidingWindow, 4096);
  const small = new LlamaForCausalLM({ ...mistral.config, slidingWindow: 4 }, { seed: 1 });
  const ids = tensor([[1, 2, 3, 4, 5]], { dtype: 'int64' });
  assert.throws(
    () => noGrad(() => small.forward(ids)),
    (err: Error) => {
      assert.ok(err instanceof ModelConfigError);
      assert.match(err.message, /5 positions exceed sliding_window 4/);
      return true;
    },
  );
  noGrad(() => tidy(() => small.forward(ids.narrow(1, 0, 4))));
});
