// A one-block, byte-level transformer LM trained with the engine: the end-to-end check that `hhkit demo`
// runs until the GPT model layer (src/nn, issue #3) replaces it. Resumable: a checkpoint holds the
// parameters, AdamW moments, the step and the RNG state, written atomically every `checkpointEvery` steps.
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  AdamW,
  arange,
  clipGradNorm,
  crossEntropy,
  embedding,
  getRngState,
  keep,
  layerNorm,
  linear,
  loadSafetensors,
  manualSeed,
  noGrad,
  ones,
  randint,
  randn,
  saveSafetensors,
  setRngState,
  type Tensor,
  tensor,
  tidy,
  zeros,
} from '../engine/index.ts';
import { writeFileAtomicSync } from '../util/atomic.ts';

export interface CharLmConfig {
  steps: number;
  batchSize: number;
  /** Context length in bytes (T). */
  blockSize: number;
  /** Embedding width (C). */
  nEmbd: number;
  nHead: number;
  lr: number;
  seed: number;
  checkpointEvery: number;
}

export const defaultCharLmConfig: CharLmConfig = {
  steps: 600,
  batchSize: 16,
  blockSize: 64,
  nEmbd: 64,
  nHead: 4,
  lr: 3e-3,
  seed: 1,
  checkpointEvery: 100,
};

const V = 256; // bytes

type Params = Record<string, Tensor>;

function initParams(c: CharLmConfig): Params {
  const C = c.nEmbd;
  const w = (...shape: number[]): Tensor => keep(randn(shape).mul(0.02).requiresGrad_());
  const z = (...shape: number[]): Tensor => keep(zeros(shape).requiresGrad_());
  const o = (...shape: number[]): Tensor => keep(ones(shape).requiresGrad_());
  return {
    wte: w(V, C),
    wpe: w(c.blockSize, C),
    ln1_w: o(C),
    ln1_b: z(C),
    attn_w: w(3 * C, C),
    attn_b: z(3 * C),
    proj_w: w(C, C),
    proj_b: z(C),
    ln2_w: o(C),
    ln2_b: z(C),
    fc_w: w(4 * C, C),
    fc_b: z(4 * C),
    fc2_w: w(C, 4 * C),
    fc2_b: z(C),
    lnf_w: o(C),
    lnf_b: z(C),
  };
}

/** logits: (B, T, V) for byte ids (B, T). */
function forward(p: Params, ids: Tensor, c: CharLmConfig): Tensor {
  const [B, T] = ids.shape as [number, number];
  const C = c.nEmbd;
  const H = c.nHead;
  const D = C / H;
  let x = embedding(p.wte!, ids).add(p.wpe!.narrow(0, 0, T)); // (B, T, C)
  // causal self-attention
  const h = layerNorm(x, [C], p.ln1_w, p.ln1_b);
  const [q, k, v] = linear(h, p.attn_w!, p.attn_b)
    .split(C, 2)
    .map((t) => t.view(B, T, H, D).transpose(1, 2));
  const mask = ones([T, T], { dtype: 'bool' }).triu(1); // true above the diagonal = future
  const att = q!
    .matmul(k!.transpose(2, 3))
    .mul(1 / Math.sqrt(D))
    .maskedFill(mask, -1e9)
    .softmax(-1); // (B, H, T, T)
  const y = att.matmul(v!).transpose(1, 2).reshape(B, T, C);
  x = x.add(linear(y, p.proj_w!, p.proj_b));
  // MLP
  const m = linear(layerNorm(x, [C], p.ln2_w, p.ln2_b), p.fc_w!, p.fc_b).gelu('tanh');
  x = x.add(linear(m, p.fc2_w!, p.fc2_b));
  return linear(layerNorm(x, [C], p.lnf_w, p.lnf_b), p.wte!); // tied embeddings
}

export interface CharLmStep {
  step: number;
  loss: number;
  tokensPerSec: number;
}

export interface CharLmResult {
  firstLoss: number;
  lastLoss: number;
  steps: number;
  resumedFrom: number;
  sample: string;
}

/**
 * Trains the byte-level LM on `corpus` (UTF-8 text), checkpointing to `dir`; resumes from `dir` if a
 * checkpoint is there. `onStep` is called after every step.
 *
 * @example await trainCharLm('hello world '.repeat(500), 'runs/charlm', { ...defaultCharLmConfig, steps: 50 });
 */
export function trainCharLm(
  corpus: string,
  dir: string,
  config: CharLmConfig,
  onStep?: (s: CharLmStep) => void,
): CharLmResult {
  const c = config;
  if (c.nEmbd % c.nHead !== 0) throw new RangeError(`nEmbd ${c.nEmbd} must be divisible by nHead ${c.nHead}`);
  mkdirSync(dir, { recursive: true });
  const data = tensor(new Uint8Array(Buffer.from(corpus, 'utf8')), { dtype: 'uint8' })
    .to('int64')
    .keep();
  if (data.numel <= c.blockSize + 1)
    throw new RangeError(`corpus has ${data.numel} bytes; need > ${c.blockSize + 1}`);
  manualSeed(c.seed);
  const params = initParams(c);
  const names = Object.keys(params);
  const opt = new AdamW(
    names.map((n) => params[n]!),
    { lr: c.lr, betas: [0.9, 0.99], weightDecay: 0.01 },
  );
  const ckpt = join(dir, 'checkpoint.safetensors');
  const metricsPath = join(dir, 'metrics.jsonl');
  let start = 0;
  let firstLoss = Number.NaN;
  if (existsSync(ckpt)) {
    const { tensors, metadata } = loadSafetensors(ckpt);
    for (const n of names) noGrad(() => params[n]!.copy_(tensors[`param.${n}`]!));
    const optTensors: Record<string, Tensor> = {};
    for (const [k, t] of Object.entries(tensors)) if (k.startsWith('opt.')) optTensors[k.slice(4)] = t;
    opt.loadState({ step: Number(metadata['step']), tensors: optTensors, lrs: [c.lr] });
    setRngState(tensors['rng']!);
    start = Number(metadata['step']);
    firstLoss = Number(metadata['firstLoss']);
    for (const t of Object.values(tensors)) t.dispose();
  }
  const offsets = arange(c.blockSize + 1).keep();
  let lastLoss = Number.NaN;
  for (let step = start; step < c.steps; step++) {
    const t0 = performance.now();
    const loss = tidy(() => {
      // batch: B random windows of T+1 bytes; inputs are the first T, targets the last T
      const starts = randint(0, data.numel - c.blockSize - 1, [c.batchSize, 1]);
      const windows = data.index([starts.add(offsets)]); // (B, T+1)
      const ids = windows.narrow(1, 0, c.blockSize);
      const targets = windows.narrow(1, 1, c.blockSize);
      const logits = forward(params, ids, c);
      const l = crossEntropy(logits.reshape(-1, V), targets.reshape(-1));
      l.backward();
      clipGradNorm(Object.values(params), 1.0);
      opt.step();
      opt.zeroGrad();
      return l.item();
    });
    if (step === start && start === 0) firstLoss = loss;
    lastLoss = loss;
    const tokensPerSec = (c.batchSize * c.blockSize) / ((performance.now() - t0) / 1000);
    appendFileSync(metricsPath, `${JSON.stringify({ step: step + 1, loss, tokensPerSec })}\n`);
    onStep?.({ step: step + 1, loss, tokensPerSec });
    if ((step + 1) % c.checkpointEvery === 0 || step + 1 === c.steps) {
      tidy(() => {
        const tensors: Record<string, Tensor> = { rng: getRngState() };
        for (const n of names) tensors[`param.${n}`] = params[n]!.detach();
        for (const [k, t] of Object.entries(opt.state().tensors)) tensors[`opt.${k}`] = t;
        saveSafetensors(ckpt, tensors, { step: String(step + 1), firstLoss: String(firstLoss) });
      });
      writeFileAtomicSync(join(dir, 'config.json'), JSON.stringify(c, null, 2));
    }
  }
  const sample = noGrad(() => greedySample(params, c, '\n\nHuman: What is 2 + 3?\n\nAssistant:', 40));
  for (const p of Object.values(params)) p.dispose();
  offsets.dispose();
  data.dispose();
  return { firstLoss, lastLoss, steps: c.steps, resumedFrom: start, sample };
}

function greedySample(p: Params, c: CharLmConfig, prompt: string, n: number): string {
  const bytes = [...Buffer.from(prompt, 'utf8')];
  for (let i = 0; i < n; i++) {
    const next = tidy(() => {
      const ctx = bytes.slice(-c.blockSize);
      const logits = forward(p, tensor([ctx], { dtype: 'int64' }), c); // (1, T, V)
      return logits
        .select(1, ctx.length - 1)
        .argmax(-1)
        .item();
    });
    bytes.push(next);
  }
  return Buffer.from(bytes.slice(Buffer.byteLength(prompt))).toString('utf8');
}

/** The `text` fields of a JSON-lines corpus (the world's pretrain.jsonl); unusable lines are counted. */
export function readCorpus(path: string, maxBytes = 2_000_000): { text: string; skipped: string[] } {
  const parts: string[] = [];
  const skipped: string[] = [];
  let total = 0;
  const lines = readFileSync(path, 'utf8').split('\n');
  for (let i = 0; i < lines.length && total <= maxBytes; i++) {
    const line = lines[i]!;
    if (!line.trim()) continue;
    let text: unknown;
    try {
      text = (JSON.parse(line) as { text?: unknown }).text;
    } catch {
      text = undefined;
    }
    if (typeof text !== 'string') {
      skipped.push(`${path}:${i + 1}: expected a JSON object with a string "text"`);
      continue;
    }
    parts.push(text);
    total += text.length;
  }
  return { text: parts.join('\n'), skipped };
}
