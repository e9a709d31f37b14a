// RLHF with PPO (Bai et al. 2022 §4.1; Ziegler et al. 2019), in TRL's numbered stages. One step:
//   1. rollout   sample a response per prompt with the fast KV-cache sampler (temperature 1, no top-k)
//   2. score     the reward of the full transcript (the PM's score at the end of the response)
//   3. KL-penalised rewards: −λ_KL·KL_t per token against the frozen initial policy, + score on the last token
//   4. whiten    optionally rescale the per-token rewards
//   5. GAE       advantages (γ, λ) from a value head, then whitened
//   6. clipped policy loss + clipped value loss, K passes over the batch in minibatches
// Resumable bit for bit: the prompts come in epoch order (util/epoch-order.ts, position (step − 1)·B),
// rollouts are seeded by (seed, step), minibatch order by (seed, step, epoch), and a checkpoint holds the
// policy, value head, AdamW moments and the KL controller. A non-finite reward, loss, gradient norm or
// weight stops the run on every rank with one TrainingDivergenceError (engine/finite.ts).
// Data-parallel under `hhkit launch` (c10d, engine/distributed.ts), as TRL/OpenRLHF's rollout batch:
// batchSize is the step's global prompt count. Every rank draws the same prompt order and takes its slice
// of batchSize/W prompts, samples them with its own seed, scores them and computes their reference
// log-probs and values; whitening, the KL controller and the logged metrics use every rank's samples, and
// the update (ppo-update.ts) sums gradients over ranks. Rank 0 evaluates, logs and writes checkpoints.
// Device and precision (c.device, c.precision): the policy, reference, value head (and trunk) move to
// trainingDevice(c) — cuda:LOCAL_RANK under launch — before the optimiser is built; 'bf16' autocasts the
// rollout, policy, value and reference forwards (ppo-update.ts) while the master weights stay float32.
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  AdamW,
  agreeFinite,
  allReduceNumbers,
  assertFiniteWeights,
  broadcast,
  decodeSafetensors,
  encodeSafetensors,
  initProcessGroup,
  parameterDrift,
  TrainingDivergenceError,
  tidy,
} from '../engine/index.ts';
import { loadCheckpoint, refuseNonFinite, saveCheckpoint } from '../nn/checkpoint.ts';
import type { CausalLM } from '../nn/causal-lm.ts';
import { ScalarHead } from '../nn/heads.ts';
import { prefixKeys, stripPrefix } from '../nn/module.ts';
import type { Tokenizer } from '../tokenizer/index.ts';
import { ConfigError, trainingDevice } from '../train/config.ts';
import { EpochOrder } from '../util/epoch-order.ts';
import { EXIT_DIVERGED, HhkitError } from '../util/errors.ts';
import { Progress } from '../util/progress.ts';
import { evaluatePolicy, type PolicyEvaluation } from './evaluate.ts';
import { AdaptiveKLController, FixedKLController, type KLController, NegativeKLGuard } from './kl.ts';
import { ActorCritic } from './policy.ts';
import { type PPOConfig, PPOConfigError, validatePPOConfig } from './ppo-config.ts';
import { ppoUpdate } from './ppo-update.ts';
import { type RewardFn, sampleRollout } from './rollout.ts';
import {
  latestRunCheckpoint,
  pruneStepFolders,
  readRunState,
  runTokenizerPath,
  stepFolderName,
  truncateMetrics,
  writeRunCheckpoint,
} from './state.ts';

export interface PPOStepMetrics {
  step: number;
  /** Mean raw reward (PM score) of the rollouts. */
  reward: number;
  /** Mean sequence KL(π ‖ π_init) of the rollouts (nats), and its square root. */
  kl: number;
  sqrtKL: number;
  klCoef: number;
  /** Mean gold score of the rollouts (NaN without a gold function). */
  gold: number;
  entropy: number;
  clipFraction: number;
  approxKL: number;
  policyLoss: number;
  valueLoss: number;
  responseLength: number;
  /** Fraction of responses that are only a stop token (EOS-only collapse when near 1). */
  emptyFraction: number;
  /** Wall-clock split of the step, seconds. */
  time: { rollout: number; score: number; reference: number; train: number };
}

export type PPOEvent =
  | { type: 'resume'; step: number; dir: string }
  | { type: 'step'; metrics: PPOStepMetrics }
  | { type: 'eval'; step: number; evaluation: PolicyEvaluation }
  | { type: 'checkpoint'; step: number; dir: string; drift: number }
  | { type: 'warning'; step: number; kind: 'negative-kl' | 'collapse' | 'sampling'; message: string };

export interface PPOOptions {
  config: PPOConfig;
  /** Checkpoint folder of the initial policy (the context-distilled LM); also the frozen KL reference. */
  init: string;
  /**
   * Where the policy (and its value head, when the checkpoint has one) starts instead of `init`, e.g. an
   * earlier round's PPO policy; the KL reference, and a separate value trunk (valueModel 'separate'), start
   * from `init`. A resumed run continues from its own checkpoint.
   */
  start?: string;
  tokenizer: Tokenizer;
  /** Training prompts (transcripts ending with "\n\nAssistant:"). */
  prompts: readonly string[];
  /** Held-out prompts for the periodic evaluations. */
  evalPrompts?: readonly string[];
  reward: RewardFn;
  /** Logged beside the reward (the world's gold HH score); never trained on. */
  gold?: RewardFn;
  resume?: boolean;
  progress?: boolean;
  onEvent?: (e: PPOEvent) => void;
  /** Load the init or resume checkpoint even if its weights hold NaN/±Inf (by default an error). */
  allowNonFinite?: boolean;
}

export interface PPOResult {
  checkpoint: string;
  steps: number;
  resumedFrom: number;
  /** Held-out evaluations, first (before training, when run from step 0) and last. */
  firstEval: PolicyEvaluation | null;
  lastEval: PolicyEvaluation | null;
  lastStep: PPOStepMetrics | null;
  /** Processes that trained together (1 unless run under `hhkit launch`). */
  worldSize: number;
  /** The largest parameterDrift measured at a checkpoint (0 on one process). */
  drift: number;
}

/**
 * PPO's divergence error is every trainer's: TrainingDivergenceError (engine/finite.ts). The old name is
 * kept for callers that catch it.
 */
export const PPODivergenceError = TrainingDivergenceError;

/**
 * Thrown at a checkpoint when the ranks' weights no longer agree (they must: same init, summed gradients).
 * Nothing is written; the CLI exits 3 as for a divergence (the run stopped, its last checkpoint is good).
 */
export class PPODriftError extends HhkitError {
  override name = 'PPODriftError';

  constructor(message: string) {
    super(message, { exitCode: EXIT_DIVERGED });
  }
}

/** Largest parameterDrift tolerated at a checkpoint. */
export const MAX_PARAMETER_DRIFT = 1e-4;

interface RunState {
  step: number;
  klCoef: number;
  init: string;
  config: PPOConfig;
  firstEval: PolicyEvaluation | null;
  /**
   * The last step's metrics and evaluation at the checkpoint, so that a run resumed after its last
   * checkpoint (killed before it returned) reports them as the uninterrupted run did (absent in older runs).
   */
  lastStep?: PPOStepMetrics | null;
  lastEval?: PolicyEvaluation | null;
}

const VALUE_HEAD = 'value_head';
const TRUNK_FILE = 'value-trunk.safetensors';
const OPT_FILE = 'ppo-optimizer.safetensors';
const sum = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0);

/**
 * Trains a policy with PPO against `reward`, with a KL penalty to the initial policy.
 *
 * @example
 * const result = await trainPPO({
 *   config: { ...defaultPPOConfig, out: 'runs/ppo', steps: 40 },
 *   init: 'runs/distill/checkpoint', tokenizer, prompts, evalPrompts,
 *   reward: pmScorer, gold: (p, r) => p.map((x, i) => goldJudge(x, r[i]!).hh),
 * });
 */
export async function trainPPO(opts: PPOOptions): Promise<PPOResult> {
  const c = opts.config;
  validatePPOConfig(c);
  // One process, or one rank of `hhkit launch` (the process group comes from the environment).
  const { rank, worldSize } = initProcessGroup();
  const main = rank === 0;
  if (c.batchSize % worldSize !== 0 || c.miniBatchSize % worldSize !== 0) {
    throw new PPOConfigError(
      `ppo: batchSize (${c.batchSize}) and miniBatchSize (${c.miniBatchSize}) are global and must both be divisible by the number of processes (${worldSize}): each rank samples batchSize/${worldSize} prompts and trains on miniBatchSize/${worldSize} of them per optimiser step`,
    );
  }
  const localBatch = c.batchSize / worldSize;
  const device = trainingDevice(c); // a ConfigError when CUDA is asked for but absent
  const out = resolve(c.out);
  mkdirSync(out, { recursive: true });
  const metricsPath = join(out, 'metrics.jsonl');
  const emit = main ? (opts.onEvent ?? (() => {})) : () => {};
  if (opts.prompts.length === 0) throw new RangeError('ppo: no training prompts');

  // Models: the frozen reference, the policy (+ value trunk) from the checkpoint or the initial policy.
  const allowNonFinite = opts.allowNonFinite ?? false;
  const reference = loadCheckpoint(opts.init, { allowNonFinite }).model.eval();
  const existing = latestRunCheckpoint(out);
  if (existing && !opts.resume)
    throw new ConfigError(
      `${out} already holds a PPO run (${existing}); pass resume (--resume) to continue it or pick another out`,
    );
  const from = existing ?? opts.start ?? opts.init;
  const loaded = loadCheckpoint(from, { allowNonFinite });
  loaded.tokenizerPath = runTokenizerPath(out, opts.tokenizer, loaded.tokenizerPath, main);
  const valueHead = new ScalarHead(loaded.model.lmConfig.hiddenSize, { seed: c.seed, std: 0.01 });
  const headTensors = stripPrefix(loaded.extra, VALUE_HEAD);
  if (Object.keys(headTensors).length > 0) valueHead.loadStateDict(headTensors);
  let trunk: CausalLM | null = null;
  if (c.valueModel === 'separate') {
    trunk = loadCheckpoint(opts.init, { allowNonFinite }).model;
    if (existing) {
      tidy(() => {
        const path = join(existing, TRUNK_FILE);
        const { tensors } = decodeSafetensors(readBytes(path), path);
        if (!allowNonFinite) refuseNonFinite(path, tensors);
        trunk!.loadStateDict(tensors);
      });
    }
  }
  for (const t of Object.values(loaded.extra)) t.dispose();
  // Checkpoints load on the CPU; every model moves to the device before the optimiser holds its weights.
  if (device !== 'cpu') for (const m of [reference, loaded.model, trunk, valueHead]) m?.to({ device });
  const ac = new ActorCritic(loaded.model, c.valueModel, trunk, { valueHead }).eval();
  const optimizer = new AdamW(ac.parameters(), { lr: c.lr, weightDecay: 0, eps: 1e-5 });
  // Everything loaded here is freed on the way out (library callers run several trainings in one process).
  const free = (): void => {
    for (const t of Object.values(optimizer.state().tensors)) t.dispose();
    for (const p of [...ac.parameters(), ...reference.parameters()]) p.dispose();
  };
  try {
    let state: RunState = { step: 0, klCoef: c.klCoef, init: opts.init, config: c, firstEval: null };
    if (existing) {
      state = readRunState<RunState>(existing);
      const { tensors, metadata } = decodeSafetensors(readBytes(join(existing, OPT_FILE)));
      optimizer.loadState({ step: Number(metadata['step']), lrs: [c.lr], tensors });
      for (const t of Object.values(tensors)) t.dispose();
      if (main) truncateMetrics(metricsPath, state.step);
      if (main) pruneStepFolders(out, c.keepCheckpoints); // what a kill after the last write left
      emit({ type: 'resume', step: state.step, dir: existing });
    } else if (main) {
      writeFileSync(metricsPath, '');
    }
    // Every rank starts from rank 0's weights (they agree already when all read the same checkpoint).
    broadcast(ac.parameters(), 0);
    const kl: KLController =
      c.klController === 'adaptive'
        ? new AdaptiveKLController(state.klCoef, c.klTarget, c.klHorizon)
        : new FixedKLController(state.klCoef);
    const negativeKL = new NegativeKLGuard();
    const log = (record: object): void => {
      if (main) appendFileSync(metricsPath, `${JSON.stringify(record)}\n`);
    };

    const promptTokens = await opts.tokenizer.encodeBatch(opts.prompts, { allowSpecial: false });
    const evaluate = async (step: number): Promise<PolicyEvaluation | null> => {
      if (!main || !opts.evalPrompts?.length) return null;
      const evaluation = await evaluatePolicy(ac.policy, opts.tokenizer, opts.evalPrompts, {
        maxNewTokens: c.maxNewTokens,
        seed: c.seed * 7919 + 17, // the same seed every time: differences come from the policy
        reward: opts.reward,
        ...(opts.gold ? { gold: opts.gold } : {}),
        reference,
        precision: c.precision,
      });
      const { rewards: _r, golds: _g, ...summary } = evaluation; // per-sample scores stay out of the log
      log({ type: 'eval', step, ...summary, samples: evaluation.samples.slice(0, 2) });
      emit({ type: 'eval', step, evaluation });
      return evaluation;
    };
    const save = (step: number): string => {
      const files: Record<string, Uint8Array> = {
        [OPT_FILE]: tidy(() => {
          const s = optimizer.state();
          return encodeSafetensors(s.tensors, { step: String(s.step) });
        }),
      };
      if (trunk) files[TRUNK_FILE] = tidy(() => encodeSafetensors(trunk!.stateDict()));
      const runState: RunState = { ...state, step, klCoef: kl.value, lastStep, lastEval };
      // stateDict() hands out new tensor handles: free them with the save.
      return tidy(() =>
        writeRunCheckpoint(
          out,
          step,
          runState,
          files,
          (dir, all) =>
            saveCheckpoint(dir, {
              model: ac.policy,
              extra: prefixKeys(valueHead.stateDict(), VALUE_HEAD),
              meta: {
                kind: 'policy',
                lineage: [opts.init],
                training: { algorithm: 'ppo', ...c },
                metrics: { step },
              },
              files: all,
              ...(loaded.tokenizerPath ? { tokenizerPath: loaded.tokenizerPath } : {}),
            }),
          c.keepCheckpoints,
        ),
      );
    };

    // Collective: every rank checks that the weights agree, then rank 0 writes the checkpoint; the other
    // ranks get the folder's name.
    let drift = 0;
    const checkpointAt = (step: number): string => {
      // Never a non-finite checkpoint (the ranks hold the same weights, so all of them stop here together).
      assertFiniteWeights({ trainer: 'ppo', step, lastGood: checkpoint, init: opts.init }, [
        ...ac.policy.namedParameters(),
        ...ac.valueHead.namedParameters().map(([k, t]) => [`${VALUE_HEAD}.${k}`, t] as const),
        ...(trunk ? trunk.namedParameters().map(([k, t]) => [`trunk.${k}`, t] as const) : []),
      ]);
      const measured = parameterDrift(ac.parameters());
      drift = Math.max(drift, measured);
      if (!(measured < MAX_PARAMETER_DRIFT)) {
        throw new PPODriftError(
          `ppo step ${step}: the ${worldSize} ranks' weights differ (parameterDrift ${measured} ≥ ${MAX_PARAMETER_DRIFT}); the gradients were not summed alike on every rank — no checkpoint written. ${checkpoint ? `The last good checkpoint is ${checkpoint} (--resume continues from it)` : `No checkpoint was written yet (the run started from ${opts.init})`}`,
        );
      }
      return main ? save(step) : join(out, 'checkpoints', stepFolderName(step));
    };

    if (state.step === 0 && c.evalEvery > 0) state.firstEval = await evaluate(0);
    const bar = opts.progress && main ? new Progress({ total: c.steps, label: 'ppo', unit: 'step' }) : null;
    bar?.resumeAt(state.step);
    let lastStep: PPOStepMetrics | null = state.lastStep ?? null;
    let lastEval: PolicyEvaluation | null = state.lastEval ?? null;
    let checkpoint = existing ?? '';
    const resumedFrom = state.step;

    const promptOrder = new EpochOrder(promptTokens.length, c.seed);
    for (let step = state.step + 1; step <= c.steps; step++) {
      const t0 = performance.now();
      // 1. rollout: B prompts in epoch order over the prompt set, the same on every rank; this rank
      //    samples its slice of B/W with its own seed.
      const rows = stepPrompts(promptOrder, step, c.batchSize).slice(
        rank * localBatch,
        (rank + 1) * localBatch,
      );
      const rollout = await sampleRollout(
        ac.policy,
        opts.tokenizer,
        rows.map((i) => promptTokens[i]!),
        {
          maxNewTokens: c.maxNewTokens,
          seed: c.seed * 1_000_003 + step + rank * 1_000_000_007,
          precision: c.precision,
        },
      );
      try {
        const t1 = performance.now();
        // 2. score: the reward of the full transcript, read at the end of the response.
        const prompts = rows.map((i) => opts.prompts[i]!);
        const scores = await opts.reward(prompts, rollout.texts);
        // A missing or non-finite score stops every rank, not just the one that got it.
        const missing = scores.length !== rows.length;
        agreeFinite(
          { trainer: 'ppo', step, lastGood: checkpoint, init: opts.init },
          missing ? `the reward (${scores.length} scores for ${rows.length} responses)` : 'the reward',
          [missing ? Number.NaN : sum(scores)],
        );
        const golds = opts.gold ? await opts.gold(prompts, rollout.texts) : [];
        const t2 = performance.now();
        // 3.–6. KL-penalised rewards, whitening, GAE, clipped policy + value loss (ppo-update.ts).
        const update = ppoUpdate(ac, reference, optimizer, rollout, scores, {
          config: c,
          klCoef: kl.value,
          step,
          lastGood: checkpoint,
          init: opts.init,
        });
        // The step's statistics over every rank's samples.
        const B = c.batchSize;
        const [rewardSum = 0, goldSum = 0, klSum = 0, klSumSq = 0, lengthSum = 0, stopped = 0] =
          allReduceNumbers([
            sum(scores),
            sum(golds),
            sum(update.sequenceKLs),
            update.sequenceKLs.reduce((a, k) => a + k * k, 0),
            rollout.tokens.reduce((a, t) => a + t.length, 0),
            rollout.tokens.filter((t) => t.length <= 1).length,
          ]);
        const meanKL = klSum / B;
        const metrics: PPOStepMetrics = {
          step,
          reward: rewardSum / B,
          kl: meanKL,
          sqrtKL: Math.sqrt(Math.max(0, meanKL)),
          klCoef: kl.value,
          gold: golds.length ? goldSum / B : Number.NaN,
          entropy: update.entropy,
          clipFraction: update.clipFraction,
          approxKL: update.approxKL,
          policyLoss: update.policyLoss,
          valueLoss: update.valueLoss,
          responseLength: lengthSum / B,
          emptyFraction: stopped / B,
          time: {
            rollout: (t1 - t0) / 1000,
            score: (t2 - t1) / 1000,
            reference: update.referenceSeconds,
            train: update.trainSeconds,
          },
        };
        kl.update(meanKL, B);
        log({ type: 'step', ...metrics });
        emit({ type: 'step', metrics });
        lastStep = metrics;
        // Guards: a KL estimate biased below zero over several steps means the samples did not come from the
        // policy being scored (one step's batch mean goes negative by noise alone: see NegativeKLGuard);
        // near-all empty responses is the EOS-only collapse.
        const bias = negativeKL.pushTotals(klSum, klSumSq, B);
        if (bias)
          emit({
            type: 'warning',
            step,
            kind: 'negative-kl',
            message: `mean sequence KL over the last ${bias.steps} steps ${bias.mean.toFixed(3)} ± ${bias.stderr.toFixed(3)} (standard error) < 0: the rollouts are not sampled from the policy that is scored (a sampler/scoring mismatch: precision, dropout, or a truncated distribution)`,
          });
        if (metrics.emptyFraction >= 0.9)
          emit({
            type: 'warning',
            step,
            kind: 'collapse',
            message: `${(metrics.emptyFraction * 100).toFixed(0)}% of responses are a bare stop token (EOS-only collapse)`,
          });
        bar?.tick(1, {
          reward: metrics.reward,
          kl: metrics.kl,
          ...(golds.length ? { gold: metrics.gold } : {}),
        });
      } finally {
        rollout.dispose();
      }
      if (c.evalEvery > 0 && (step % c.evalEvery === 0 || step === c.steps)) lastEval = await evaluate(step);
      if (main && c.snapshotEvery > 0 && step % c.snapshotEvery === 0) {
        saveCheckpoint(join(out, 'snapshots', stepFolderName(step)), {
          model: ac.policy,
          meta: { kind: 'policy', lineage: [opts.init], metrics: { step, kl: lastStep?.kl } },
          ...(loaded.tokenizerPath ? { tokenizerPath: loaded.tokenizerPath } : {}),
        });
      }
      if (step % c.checkpointEvery === 0 || step === c.steps) {
        state.klCoef = kl.value;
        checkpoint = checkpointAt(step);
        emit({ type: 'checkpoint', step, dir: checkpoint, drift });
      }
    }
    bar?.done();
    if (!checkpoint) checkpoint = checkpointAt(state.step);
    return {
      checkpoint,
      steps: c.steps,
      resumedFrom,
      firstEval: state.firstEval,
      lastEval,
      lastStep,
      worldSize,
      drift,
    };
  } finally {
    free();
  }
}

/**
 * The prompt indices of PPO step `step` (1-based): positions (step − 1)·B … step·B − 1 of the epoch order,
 * so a batch that runs past the end of the prompts continues with the NEXT epoch's order.
 *
 * @example stepPrompts(new EpochOrder(100, 1), 4, 32) // order₀[96..99], then order₁[0..27]
 */
export function stepPrompts(order: EpochOrder, step: number, batchSize: number): number[] {
  return order.slice((step - 1) * batchSize, batchSize);
}

function readBytes(path: string): Uint8Array {
  if (!existsSync(path)) throw new Error(`${path}: missing (the checkpoint is incomplete)`);
  return new Uint8Array(readFileSync(path));
}
