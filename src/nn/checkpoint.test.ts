// Checkpoint folders: HF-written fixture loads, save → load round trip, atomic replace, clear errors.
import assert from 'node:assert/strict';
import {
  cpSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';
import { loadSafetensors, noGrad, saveSafetensors, type Tensor, tensor, tidy } from '../engine/index.ts';
import {
  CheckpointError,
  NonFiniteCheckpointError,
  gptConfigFromHf,
  gptConfigToHf,
  loadCheckpoint,
  readCheckpointConfig,
  saveCheckpoint,
} from './checkpoint.ts';
import type { CausalLM } from './causal-lm.ts';
import { familyFixture } from './families.fixture.ts';
import { GPT, gptPresets } from './gpt.ts';
import { ScalarHead } from './heads.ts';
import { prefixKeys, StateDictError, stripPrefix } from './module.ts';

const fixtureDir = fileURLToPath(new URL('../../test/fixtures/nn/tiny-gpt2', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'hhkit-ckpt-'));
after(() => rmSync(work, { recursive: true, force: true }));
const ids = tensor(
  [
    [1, 5, 9, 2, 7],
    [3, 3, 0, 49, 4],
  ],
  { dtype: 'int64' },
);
const logitsOf = (model: CausalLM): Tensor => noGrad(() => model.forward(ids).logits);
const maxDiff = (a: Tensor, b: Tensor): number => tidy(() => a.sub(b).abs().max().item());

test('the HF-style fixture folder loads: config, no meta, no tokenizer, attn.bias buffers ignored', () => {
  const ck = loadCheckpoint(fixtureDir);
  assert.deepEqual(ck.family.config, { ...gptPresets.tiny, dropout: 0 });
  assert.equal(ck.meta, null);
  assert.equal(ck.tokenizerPath, null);
  assert.deepEqual(Object.keys(ck.extra), []);
  assert.equal(ck.model.numParameters(), 7904);
});

test('save → load round trip: same logits, meta, extra head, tokenizer, extra files, GPT-2 config keys', () => {
  const model = new GPT({ ...gptPresets.tiny, dropout: 0.1 }, { seed: 7 }).eval();
  const head = new ScalarHead(model.config.nEmbd, { seed: 8 });
  const tokPath = join(work, 'tok.json');
  writeFileSync(tokPath, '{"model": {"type": "BPE"}}');
  const dir = join(work, 'pm');
  const meta = {
    kind: 'pm' as const,
    lineage: ['runs/lm'],
    training: { lr: 1e-5 },
    metrics: { accuracy: 0.7 },
    step: 12,
  };
  saveCheckpoint(dir, {
    model,
    extra: prefixKeys(head.stateDict(), 'score'),
    meta,
    tokenizerPath: tokPath,
    files: { 'optimizer.safetensors': new Uint8Array([1, 2, 3]) },
    hfConfig: { eos_token_id: 0 },
  });
  assert.deepEqual(readdirSync(dir).sort(), [
    'config.json',
    'hhkit.json',
    'model.safetensors',
    'optimizer.safetensors',
    'tokenizer.json',
  ]);
  const hf = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  for (const [k, v] of Object.entries({
    model_type: 'gpt2',
    n_layer: 2,
    n_head: 2,
    n_embd: 16,
    n_positions: 32,
    n_ctx: 32,
    vocab_size: 50,
    layer_norm_epsilon: 1e-5,
    activation_function: 'gelu_new',
    resid_pdrop: 0.1,
    eos_token_id: 0,
  })) {
    assert.deepEqual(hf[k], v, `config.json ${k}`);
  }
  assert.deepEqual(hf.architectures, ['GPT2LMHeadModel']);
  const stored = loadSafetensors(join(dir, 'model.safetensors'));
  assert.equal(stored.metadata['format'], 'pt');
  assert.deepEqual(
    stored.tensors['transformer.h.1.attn.c_attn.weight']?.shape,
    [16, 48],
    'Conv1D layout (in, out)',
  );
  assert.ok(!('lm_head.weight' in stored.tensors), 'tied lm_head not stored');

  const ck = loadCheckpoint(dir);
  assert.deepEqual(ck.family.config, model.config);
  assert.equal(maxDiff(logitsOf(ck.model.eval()), logitsOf(model)), 0);
  assert.equal(ck.meta?.kind, 'pm');
  assert.deepEqual(ck.meta?.lineage, ['runs/lm']);
  assert.deepEqual(ck.meta?.metrics, { accuracy: 0.7 });
  assert.equal(ck.meta?.['step'], 12);
  assert.ok(typeof ck.meta?.createdAt === 'string');
  assert.equal(ck.tokenizerPath, join(dir, 'tokenizer.json'));
  assert.deepEqual(Object.keys(ck.extra).sort(), ['score.bias', 'score.weight']);
  const loadedHead = new ScalarHead(16);
  loadedHead.loadStateDict(stripPrefix(ck.extra, 'score'));
  assert.equal(maxDiff(loadedHead.weight, head.weight), 0);
});

test('saving over an existing checkpoint replaces it whole and leaves no temp folders', () => {
  const dir = join(work, 'lm');
  saveCheckpoint(dir, {
    model: new GPT(gptPresets.tiny, { seed: 1 }),
    meta: { kind: 'lm', lineage: [] },
    files: { 'old.txt': 'x' },
  });
  const second = new GPT(gptPresets.tiny, { seed: 2 });
  saveCheckpoint(dir, { model: second, meta: { kind: 'lm', lineage: [] } });
  assert.ok(!existsSync(join(dir, 'old.txt')), 'files of the old checkpoint are gone');
  assert.deepEqual(
    readdirSync(work).filter((n) => n.startsWith('.')),
    [],
    'no .tmp/.old siblings left',
  );
  assert.equal(maxDiff(logitsOf(loadCheckpoint(dir).model), logitsOf(second)), 0);
  // A crash between the two renames: only the backup exists; loading puts it back.
  const backup = join(work, '.lm.old-123-abc');
  renameSync(dir, backup);
  assert.equal(maxDiff(logitsOf(loadCheckpoint(dir).model), logitsOf(second)), 0);
  assert.ok(existsSync(dir) && !existsSync(backup));
});

test('HF key variants: without the transformer. prefix, with lm_head.weight (tied) — same logits', () => {
  const base = loadCheckpoint(fixtureDir).model;
  const dir = join(work, 'noprefix');
  cpSync(fixtureDir, dir, { recursive: true });
  const { tensors } = loadSafetensors(join(fixtureDir, 'model.safetensors'));
  const renamed: Record<string, Tensor> = {};
  for (const [k, v] of Object.entries(tensors)) renamed[k.replace(/^transformer\./, '')] = v;
  renamed['lm_head.weight'] = tensors['transformer.wte.weight']!;
  saveSafetensors(join(dir, 'model.safetensors'), renamed);
  assert.equal(maxDiff(logitsOf(loadCheckpoint(dir).model), logitsOf(base)), 0);
  // An untied lm_head is refused.
  renamed['lm_head.weight'] = tensors['transformer.wte.weight']!.mul(2);
  saveSafetensors(join(dir, 'model.safetensors'), renamed);
  assert.throws(() => loadCheckpoint(dir), /lm_head\.weight differs/);
});

test('clear errors: missing files, bad config, missing/unexpected/mis-shaped tensors', () => {
  const dir = join(work, 'broken');
  cpSync(fixtureDir, dir, { recursive: true });
  const weights = join(dir, 'model.safetensors');
  const { tensors } = loadSafetensors(weights);

  const missing = { ...tensors };
  delete missing['transformer.h.1.mlp.c_fc.bias'];
  saveSafetensors(weights, missing);
  assert.throws(
    () => loadCheckpoint(dir),
    (e: Error) =>
      e instanceof CheckpointError &&
      e.message.includes('model.safetensors') &&
      e.message.includes('missing keys: transformer.h.1.mlp.c_fc.bias'),
  );
  assert.doesNotThrow(() => loadCheckpoint(dir, { strict: false }));

  const misShaped = {
    ...tensors,
    'transformer.h.0.attn.c_attn.weight': tensors['transformer.h.0.attn.c_attn.weight']!.transpose(0, 1),
  };
  saveSafetensors(weights, misShaped);
  assert.throws(
    () => loadCheckpoint(dir, { strict: false }),
    /transformer\.h\.0\.attn\.c_attn\.weight: checkpoint \(48, 16\) vs model \(16, 48\)/,
  );

  rmSync(weights);
  assert.throws(() => loadCheckpoint(dir), /model\.safetensors: missing/);
  writeFileSync(
    join(dir, 'config.json'),
    JSON.stringify({ ...gptConfigToHf(gptPresets.tiny), activation_function: 'relu' }),
  );
  assert.throws(() => loadCheckpoint(dir), /config\.json: activation_function "relu" is not supported/);
  writeFileSync(join(dir, 'config.json'), '{"n_layer": 2');
  assert.throws(() => readCheckpointConfig(dir), /config\.json: cannot read JSON/);
  rmSync(join(dir, 'config.json'));
  assert.throws(() => loadCheckpoint(dir), /config\.json: missing/);
  assert.throws(() => loadCheckpoint(join(work, 'nowhere')), /checkpoint folder not found/);
  assert.throws(
    () => gptConfigFromHf({ n_layer: 2, n_head: 3, n_embd: 16, n_positions: 8, vocab_size: 5 }),
    /divisible by nHead/,
  );
  assert.throws(
    () => gptConfigFromHf({ n_layer: 2, n_head: 2, n_embd: 16, vocab_size: 5 }),
    /missing n_positions/,
  );
});

test('Module.loadStateDict: strict errors name every problem; values are copied in place', () => {
  const a = new GPT(gptPresets.tiny, { seed: 1 });
  const b = new GPT(gptPresets.tiny, { seed: 2 });
  const wteBefore = b.wte;
  const sd = a.stateDict();
  b.loadStateDict(sd);
  assert.equal(b.wte, wteBefore, 'same parameter tensors (optimisers stay valid)');
  assert.equal(maxDiff(logitsOf(a), logitsOf(b)), 0);
  assert.ok(b.wte.requiresGrad && b.wte.isLeaf);

  const partial: Record<string, Tensor> = { ...sd, extra: sd['transformer.wpe.weight']! };
  delete partial['transformer.ln_f.bias'];
  assert.throws(
    () => b.loadStateDict(partial),
    (e: Error) =>
      e instanceof StateDictError &&
      e.missing.join() === 'transformer.ln_f.bias' &&
      e.unexpected.join() === 'extra' &&
      /missing keys: transformer\.ln_f\.bias.*unexpected keys: extra/.test(e.message),
  );
  const result = b.loadStateDict(partial, { strict: false });
  assert.deepEqual(result, { missing: ['transformer.ln_f.bias'], unexpected: ['extra'] });
});

test('non-finite weights behind a valid header are refused, naming the file and the tensor; allowNonFinite loads them', () => {
  const model = new GPT(gptPresets.tiny, { seed: 3 });
  const dir = join(work, 'nonfinite');
  saveCheckpoint(dir, { model, meta: { kind: 'lm', lineage: [] } });
  const weightsPath = join(dir, 'model.safetensors');
  // Overwrite 4 floats of one tensor with 0xFF bytes (NaN), as flipped bytes in the data section would.
  const bytes = readFileSync(weightsPath);
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8')) as Record<
    string,
    { data_offsets: [number, number] }
  >;
  const name = 'transformer.h.0.mlp.c_fc.weight';
  const start = 8 + headerLength + header[name]!.data_offsets[0];
  bytes.fill(0xff, start + 64, start + 80);
  writeFileSync(weightsPath, bytes);
  assert.throws(
    () => loadCheckpoint(dir),
    (err: Error) =>
      err instanceof NonFiniteCheckpointError &&
      err instanceof CheckpointError &&
      err.message.startsWith(`${weightsPath}: tensor '${name}' holds 4 NaN/±Inf value(s)`) &&
      /--allow-nonfinite/.test(err.message),
  );
  const loaded = loadCheckpoint(dir, { allowNonFinite: true });
  assert.equal(
    tidy(() => loaded.model.stateDict()[name]!.isnan().sum().item()),
    4,
  );
  for (const p of [...loaded.model.parameters(), ...model.parameters()]) p.dispose();
});

test('every family: saveCheckpoint/loadCheckpoint round-trip (config.json model_type, extra head, hhkit.json); bf16 folders load as float32', () => {
  for (const name of ['smollm2', 'pythia', 'smollm2-bf16-sharded']) {
    const src = loadCheckpoint(familyFixture(name));
    assert.equal(src.model.dtype, 'float32', `${name}: upcast by default`);
    const dir = join(work, `family-${name}`);
    const head = new ScalarHead(src.model.lmConfig.hiddenSize, { seed: 3 });
    saveCheckpoint(dir, {
      model: src.model,
      extra: prefixKeys(head.stateDict(), 'score'),
      meta: { kind: 'pm', lineage: [name] },
    });
    const hf = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(hf['model_type'], src.family.family === 'llama' ? 'llama' : 'gpt_neox');
    const back = loadCheckpoint(dir);
    assert.equal(back.family.family, src.family.family);
    assert.deepEqual(back.model.lmConfig, src.model.lmConfig);
    assert.deepEqual(Object.keys(stripPrefix(back.extra, 'score')).sort(), ['bias', 'weight']);
    assert.equal(back.meta?.kind, 'pm');
    assert.deepEqual(readCheckpointConfig(dir), src.model.lmConfig);
    const famIds = tensor([[1, 5, 9, 2, 7]], { dtype: 'int64' }); // vocab 48
    const logits = (m: CausalLM) => noGrad(() => m.eval().forward(famIds).logits);
    assert.equal(maxDiff(logits(back.model), logits(src.model)), 0, name);
    for (const m of [src.model, back.model]) for (const p of m.parameters()) p.dispose();
  }
});
