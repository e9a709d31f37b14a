// RLHF with PPO (Bai et al. 2022 §4.1; Ziegler et al. 2019), in TRL's numbered stages. One step:
//   1. rollout   sample a response per prompt with the fast KV-cache sampler (temperature 1, no top-k)
//   2. score     the reward of the full transcript (the PM's score at the end of the response)
//   3. KL-penalised rewards: −λ_KL·KL_t per token against the frozen initial policy, + score on the last token
//   4. whiten    optionally rescale the per-token rewards
//   5. GAE       advantages (γ, λ) from a value head, then whitened
//   6. clipped policy loss + clipped value loss, K passes over the batch in minibatches
// Resumable bit for bit: rollouts are seeded by (seed, step), minibatch order by (seed, step, epoch), and a
// checkpoint holds the policy, value head, AdamW moments and the KL controller.
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  AdamW,
  clipGradNorm,
  decodeSafetensors,
  encodeSafetensors,
  noGrad,
  type Tensor,
  tensor,
  tidy,
} from '../engine/index.ts';
import { loadCheckpoint, saveCheckpoint } from '../nn/checkpoint.ts';
import type { GPT } from '../nn/gpt.ts';
import { ScalarHead } from '../nn/heads.ts';
import { prefixKeys, stripPrefix } from '../nn/module.ts';
import type { Tokenizer } from '../tokenizer/index.ts';
import { Progress } from '../util/progress.ts';
import { gae, penalisedRewards, whiten } from './advantages.ts';
import { evaluatePolicy, matrix, type PolicyEvaluation } from './evaluate.ts';
import { AdaptiveKLController, FixedKLController, type KLController, klPerToken } from './kl.ts';
import { clippedPolicyLoss, clippedValueLoss, tokenEntropy } from './losses.ts';
import { type PPOConfig, validatePPOConfig } from './ppo-config.ts';
import { ActorCritic, gatherLogprobs, responseLogits } from './policy.ts';
import { permutation, type RewardFn, sampleRollout } from './rollout.ts';
import {
  latestRunCheckpoint,
  readRunState,
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
  | { type: 'checkpoint'; step: number; dir: string }
  | { type: 'warning'; step: number; kind: 'negative-kl' | 'collapse' | 'sampling'; message: string };

export interface PPOOptions {
  config: PPOConfig;
  /** Checkpoint folder of the initial policy (the context-distilled LM); also the frozen KL reference. */
  init: string;
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
}

export interface PPOResult {
  checkpoint: string;
  steps: number;
  resumedFrom: number;
  /** Held-out evaluations, first (before training, when run from step 0) and last. */
  firstEval: PolicyEvaluation | null;
  lastEval: PolicyEvaluation | null;
  lastStep: PPOStepMetrics | null;
}

/** Thrown when a loss or reward is NaN/Inf; OUT/checkpoint still points at the last good weights. */
export class PPODivergenceError extends Error {
  override name = 'PPODivergenceError';
}

interface RunState {
  step: number;
  klCoef: number;
  init: string;
  config: PPOConfig;
  firstEval: PolicyEvaluation | null;
}

const VALUE_HEAD = 'value_head';
const TRUNK_FILE = 'value-trunk.safetensors';
const OPT_FILE = 'ppo-optimizer.safetensors';
const sum = (xs: ArrayLike<number>): number => {
  let total = 0;
  for (let i = 0; i < xs.length; i++) total += xs[i]!;
  return total;
};

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
  const out = resolve(c.out);
  mkdirSync(out, { recursive: true });
  const metricsPath = join(out, 'metrics.jsonl');
  const emit = opts.onEvent ?? (() => {});
  if (opts.prompts.length === 0) throw new RangeError('ppo: no training prompts');

  // Models: the frozen reference, the policy (+ value trunk) from the checkpoint or the initial policy.
  const reference = loadCheckpoint(opts.init).model.eval();
  const existing = latestRunCheckpoint(out);
  if (existing && !opts.resume)
    throw new Error(
      `${out} already holds a PPO run (${existing}); pass resume to continue it or pick another out`,
    );
  const from = existing ?? opts.init;
  const loaded = loadCheckpoint(from);
  const valueHead = new ScalarHead(loaded.config.nEmbd, { seed: c.seed, std: 0.01 });
  const headTensors = stripPrefix(loaded.extra, VALUE_HEAD);
  if (Object.keys(headTensors).length > 0) valueHead.loadStateDict(headTensors);
  let trunk: GPT | null = null;
  if (c.valueModel === 'separate') {
    trunk = loadCheckpoint(opts.init).model;
    if (existing)
      tidy(() => trunk!.loadStateDict(decodeSafetensors(readBytes(join(existing, TRUNK_FILE))).tensors));
  }
  for (const t of Object.values(loaded.extra)) t.dispose();
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
      truncateMetrics(metricsPath, state.step);
      emit({ type: 'resume', step: state.step, dir: existing });
    } else {
      writeFileSync(metricsPath, '');
    }
    const kl: KLController =
      c.klController === 'adaptive'
        ? new AdaptiveKLController(state.klCoef, c.klTarget, c.klHorizon)
        : new FixedKLController(state.klCoef);
    const log = (record: object): void => appendFileSync(metricsPath, `${JSON.stringify(record)}\n`);

    const promptTokens = await opts.tokenizer.encodeBatch(opts.prompts, { allowSpecial: false });
    const evaluate = async (step: number): Promise<PolicyEvaluation | null> => {
      if (!opts.evalPrompts?.length) return null;
      const evaluation = await evaluatePolicy(ac.policy, opts.tokenizer, opts.evalPrompts, {
        maxNewTokens: c.maxNewTokens,
        seed: c.seed * 7919 + 17, // the same seed every time: differences come from the policy
        reward: opts.reward,
        ...(opts.gold ? { gold: opts.gold } : {}),
        reference,
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
      const runState: RunState = { ...state, step, klCoef: kl.value };
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

    if (state.step === 0 && c.evalEvery > 0) state.firstEval = await evaluate(0);
    const bar = opts.progress ? new Progress({ total: c.steps, label: 'ppo', unit: 'step' }) : null;
    bar?.resumeAt(state.step);
    let lastStep: PPOStepMetrics | null = null;
    let lastEval: PolicyEvaluation | null = null;
    let checkpoint = existing ?? '';
    const resumedFrom = state.step;

    for (let step = state.step + 1; step <= c.steps; step++) {
      const t0 = performance.now();
      // 1. rollout: B prompts in a seeded order that cycles through the prompt set.
      const order = permutation(
        promptTokens.length,
        c.seed * 1_000_003 + Math.floor(((step - 1) * c.batchSize) / promptTokens.length),
      );
      const rows = Array.from(
        { length: c.batchSize },
        (_, i) => order[((step - 1) * c.batchSize + i) % promptTokens.length]!,
      );
      const rollout = await sampleRollout(
        ac.policy,
        opts.tokenizer,
        rows.map((i) => promptTokens[i]!),
        {
          maxNewTokens: c.maxNewTokens,
          seed: c.seed * 1_000_003 + step,
        },
      );
      try {
        const t1 = performance.now();
        // 2. score: the reward of the full transcript, read at the end of the response.
        const prompts = rows.map((i) => opts.prompts[i]!);
        const scores = await opts.reward(prompts, rollout.texts);
        if (scores.length !== rows.length || !scores.every(Number.isFinite)) {
          throw new PPODivergenceError(
            `ppo step ${step}: the reward returned a non-finite or missing score; the last good checkpoint is ${checkpoint || opts.init}`,
          );
        }
        const golds = opts.gold ? await opts.gold(prompts, rollout.texts) : [];
        const t2 = performance.now();
        // 3. KL-penalised rewards. Old log-probs and values come from a full forward (not the sampler's cached
        //    ones) so that the PPO ratio is exactly 1 before the first update.
        const B = rows.length;
        const N = rollout.responseWidth;
        const { oldLogprobs, refLogprobs, oldValues } = noGrad(() =>
          tidy(() => {
            const { logits, values } = ac.forward(rollout);
            const refLogits = responseLogits(reference, rollout).logits;
            const arr = (t: Tensor) => Float32Array.from(t.toTypedArray() as Float32Array);
            return {
              oldLogprobs: arr(gatherLogprobs(logits, rollout.responses)),
              refLogprobs: arr(gatherLogprobs(refLogits, rollout.responses)),
              oldValues: arr(values.mul(rollout.mask)),
            };
          }),
        );
        const mask = Float32Array.from(rollout.mask.toTypedArray() as Float32Array);
        const klTokens = tidy(() =>
          Float32Array.from(
            klPerToken(matrix(oldLogprobs, B, N), matrix(refLogprobs, B, N), c.klEstimator)
              .mul(rollout.mask)
              .toTypedArray() as Float32Array,
          ),
        );
        const sequenceKLs = Array.from({ length: B }, (_, b) => sum(klTokens.subarray(b * N, (b + 1) * N)));
        const meanKL = sum(sequenceKLs) / B;
        const centred = scores.map((s) => s - c.rewardOffset); // optional normalisation by the PM's held-out mean
        let rewards = penalisedRewards(klTokens, mask, centred, B, N, kl.value);
        // 4. whiten: TRL's whiten_rewards rescales without shifting the mean, so a good response stays positive.
        if (c.whitenRewards) rewards = whiten(rewards, mask, false);
        // 5. GAE on the value head's estimates, then whitened advantages (as TRL).
        const { advantages: rawAdvantages, returns } = gae(
          { values: oldValues, mask, B, N },
          rewards,
          c.gamma,
          c.lambda,
        );
        const advantages = whiten(rawAdvantages, mask);
        const t3 = performance.now();
        // 6. clipped policy loss + clipped value loss: K passes, minibatches in a seeded order.
        const stats = { policyLoss: 0, valueLoss: 0, clipFraction: 0, approxKL: 0, entropy: 0, n: 0 };
        for (let epoch = 0; epoch < c.ppoEpochs; epoch++) {
          const perm = permutation(B, c.seed * 7_368_787 + step * 131 + epoch);
          for (let start = 0; start < B; start += c.miniBatchSize) {
            const idx = perm.slice(start, start + c.miniBatchSize);
            const s = tidy(() => {
              const pick = (flat: ArrayLike<number>) =>
                matrix(
                  idx.flatMap((b) => Array.from({ length: N }, (_, t) => flat[b * N + t]!)),
                  idx.length,
                  N,
                );
              const rowIndex = tensor(BigInt64Array.from(idx, BigInt));
              const window = {
                sequences: rollout.sequences.indexSelect(0, rowIndex),
                attentionMask: rollout.attentionMask.indexSelect(0, rowIndex),
                promptWidth: rollout.promptWidth,
                responseWidth: N,
              };
              const mbMask = pick(mask);
              const { logits, values } = ac.forward(window);
              const logprobs = gatherLogprobs(logits, rollout.responses.indexSelect(0, rowIndex));
              const policy = clippedPolicyLoss(
                logprobs,
                pick(oldLogprobs),
                pick(advantages),
                mbMask,
                c.clipRange,
              );
              const value = clippedValueLoss(
                values,
                pick(oldValues),
                pick(returns),
                mbMask,
                c.clipRangeValue,
              );
              const loss = policy.loss.add(value.loss.mul(c.vfCoef));
              const lossValue = loss.item();
              if (!Number.isFinite(lossValue)) {
                throw new PPODivergenceError(
                  `ppo step ${step}: the loss is ${lossValue}; training stopped, the last good checkpoint is ${checkpoint || opts.init}`,
                );
              }
              optimizer.zeroGrad();
              loss.backward();
              clipGradNorm(ac.parameters(), c.maxGradNorm);
              optimizer.step();
              optimizer.zeroGrad();
              return {
                policyLoss: policy.loss.item(),
                valueLoss: value.loss.item(),
                clipFraction: policy.clipFraction,
                approxKL: policy.approxKL,
                entropy: tokenEntropy(logits, mbMask),
              };
            });
            stats.policyLoss += s.policyLoss;
            stats.valueLoss += s.valueLoss;
            stats.clipFraction += s.clipFraction;
            stats.approxKL += s.approxKL;
            stats.entropy += s.entropy;
            stats.n++;
          }
        }
        const t4 = performance.now();
        const stopped = rollout.tokens.filter((t) => t.length <= 1).length;
        const metrics: PPOStepMetrics = {
          step,
          reward: sum(scores) / B,
          kl: meanKL,
          sqrtKL: Math.sqrt(Math.max(0, meanKL)),
          klCoef: kl.value,
          gold: golds.length ? sum(golds) / golds.length : Number.NaN,
          entropy: stats.entropy / stats.n,
          clipFraction: stats.clipFraction / stats.n,
          approxKL: stats.approxKL / stats.n,
          policyLoss: stats.policyLoss / stats.n,
          valueLoss: stats.valueLoss / stats.n,
          responseLength: rollout.tokens.reduce((a, t) => a + t.length, 0) / B,
          emptyFraction: stopped / B,
          time: {
            rollout: (t1 - t0) / 1000,
            score: (t2 - t1) / 1000,
            reference: (t3 - t2) / 1000,
            train: (t4 - t3) / 1000,
          },
        };
        kl.update(meanKL, B);
        log({ type: 'step', ...metrics });
        emit({ type: 'step', metrics });
        lastStep = metrics;
        // Guards: a negative KL estimate means the samples did not come from the policy (top-k, a minimum
        // length, temperature ≠ 1); near-all empty responses is the EOS-only collapse.
        if (meanKL < -0.05)
          emit({
            type: 'warning',
            step,
            kind: 'negative-kl',
            message: `mean sequence KL ${meanKL.toFixed(3)} < 0: rollouts are not sampled from the policy itself (top-k, min length or temperature)`,
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
      if (c.snapshotEvery > 0 && step % c.snapshotEvery === 0) {
        saveCheckpoint(join(out, 'snapshots', stepFolderName(step)), {
          model: ac.policy,
          meta: { kind: 'policy', lineage: [opts.init], metrics: { step, kl: lastStep?.kl } },
          ...(loaded.tokenizerPath ? { tokenizerPath: loaded.tokenizerPath } : {}),
        });
      }
      if (step % c.checkpointEvery === 0 || step === c.steps) {
        state.klCoef = kl.value;
        checkpoint = save(step);
        emit({ type: 'checkpoint', step, dir: checkpoint });
      }
    }
    bar?.done();
    if (!checkpoint) checkpoint = save(state.step);
    return { checkpoint, steps: c.steps, resumedFrom, firstEval: state.firstEval, lastEval, lastStep };
  } finally {
    free();
  }
}

function readBytes(path: string): Uint8Array {
  if (!existsSync(path)) throw new Error(`${path}: missing (the checkpoint is incomplete)`);
  return new Uint8Array(readFileSync(path));
}
