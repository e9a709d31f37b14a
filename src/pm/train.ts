// Preference-model training, nanoGPT-style: config, data, model and optimiser, then one visible loop.
// The same loop runs both of the paper's phases (§2.2, §3.2): PMP on ranked pairs (lr 0.1× pretraining)
// and finetuning on human comparisons (0.01×). Resumable bit for bit through train/state.ts's
// checkpoints: weights, AdamW moments, RNG state and the data position.
// Data-parallel under `hhkit launch` (c10d, see engine/distributed.ts) as train/loop.ts is: every rank
// draws the same global batch of batchSize × worldSize comparisons and trains on its slice; each rank's
// loss is divided by the global count, so the gradients summed across ranks are those of one process
// on the whole batch. Rank 0 evaluates, logs and writes checkpoints.
import { appendFileSync, existsSync, mkdirSync, realpathSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  AdamW,
  agreeFinite,
  assertFinite,
  assertFiniteWeights,
  clipGradNorm,
  type DivergenceContext,
  initProcessGroup,
  injectNonFinite,
  autocast,
  parameterDrift,
  tensor,
  tidy,
} from '../engine/index.ts';
import { type HhkitMeta, loadCheckpoint } from '../nn/checkpoint.ts';
import { Tokenizer } from '../tokenizer/index.ts';
import { ConfigError, trainingDevice } from '../train/config.ts';
import { learningRate } from '../train/schedule.ts';
import {
  endTrainingRun,
  generatorStates,
  initialTrainerState,
  resumableCheckpoint,
  startTrainingRun,
  type TrainerState,
  trainingCheckpointDir,
  writeTrainingCheckpoint,
} from '../train/state.ts';
import { EpochOrder } from '../util/epoch-order.ts';
import { Progress } from '../util/progress.ts';
import { comparisonBatch, type EncodedComparison } from './batch.ts';
import type { PMTrainConfig } from './config.ts';
import {
  encodeComparisons,
  fileList,
  holdOut,
  loadTaskedComparisons,
  sampleComparisons,
  type TaskedComparison,
} from './data.ts';
import { pairAgreement } from '../eval/calibration.ts';
import { correctPairs, lossWeights, preferenceLossTensor } from './loss.ts';
import { likelihoodTokens, loadPreferenceModel, PreferenceModel, savePreferenceModel } from './model.ts';
import { scoreSequences } from './score.ts';

export type PMTrainEvent =
  | { type: 'data'; train: number; eval: number; truncated: number; skippedLines: number; report: string }
  | { type: 'resume'; step: number; dir: string }
  | { type: 'step'; step: number; loss: number; accuracy: number; lr: number }
  | { type: 'eval'; step: number; accuracy: number; loss: number; count: number }
  /** `drift`: how far the ranks' weights differ (parameterDrift; 0 when they agree), data-parallel only. */
  | { type: 'checkpoint'; step: number; dir: string; drift?: number }
  /** Something the run accepted but a user should know (e.g. a resume with a changed lr). */
  | { type: 'warning'; message: string };

export interface TrainPMOptions {
  /** The tokenizer; default: init's tokenizer.json, else config.tokenizer. */
  tokenizer?: Tokenizer;
  /** Continue from OUT/checkpoint when there is one; without it an existing checkpoint is an error. */
  resume?: boolean;
  progress?: boolean;
  label?: string;
  onEvent?: (event: PMTrainEvent) => void;
  /** Comparisons already in memory, used instead of reading config.data / config.eval (experiments). */
  train?: readonly TaskedComparison[];
  eval?: readonly TaskedComparison[];
  /** Load an init or resume checkpoint even if its weights hold NaN/±Inf (by default an error). */
  allowNonFinite?: boolean;
}

export interface TrainPMResult {
  /** The latest checkpoint folder (OUT/checkpoint points at it). */
  checkpoint: string;
  steps: number;
  resumedFrom: number;
  comparisons: number;
  evalComparisons: number;
  firstLoss: number;
  lastLoss: number;
  /** Held-out accuracy against the file's labels at the end (NaN without held-out data). */
  evalAccuracy: number;
  evalLoss: number;
  lr: number;
  seconds: number;
  parameters: number;
  /** Processes that trained together (1 unless run under `hhkit launch`). */
  worldSize: number;
}

/** trainer.json of a PM run: train/state.ts's fields with the PM config, and the PM's own. */
interface PMTrainerState extends TrainerState<PMTrainConfig> {
  lastEvalAccuracy: number | null;
  baseLr: number;
  /** Processes of the run (absent in checkpoints from before data-parallel training: 1). */
  worldSize?: number;
}

/**
 * Keys that must not change across a resume. The learning rate (baseLr × lrMultiplier, minLrRatio) may,
 * with a warning: lowering it is how a run that diverged goes on.
 */
const FIXED_ON_RESUME = [
  'phase',
  'likelihoodLm',
  'data',
  'eval',
  'evalFraction',
  'maxComparisons',
  'init',
  'nLayer',
  'nHead',
  'nEmbd',
  'nPositions',
  'maxLength',
  'dropout',
  'seed',
  'harmlessWeight',
] as const;

/** Comparisons grouped per chunk of this many batches by length, so a batch pads little. */
const LENGTH_GROUP_BATCHES = 8;

/**
 * Trains a preference model: PMP (`phase: 'pmp'`) or finetuning (`'finetune'`) on comparison files,
 * evaluating held-out accuracy and checkpointing to `config.out` (kind 'pm', lineage = init's + init).
 *
 * @example
 * const c = resolvePMTrainConfig('finetune', { init: 'runs/pmp/checkpoint', data: 'world/helpful-train.jsonl',
 *   eval: 'world/helpful-test.jsonl', out: 'runs/pm' });
 * const result = await trainPreferenceModel(c, { progress: true });
 * result.evalAccuracy; // e.g. 0.7
 */
export async function trainPreferenceModel(
  config: PMTrainConfig,
  options: TrainPMOptions = {},
): Promise<TrainPMResult> {
  const c = config;
  const started = performance.now();
  const out = resolve(c.out);
  // One process, or one rank of `hhkit launch` (the process group comes from the environment).
  const { rank, worldSize } = initProcessGroup();
  const main = rank === 0;
  mkdirSync(out, { recursive: true });
  const emit = main ? (options.onEvent ?? (() => {})) : () => {};
  const metricsPath = join(out, 'metrics.jsonl');

  // ---- model: an LM/PM checkpoint with its tokenizer, or a random init of the configured size ----
  const allowNonFinite = options.allowNonFinite ?? false;
  let pm: PreferenceModel;
  let initMeta: HhkitMeta | null = null;
  let tokenizer = options.tokenizer;
  if (c.init) {
    const loaded = loadPreferenceModel(c.init, { seed: c.seed, dropout: c.dropout, allowNonFinite });
    pm = loaded.pm;
    initMeta = loaded.meta;
    if (!tokenizer && loaded.tokenizerPath) tokenizer = Tokenizer.fromFile(loaded.tokenizerPath);
  }
  if (!tokenizer && c.tokenizer) tokenizer = Tokenizer.fromFile(c.tokenizer);
  if (!tokenizer)
    throw new ConfigError(`no tokenizer: init ${c.init || '(none)'} has no tokenizer.json; set tokenizer`);
  // Without init, a fresh GPT-2 of the configured size (any other family comes from an init folder).
  pm ??= PreferenceModel.fresh(
    {
      family: 'gpt2',
      config: {
        nLayer: c.nLayer,
        nHead: c.nHead,
        nEmbd: c.nEmbd,
        nPositions: c.nPositions,
        vocabSize: tokenizer.vocabSize,
        dropout: c.dropout,
      },
    },
    c.seed,
  );
  if (pm.config.vocabSize < tokenizer.vocabSize) {
    throw new ConfigError(`model vocabSize ${pm.config.vocabSize} < tokenizer's ${tokenizer.vocabSize}`);
  }
  if (c.likelihoodLm) {
    if (pm.likelihood) {
      throw new ConfigError(
        `init ${c.init} already has a likelihood feature (its own frozen LM); leave likelihoodLm empty to keep it`,
      );
    }
    const { model: lm } = loadCheckpoint(c.likelihoodLm, { allowNonFinite });
    pm = pm.withLikelihood(lm, likelihoodTokens(tokenizer, c.likelihoodLm));
  }
  const tokenizerPath = join(out, 'tokenizer.json');
  if (main && !existsSync(tokenizerPath)) tokenizer.save(tokenizerPath);
  const maxLength = Math.min(c.maxLength || pm.config.maxPositions, pm.config.maxPositions);

  // ---- data (every rank reads and tokenises it in memory: there is no cache on disk to share) ----
  let train: readonly TaskedComparison[];
  let held: readonly TaskedComparison[];
  let skippedLines = 0;
  let reportText = '';
  if (options.train) {
    train = options.train;
    held = options.eval ?? [];
  } else {
    const loaded = await loadTaskedComparisons(fileList(c.data));
    skippedLines = loaded.report.skipped;
    reportText = loaded.report.format();
    if (c.eval) {
      train = loaded.items;
      held = (await loadTaskedComparisons(fileList(c.eval))).items;
    } else {
      ({ train, test: held } = holdOut(loaded.items, c.evalFraction, c.seed));
    }
  }
  train = sampleComparisons(train, c.maxComparisons, c.seed);
  if (train.length === 0) throw new ConfigError(`${c.data}: no usable training comparisons`);
  const encTrain = await encodeComparisons(tokenizer, train, maxLength);
  const encEval = await encodeComparisons(tokenizer, held, maxLength);
  emit({
    type: 'data',
    train: train.length,
    eval: held.length,
    truncated: encTrain.truncated + encEval.truncated,
    skippedLines,
    report: reportText,
  });
  const data = encTrain.encoded;

  // ---- optimiser (weight decay on ≥2-D weights only) and schedule ----
  const baseLr = c.baseLr || baseLrOf(initMeta) || 1e-3;
  const lr = c.lrMultiplier * baseLr;
  const device = trainingDevice(c);
  if (device !== 'cpu') pm.to({ device });
  const params = pm.parameters();
  // The likelihood feature's one weight has its own group: it learns at likelihoodLrScale × lr.
  const likelihoodWeight = pm.likelihood?.weight;
  const rest = params.filter((p) => p !== likelihoodWeight);
  const lrScales = [1, 1, ...(likelihoodWeight ? [c.likelihoodLrScale] : [])];
  const optimizer = new AdamW(
    [
      { params: rest.filter((p) => p.ndim >= 2), lr, weightDecay: c.weightDecay },
      { params: rest.filter((p) => p.ndim < 2), lr, weightDecay: 0 },
      ...(likelihoodWeight
        ? [{ params: [likelihoodWeight], lr: lr * c.likelihoodLrScale, weightDecay: 0 }]
        : []),
    ],
    { betas: [0.9, 0.95], eps: 1e-8 },
  );
  // A step takes a global batch of batchSize comparisons on each of worldSize processes.
  const globalBatch = c.batchSize * worldSize;
  const totalSteps = c.steps || Math.ceil((c.epochs * data.length) / globalBatch);
  const schedule = { lr, minLr: lr * c.minLrRatio, warmupSteps: c.warmupSteps, decaySteps: totalSteps };
  // The init's real folder (OUT/checkpoint is a link that moves on as that run goes on).
  const lineage = [...(initMeta?.lineage ?? []), ...(c.init ? [realpathSync(c.init)] : [])];
  let state: PMTrainerState = {
    ...initialTrainerState(c),
    lastEvalAccuracy: null,
    baseLr,
    worldSize,
  };

  // ---- resume ----
  const ckpt = resumableCheckpoint<PMTrainerState>(out, options.resume);
  let checkpointDir = ckpt?.dir ?? '';
  if (ckpt) {
    const saved = ckpt.trainer;
    const changed = FIXED_ON_RESUME.filter((k) => saved.config[k] !== c[k]);
    if (changed.length > 0) {
      throw new ConfigError(
        `cannot resume with a different ${changed.map((k) => `${k}: ${JSON.stringify(saved.config[k])} → ${JSON.stringify(c[k])}`).join(', ')}`,
      );
    }
    // The steps' batches depend on the global batch; how it is split over processes does not matter.
    const savedWorld = saved.worldSize ?? 1;
    if (saved.config.batchSize * savedWorld !== globalBatch) {
      throw new ConfigError(
        `cannot resume with a different global batch: batchSize ${saved.config.batchSize} × ${savedWorld} ` +
          `process(es) → ${c.batchSize} × ${worldSize}`,
      );
    }
    const savedLr = saved.baseLr * saved.config.lrMultiplier;
    if (savedLr !== lr || saved.config.minLrRatio !== c.minLrRatio) {
      emit({
        type: 'warning',
        message: `resuming with lr ${lr} (minLrRatio ${c.minLrRatio}); the checkpoint's run used ${savedLr} (baseLr ${saved.baseLr} × lrMultiplier ${saved.config.lrMultiplier}, minLrRatio ${saved.config.minLrRatio}); the schedule goes on from the checkpoint's step with the new values`,
      });
    }
    const { pm: savedPm } = loadPreferenceModel(ckpt.dir, { allowNonFinite });
    pm.loadStateDict(savedPm.stateDict());
    for (const p of savedPm.parameters()) p.dispose();
    state = { ...saved, baseLr, worldSize, config: c };
    emit({ type: 'resume', step: state.step, dir: ckpt.dir });
  }
  // AdamW moments, dropout RNG, metrics, rank 0's weights everywhere, and the gradient reducer.
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
  // The likelihood feature's learned weight, in each metrics line.
  const likelihoodField = (): { likelihoodWeight?: number } =>
    likelihoodWeight ? { likelihoodWeight: likelihoodWeight.item() } : {};
  const order = new EpochOrder(data.length, c.seed);

  const evaluate = (limit: number): { accuracy: number; loss: number; count: number } => {
    const items = limit > 0 ? encEval.encoded.slice(0, limit) : encEval.encoded;
    if (items.length === 0) return { accuracy: Number.NaN, loss: Number.NaN, count: 0 };
    const scores = scoreSequences(
      pm,
      items.flatMap((e) => [e.chosen, e.rejected]),
      tokenizer.padId,
    );
    let correct = 0;
    let loss = 0;
    items.forEach((_, i) => {
      const gap = scores[2 * i]! - scores[2 * i + 1]!;
      correct += pairAgreement(scores[2 * i]!, scores[2 * i + 1]!);
      loss += gap > 0 ? Math.log1p(Math.exp(-gap)) : -gap + Math.log1p(Math.exp(gap));
    });
    return { accuracy: correct / items.length, loss: loss / items.length, count: items.length };
  };

  // ---- the loop ----
  const bar =
    options.progress && main
      ? new Progress({ total: totalSteps, label: options.label ?? c.phase, unit: 'step' })
      : null;
  bar?.resumeAt(state.step);
  pm.train();
  let lastEval: { accuracy: number; loss: number; count: number } | null = null;
  // A run that stops (a divergence, a peer gone) still frees its hooks, weights and moments.
  let parameters = 0;
  try {
    for (let step = state.step; step < totalSteps; step++) {
      const t0 = performance.now();
      // 1. learning rate
      const stepLr = learningRate(step, schedule);
      optimizer.groups.forEach((group, i) => {
        group.lr = stepLr * lrScales[i]!;
      });
      // 2. this step's global batch (length-grouped within a chunk of batches, deterministic given the
      //    step), the same on every rank; this rank trains on its slice of batchSize
      const global = batchAt(order, data, step, globalBatch);
      const batch = global.slice(rank * c.batchSize, (rank + 1) * c.batchSize);
      // 3. one forward over chosen and rejected together: rows 0…B−1 chosen, B…2B−1 rejected. The weighted
      //    loss is summed over the slice and divided by the global count, so the ranks' losses and
      //    gradients add up to the mean over the global batch (L_help + λ·L_harm)/(B·worldSize).
      const B = batch.length;
      const guard: DivergenceContext = {
        trainer: options.label ?? c.phase,
        step: step + 1,
        lastGood: checkpointDir,
        init: c.init,
      };
      const [loss, correct, tokens] = tidy(() => {
        const packed = comparisonBatch(batch, tokenizer.padId);
        // bf16: autocast the forward; the pairwise loss stays float32
        const scores = autocast({ device, enabled: c.precision === 'bf16' }, () => pm.scores(packed)).float(); // (2B)
        const chosen = scores.narrow(0, 0, B);
        const rejected = scores.narrow(0, B, B);
        const weights = tensor(
          lossWeights(
            batch.map((e) => e.task),
            c.harmlessWeight,
          ),
          { device },
        );
        const l = injectNonFinite(preferenceLossTensor(chosen, rejected, weights, global.length), step + 1);
        // A tie counts ½, as in evaluate() and pm/evaluate.ts (pairAgreement).
        const correct = correctPairs(chosen, rejected);
        // 4. loss, correct pairs and tokens summed over ranks BEFORE the backward that sums gradients, so a
        //    non-finite loss on any rank stops every rank here, together (agreeFinite).
        const sums = agreeFinite(guard, 'the loss', [l.item(), correct, packed.attentionMask.sum().item()], {
          checked: 1,
        }) as [number, number, number];
        reducer.arm();
        l.backward();
        return sums;
      });
      // 5. finish summing gradients over ranks; check (the same summed gradient on every rank), clip,
      //    update, clear
      if (worldSize > 1) reducer.finish();
      const accuracy = correct / global.length;
      const gradNorm = clipGradNorm(params, c.gradClip > 0 ? c.gradClip : Number.POSITIVE_INFINITY);
      assertFinite(guard, 'the gradient norm', gradNorm);
      optimizer.step();
      optimizer.zeroGrad();
      state = {
        ...state,
        step: step + 1,
        examplesSeen: (step + 1) * globalBatch,
        tokensSeen: state.tokensSeen + tokens,
        firstLoss: step === 0 ? loss : state.firstLoss,
        lastLoss: loss,
      };
      emit({ type: 'step', step: step + 1, loss, accuracy, lr: stepLr });
      // 6. periodic held-out eval, metrics line, checkpoint
      const last = step + 1 === totalSteps;
      let evalFields = {};
      if (main && (last || (c.evalEvery > 0 && (step + 1) % c.evalEvery === 0))) {
        lastEval = evaluate(last ? 0 : c.evalLimit);
        pm.train();
        if (lastEval.count > 0) {
          state.lastEvalAccuracy = lastEval.accuracy;
          state.lastEvalLoss = lastEval.loss;
          evalFields = {
            evalAccuracy: lastEval.accuracy,
            evalLoss: lastEval.loss,
            evalCount: lastEval.count,
          };
          emit({ type: 'eval', step: step + 1, ...lastEval });
        }
      }
      const seconds = (performance.now() - t0) / 1000;
      if (main) {
        appendFileSync(
          metricsPath,
          `${JSON.stringify({ step: step + 1, loss, accuracy, lr: stepLr, gradNorm, tokens: state.tokensSeen, seconds, ...likelihoodField(), ...evalFields })}\n`,
        );
      }
      const checkpointStep = last || (step + 1) % c.checkpointEvery === 0;
      // A cheap check that the ranks still hold the same weights (a collective: every rank takes part).
      const drift = checkpointStep && worldSize > 1 ? parameterDrift(params) : undefined;
      // Never a non-finite checkpoint (it would become OUT/checkpoint and could prune the good ones); the
      // ranks hold the same weights, so each checks its own and all stop together.
      if (checkpointStep) assertFiniteWeights(guard, pm.namedParameters());
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
            (dir, files) => savePreferenceModel(dir, pm, metaOf(trainer, lineage), tokenizerPath, files),
            c.keepCheckpoints,
          );
        });
        emit({
          type: 'checkpoint',
          step: step + 1,
          dir: checkpointDir,
          ...(drift === undefined ? {} : { drift }),
        });
      }
      bar?.tick(1, { loss, acc: accuracy });
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
    comparisons: data.length,
    evalComparisons: encEval.encoded.length,
    firstLoss: state.firstLoss,
    lastLoss: state.lastLoss,
    evalAccuracy: state.lastEvalAccuracy ?? Number.NaN,
    evalLoss: state.lastEvalLoss ?? Number.NaN,
    lr,
    seconds: (performance.now() - started) / 1000,
    parameters,
    worldSize,
  };
}

/**
 * The comparisons of optimiser step `step`. Steps come in chunks of LENGTH_GROUP_BATCHES batches: a
 * chunk's comparisons are the next slice of the seeded epoch order, sorted by length and cut into
 * batches, so each batch pads little; it depends only on the step, so a resume sees the same batches.
 */
function batchAt(
  order: EpochOrder,
  data: readonly EncodedComparison[],
  step: number,
  batchSize: number,
): EncodedComparison[] {
  const chunk = Math.floor(step / LENGTH_GROUP_BATCHES);
  const indices = order.slice(chunk * LENGTH_GROUP_BATCHES * batchSize, LENGTH_GROUP_BATCHES * batchSize);
  const length = (i: number) => Math.max(data[i]!.chosen.length, data[i]!.rejected.length);
  indices.sort((a, b) => length(a) - length(b) || a - b);
  // Visit the chunk's batches in a scrambled (but fixed) order, not shortest first.
  const k = ((step % LENGTH_GROUP_BATCHES) * 5) % LENGTH_GROUP_BATCHES;
  return indices.slice(k * batchSize, (k + 1) * batchSize).map((i) => data[i]!);
}

/** The pretraining learning rate recorded in a checkpoint's hhkit.json (an LM's lr, a PM's baseLr). */
function baseLrOf(meta: HhkitMeta | null): number {
  const training = meta?.training;
  const value = meta?.kind === 'pm' ? training?.['baseLr'] : training?.['lr'];
  return typeof value === 'number' && value > 0 ? value : 0;
}

function metaOf(trainer: PMTrainerState, lineage: string[]): HhkitMeta {
  return {
    kind: 'pm',
    lineage,
    training: { stage: trainer.config.phase, ...trainer.config, baseLr: trainer.baseLr },
    metrics: {
      step: trainer.step,
      loss: trainer.lastLoss,
      evalAccuracy: trainer.lastEvalAccuracy,
      evalLoss: trainer.lastEvalLoss,
    },
    step: trainer.step,
  };
}
