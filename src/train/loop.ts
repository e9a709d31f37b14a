// The LM training loop (pretraining, or SFT with loss on the Assistant's replies), nanoGPT-style: a
// typed config, the data, the model and optimiser, then one visible loop. Resumable bit for bit: a
// checkpoint holds the weights, AdamW's moments, the RNG state and the data position (see state.ts).
// Data-parallel under `hhkit launch` (c10d, see engine/distributed.ts): every rank draws the same global
// micro-batch of batchSize × worldSize examples and trains on its slice; gradients are summed across
// ranks with the loss normalised by the global target count, so N processes with batchSize B take the
// same step as one process with batchSize N·B. Rank 0 evaluates, logs and writes checkpoints.
import { appendFileSync, existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  AdamW,
  agreeFinite,
  assertFinite,
  assertFiniteWeights,
  barrier,
  clipGradNorm,
  crossEntropy,
  type DivergenceContext,
  getLocalRank,
  autocast,
  initProcessGroup,
  injectNonFinite,
  noGrad,
  type Tensor,
  tidy,
} from '../engine/index.ts';
import { loadCheckpoint } from '../nn/checkpoint.ts';
import type { CausalLM } from '../nn/causal-lm.ts';
import { createCausalLM, withDropout } from '../nn/hf-config.ts';
import type { Tokenizer } from '../tokenizer/index.ts';
import { Progress } from '../util/progress.ts';
import { EpochOrder } from '../util/epoch-order.ts';
import { exampleCount, IGNORE_INDEX, makeBatch } from './batches.ts';
import { ConfigError, type LMTrainConfig, trainingDevice } from './config.ts';
import { type PreparedCorpus, prepareCorpus } from './dataset.ts';
import { learningRate } from './schedule.ts';
import {
  endTrainingRun,
  generatorStates,
  initialTrainerState,
  resumableCheckpoint,
  startTrainingRun,
  type TrainerState,
  trainingCheckpointDir,
  writeTrainingCheckpoint,
} from './state.ts';
import { saveLMCheckpoint } from './save.ts';

export type TrainEvent =
  | { type: 'data'; data: PreparedCorpus; trainExamples: number; evalExamples: number }
  | { type: 'resume'; step: number; dir: string }
  | { type: 'step'; step: number; loss: number; lr: number; gradNorm: number; tokensPerSec: number }
  | { type: 'eval'; step: number; loss: number }
  | { type: 'checkpoint'; step: number; dir: string }
  /** Something the run accepted but a user should know (e.g. a resume with a changed lr). */
  | { type: 'warning'; message: string };

export interface TrainLMOptions {
  tokenizer: Tokenizer;
  /** Continue from OUT/checkpoint when there is one (else start fresh). Without it, an existing checkpoint is an error. */
  resume?: boolean;
  /** Draw a progress bar on stderr. */
  progress?: boolean;
  /** Progress bar label. */
  label?: string;
  onEvent?: (event: TrainEvent) => void;
  /** Load an init or resume checkpoint even if its weights hold NaN/±Inf (by default an error). */
  allowNonFinite?: boolean;
}

export interface TrainLMResult {
  /** The latest checkpoint folder (loadCheckpoint reads it; OUT/checkpoint points at it). */
  checkpoint: string;
  steps: number;
  /** The step this run started from (0 for a fresh run). */
  resumedFrom: number;
  firstLoss: number;
  lastLoss: number;
  evalLoss: number | null;
  /** Training tokens per second in this run, over all ranks (NaN if it did no step). */
  tokensPerSec: number;
  /** Processes that trained together (1 unless run under `hhkit launch`). */
  worldSize: number;
  seconds: number;
  parameters: number;
}

/**
 * Config keys that must not change across a resume (the rest — steps, eval/checkpoint cadence — may; a
 * changed lr or minLr is accepted with a warning: lowering it is how a run that diverged goes on).
 */
const FIXED_ON_RESUME = [
  'data',
  'lossOn',
  'blockSize',
  'evalFraction',
  'nLayer',
  'nHead',
  'nEmbd',
  'dropout',
  'init',
  'batchSize',
  'gradAccum',
  'seed',
] as const;

/**
 * Trains a GPT on a corpus with AdamW, warmup + cosine decay, gradient accumulation and clipping,
 * evaluating and checkpointing to `config.out` as it goes.
 *
 * @example
 * const tokenizer = Tokenizer.fromFile('runs/lm/tokenizer.json');
 * const config = resolveLMTrainConfig({ data: 'world/pretrain.jsonl', out: 'runs/lm', steps: 500 });
 * const result = await trainLM(config, { tokenizer, progress: true });
 * result.lastLoss < result.firstLoss; // true
 */
export async function trainLM(config: LMTrainConfig, options: TrainLMOptions): Promise<TrainLMResult> {
  const c = config;
  const started = performance.now();
  const out = resolve(c.out);
  // One process, or one rank of `hhkit launch` (the process group comes from the environment).
  const { rank, worldSize } = initProcessGroup();
  const main = rank === 0;
  mkdirSync(out, { recursive: true });
  const emit = main ? (options.onEvent ?? (() => {})) : () => {};
  const tokenizerPath = join(out, 'tokenizer.json');
  if (main && !existsSync(tokenizerPath)) options.tokenizer.save(tokenizerPath);
  const metricsPath = join(out, 'metrics.jsonl');

  // ---- data: tokenised once, cached in OUT/data (by the first rank of each machine; the others wait) ----
  const prepare = () =>
    prepareCorpus({
      data: c.data,
      cacheDir: join(out, 'data'),
      tokenizer: options.tokenizer,
      lossOn: c.lossOn,
      evalFraction: c.evalFraction,
    });
  const first = getLocalRank() === 0;
  const prepared = first ? await prepare() : undefined;
  barrier();
  const data = prepared ?? (await prepare());
  const T = c.blockSize;
  const trainExamples = exampleCount(data.train, T);
  const evalExamples = exampleCount(data.eval, T);
  if (trainExamples === 0) {
    throw new ConfigError(
      `${c.data}: ${data.train.tokens.length} training tokens; blockSize ${T} needs at least ${T + 1}`,
    );
  }
  emit({ type: 'data', data, trainExamples, evalExamples });

  // ---- model and optimiser (nanoGPT: weight decay only on ≥2-D tensors: matmul weights, embeddings) ----
  const device = trainingDevice(c);
  const allowNonFinite = options.allowNonFinite ?? false;
  const model = createModel(c, options.tokenizer.vocabSize, allowNonFinite);
  if (device !== 'cpu') model.to({ device });
  const params = model.parameters();
  // bf16: autocast the forward pass (matmuls in bfloat16); the loss, backward and AdamW stay float32.
  const forward = (ids: Tensor): Tensor =>
    autocast({ device, enabled: c.precision === 'bf16' }, () => model.forward(ids).logits).float();
  const V = model.lmConfig.vocabSize;
  const decay = params.filter((p) => p.ndim >= 2);
  const noDecay = params.filter((p) => p.ndim < 2);
  const optimizer = new AdamW(
    [
      { params: decay, lr: c.lr, weightDecay: c.weightDecay },
      { params: noDecay, lr: c.lr, weightDecay: 0 },
    ],
    { betas: [c.beta1, c.beta2], eps: 1e-8 },
  );
  const order = new EpochOrder(trainExamples, c.seed);
  let state: TrainerState = initialTrainerState(c);

  // ---- resume: weights, AdamW moments, RNG and data position from OUT/checkpoint ----
  const ckpt = resumableCheckpoint(out, options.resume);
  let checkpointDir = ckpt?.dir ?? '';
  if (ckpt) {
    checkResumable(ckpt.trainer.config, c);
    for (const message of changedLearningRate(ckpt.trainer.config, c)) emit({ type: 'warning', message });
    const saved = loadCheckpoint(ckpt.dir, { allowNonFinite });
    model.loadStateDict(saved.model.stateDict());
    for (const p of saved.model.parameters()) p.dispose();
    state = { ...ckpt.trainer, config: c };
    order.position = state.examplesSeen;
    emit({ type: 'resume', step: state.step, dir: ckpt.dir });
  }
  // AdamW moments, RNG (dropout; GPT's init used its own seed), metrics, rank 0's weights everywhere, and
  // the reducer that sums gradients over ranks during backward.
  const reducer = startTrainingRun({
    ckpt,
    optimizer,
    params,
    metricsPath,
    seed: c.seed,
    rank,
    device,
    out,
    keepCheckpoints: c.keepCheckpoints,
  });
  const resumedFrom = state.step;

  const evaluate = (): number | null => {
    const n = Math.min(evalExamples, c.evalBatches * c.batchSize);
    if (n === 0) return null;
    model.eval();
    let lossSum = 0;
    let targets = 0;
    for (let at = 0; at < n; at += c.batchSize) {
      const indices = Array.from({ length: Math.min(c.batchSize, n - at) }, (_, i) => at + i);
      lossSum += noGrad(() =>
        tidy(() => {
          const batch = makeBatch(data.eval, indices, T);
          targets += batch.targets;
          const logits = forward(batch.ids.to({ device })); // (B, T, V)
          return tokenLoss(logits, batch.labels.to({ device }), V).item();
        }),
      );
    }
    model.train();
    return targets > 0 ? lossSum / targets : null;
  };

  // ---- the loop ----
  const bar =
    options.progress && main && state.step < c.steps
      ? new Progress({ total: c.steps, label: options.label ?? 'lm', unit: 'step' })
      : null;
  bar?.resumeAt(state.step);
  const schedule = { ...c, decaySteps: c.decaySteps || c.steps };
  const tokensPerStep = c.batchSize * worldSize * T * c.gradAccum;
  let runTokens = 0;
  let runSeconds = 0;
  model.train();
  // A run that stops (a divergence, a peer gone) still frees its hooks, weights and moments: library
  // callers (online rounds) train several models in one process.
  let parameters = 0;
  try {
    for (let step = state.step; step < c.steps; step++) {
      const t0 = performance.now();
      // 1. learning rate for this step
      const lr = learningRate(step, schedule);
      for (const group of optimizer.groups) group.lr = lr;
      // 2. the step's examples: gradAccum global micro-batches of batchSize × worldSize; this rank's slice
      const global = Array.from({ length: c.gradAccum }, () => order.take(c.batchSize * worldSize));
      const micro = global.map((indices) => indices.slice(rank * c.batchSize, (rank + 1) * c.batchSize));
      // 3. forward/backward per micro-batch. The loss is summed over target tokens and divided by the
      //    step's total over all ranks, so the accumulated (and all-rank summed) gradient equals one batch
      //    of batchSize·gradAccum·worldSize.
      const stepTargets = Math.max(
        1,
        global.reduce((n, indices) => n + countTargets(data, indices, T), 0),
      );
      //    A non-finite loss stops the run on every rank before the backward that sums gradients over
      //    ranks (agreeFinite); earlier micro-batches' backwards are local, so a rank may run them alone.
      const guard: DivergenceContext = {
        trainer: options.label ?? 'lm',
        step: step + 1,
        lastGood: checkpointDir,
        init: c.init,
      };
      let loss = 0;
      for (const [k, indices] of micro.entries()) {
        const lastMicro = k === micro.length - 1;
        loss = tidy(() => {
          const batch = makeBatch(data.train, indices, T);
          const logits = forward(batch.ids.to({ device })); // (B, T, V)
          const l = injectNonFinite(
            tokenLoss(logits, batch.labels.to({ device }), V).div(stepTargets),
            step + 1,
          );
          let sum = loss + l.item();
          if (lastMicro) {
            // the step's loss over all ranks; then the backward that sums the gradients, bucket by bucket
            [sum] = agreeFinite(guard, 'the loss', [sum]) as [number];
            reducer.arm();
          }
          l.backward();
          return sum;
        });
      }
      // 4. finish summing gradients over ranks; check, clip, update, clear. Every rank holds the same summed
      //    gradient, so all see the same norm (and stop together on a non-finite one).
      if (worldSize > 1) reducer.finish();
      const gradNorm = clipGradNorm(params, c.gradClip > 0 ? c.gradClip : Number.POSITIVE_INFINITY);
      assertFinite(guard, 'the gradient norm', gradNorm);
      optimizer.step();
      optimizer.zeroGrad();
      const seconds = (performance.now() - t0) / 1000;
      runTokens += tokensPerStep;
      runSeconds += seconds;
      state = {
        ...state,
        step: step + 1,
        examplesSeen: order.position,
        tokensSeen: state.tokensSeen + tokensPerStep,
        firstLoss: step === 0 ? loss : state.firstLoss,
        lastLoss: loss,
      };
      const tokensPerSec = runTokens / runSeconds;
      emit({ type: 'step', step: step + 1, loss, lr, gradNorm, tokensPerSec });
      // 5. periodic eval, metrics line, checkpoint
      const last = step + 1 === c.steps;
      let evalLoss: number | null = null;
      if (main && (last || (c.evalEvery > 0 && (step + 1) % c.evalEvery === 0))) {
        evalLoss = evaluate();
        if (evalLoss !== null) {
          state.lastEvalLoss = evalLoss;
          emit({ type: 'eval', step: step + 1, loss: evalLoss });
        }
      }
      const metrics = { step: step + 1, loss, lr, gradNorm, tokens: state.tokensSeen, tokensPerSec, seconds };
      if (main) {
        appendFileSync(
          metricsPath,
          `${JSON.stringify(evalLoss === null ? metrics : { ...metrics, evalLoss })}\n`,
        );
      }
      const checkpointStep = last || (step + 1) % c.checkpointEvery === 0;
      // Never a non-finite checkpoint (it would become OUT/checkpoint and could prune the good ones); the
      // ranks hold the same weights, so each checks its own and all stop together.
      if (checkpointStep) assertFiniteWeights(guard, model.namedParameters());
      if (checkpointStep) {
        const trainer = state;
        checkpointDir = tidy(() => {
          // Every rank's generator states (dropout), gathered for rank 0's checkpoint: a collective.
          const generators = generatorStates(device);
          // The other ranks name rank 0's folder in their divergence messages.
          if (!main) return trainingCheckpointDir(out, step + 1);
          return writeTrainingCheckpoint(
            out,
            trainer,
            optimizer.state(),
            generators,
            (dir, files) => saveLMCheckpoint(dir, model, trainer, tokenizerPath, files),
            c.keepCheckpoints,
          );
        });
        emit({ type: 'checkpoint', step: step + 1, dir: checkpointDir });
      }
      bar?.tick(1, { loss, 'tok/s': Math.round(tokensPerSec) });
      // Yield to the event loop between steps so signals and stream writes are handled.
      await new Promise<void>((done) => setImmediate(done));
    }
  } finally {
    bar?.done();
    parameters = endTrainingRun(reducer, params, optimizer);
  }
  return {
    checkpoint: checkpointDir,
    steps: state.step,
    resumedFrom,
    firstLoss: state.firstLoss,
    lastLoss: state.lastLoss,
    evalLoss: state.lastEvalLoss,
    tokensPerSec: runSeconds > 0 ? runTokens / runSeconds : Number.NaN,
    seconds: (performance.now() - started) / 1000,
    parameters,
    worldSize,
  };
}

/** Summed cross-entropy over the labels that are not IGNORE_INDEX; logits: (B, T, V), labels: (B, T). */
function tokenLoss(logits: Tensor, labels: Tensor, V: number): Tensor {
  return crossEntropy(logits.view(-1, V), labels.view(-1), { ignoreIndex: IGNORE_INDEX, reduction: 'sum' });
}

// Target-token count of a micro-batch, from the mask alone (no tensors).
function countTargets(data: PreparedCorpus, indices: readonly number[], T: number): number {
  const mask = data.train.mask;
  if (mask === null) return indices.length * T;
  let n = 0;
  for (const example of indices) for (let t = 1; t <= T; t++) n += mask[example * T + t]!;
  return n;
}

// A fresh GPT-2 of the configured size, or the init folder's model (any family) with the configured dropout.
function createModel(c: LMTrainConfig, vocabSize: number, allowNonFinite: boolean): CausalLM {
  if (!c.init) {
    const config = {
      nLayer: c.nLayer,
      nHead: c.nHead,
      nEmbd: c.nEmbd,
      nPositions: c.blockSize,
      vocabSize,
      dropout: c.dropout,
    };
    return createCausalLM({ family: 'gpt2', config }, { seed: c.seed });
  }
  const init = loadCheckpoint(c.init, { allowNonFinite });
  const from = init.model.lmConfig;
  if (from.vocabSize !== vocabSize) {
    throw new ConfigError(
      `init ${c.init}: vocabSize ${from.vocabSize} differs from the tokenizer's ${vocabSize}`,
    );
  }
  if (from.maxPositions < c.blockSize) {
    throw new ConfigError(
      `init ${c.init}: the model's context length (maxPositions ${from.maxPositions}) is shorter than blockSize ${c.blockSize}`,
    );
  }
  return withDropout(init.model, c.dropout, { seed: c.seed });
}

function checkResumable(saved: LMTrainConfig, now: LMTrainConfig): void {
  // Paths compare resolved, so a relative and an absolute spelling of the same corpus agree.
  const value = (c: LMTrainConfig, k: (typeof FIXED_ON_RESUME)[number]): unknown =>
    (k === 'data' || k === 'init') && c[k] ? resolve(c[k]) : c[k];
  const changed = FIXED_ON_RESUME.filter((k) => value(saved, k) !== value(now, k));
  if (changed.length > 0) {
    const what = changed
      .map((k) => `${k}: ${JSON.stringify(saved[k])} → ${JSON.stringify(now[k])}`)
      .join(', ');
    throw new ConfigError(`cannot resume with a different ${what}; use the checkpoint's values or a new out`);
  }
}

/** Warnings for a resume whose peak or final learning rate differs from the checkpoint's run. */
function changedLearningRate(saved: LMTrainConfig, now: LMTrainConfig): string[] {
  return (['lr', 'minLr'] as const)
    .filter((k) => saved[k] !== now[k])
    .map(
      (k) =>
        `resuming with ${k} ${now[k]} (the checkpoint's run used ${saved[k]}); the schedule goes on from the checkpoint's step with the new value`,
    );
}
