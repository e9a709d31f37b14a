// Context distillation (Bai et al. 2022 §3; Askell et al. 2021 §3.3): the teacher is the LM with the HHH
// prompt in front; the student is the same LM without it, trained to match the teacher's next-token
// distribution on dialogues: KL(teacher ‖ student) over the teacher's top-k tokens plus one bucket for the
// rest of the mass. The teacher runs once; its outputs are cached on disk (distill-cache.ts). The result
// initialises the PPO policy. Teacher and student move to trainingDevice(c); under precision 'bf16' their
// forwards run in bfloat16 autocast and the logits are cast back to float32 before the top-k and the KL.
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  AdamW,
  agreeFinite,
  assertFinite,
  assertFiniteWeights,
  autocast,
  clipGradNorm,
  type DivergenceContext,
  decodeSafetensors,
  encodeSafetensors,
  injectNonFinite,
  noGrad,
  type Tensor,
  tensor,
  tidy,
} from '../engine/index.ts';
import { loadCheckpoint, saveCheckpoint } from '../nn/checkpoint.ts';
import type { CausalLM } from '../nn/causal-lm.ts';
import type { Tokenizer } from '../tokenizer/index.ts';
import { ConfigError, type HardwareConfig, trainingDevice, validateHardware } from '../train/config.ts';
import { EpochOrder } from '../util/epoch-order.ts';
import { Progress } from '../util/progress.ts';
import { buildTeacherCache, hashTokens, type TeacherCache } from './distill-cache.ts';
import { distillContexts, teacherPrefix, teacherPromptText } from './distill-context.ts';
import { evaluatePolicy } from './evaluate.ts';
import type { RewardFn } from './rollout.ts';
import {
  latestRunCheckpoint,
  pruneStepFolders,
  readRunState,
  runTokenizerPath,
  truncateMetrics,
  writeRunCheckpoint,
} from './state.ts';

export interface DistillConfig extends HardwareConfig {
  out: string;
  steps: number;
  batchSize: number;
  lr: number;
  /** Teacher tokens kept per position (50 in the paper), plus one bucket for the rest. */
  topK: number;
  /** Dialogues longer than this many tokens are cut (keeps the teacher's prefix + dialogue in context). */
  maxTokens: number;
  /** Held-out dialogues for the KL before/after. */
  evalExamples: number;
  /** Response length when sampling for the gold score before/after. */
  maxNewTokens: number;
  seed: number;
  checkpointEvery: number;
  keepCheckpoints: number;
}

export const defaultDistillConfig: DistillConfig = {
  out: 'runs/distill',
  steps: 200,
  batchSize: 16,
  lr: 3e-4,
  topK: 50,
  maxTokens: 64,
  evalExamples: 64,
  maxNewTokens: 32,
  device: 'auto',
  precision: 'fp32',
  seed: 1,
  checkpointEvery: 50,
  keepCheckpoints: 2,
};

export interface DistillOptions {
  config: DistillConfig;
  /** The LM checkpoint: teacher (with the prompt) and student init (without). */
  init: string;
  tokenizer: Tokenizer;
  /**
   * The HHH prompt; a dialogue ("\n\nHuman: …") is appended directly after it. With a chat template its
   * preamble is the teacher's one system message, in place of the template's default (distill-context.ts).
   */
  hhhPrompt: string;
  /** Training dialogues (transcripts). The last `evalExamples` are held out. */
  dialogues: readonly string[];
  /** Prompts to sample from before and after, scored by `gold`. */
  evalPrompts?: readonly string[];
  gold?: RewardFn;
  resume?: boolean;
  progress?: boolean;
  /** Load the LM or resume checkpoint even if its weights hold NaN/±Inf (by default an error). */
  allowNonFinite?: boolean;
  onEvent?: (e: DistillEvent) => void;
}

/**
 * Progress of a distillation run: the teacher's cache filling, a resume from a checkpoint, each step's
 * loss, each checkpoint, and the evaluations before (step 0: the student, and the teacher's gold) and
 * after (the last step) — KL(teacher ‖ student) per token on held-out dialogues, gold score of samples.
 */
export type DistillEvent =
  | { type: 'teacher'; done: number; total: number }
  | { type: 'resume'; step: number; dir: string }
  | { type: 'step'; step: number; loss: number }
  | { type: 'checkpoint'; step: number; dir: string }
  | { type: 'eval'; step: number; kl: number; gold: number; goldTeacher?: number };

export interface DistillReport {
  checkpoint: string;
  /** Mean per-token KL(teacher ‖ student) on held-out dialogues (51-bucket form), before and after. */
  klBefore: number;
  klAfter: number;
  /** Mean gold score of samples on evalPrompts: student before, after, and the teacher (with the prompt). */
  goldBefore: number;
  goldAfter: number;
  goldTeacher: number;
  /** Tokens of the HHH prompt the teacher saw (cut from the left to fit the context). */
  prefixTokens: number;
  prefixTokensTotal: number;
  steps: number;
  resumedFrom: number;
}

/**
 * Throws a ConfigError naming the first key of `c` with a value distillation cannot run with (a count that
 * is not a whole number ≥ 1, a learning rate that is not a positive number, an unknown device/precision).
 * `distill` calls it before loading anything.
 *
 * @example validateDistillConfig({ ...defaultDistillConfig, batchSize: 0 }); // throws: distill: batchSize must be a whole number ≥ 1, got 0
 */
export function validateDistillConfig(c: DistillConfig): void {
  const counts = [
    'steps',
    'batchSize',
    'topK',
    'maxTokens',
    'evalExamples',
    'maxNewTokens',
    'checkpointEvery',
    'keepCheckpoints',
  ] as const;
  for (const key of counts) {
    if (!Number.isInteger(c[key]) || c[key] < 1)
      throw new ConfigError(`distill: ${key} must be a whole number ≥ 1, got ${c[key]}`);
  }
  if (!(Number.isFinite(c.lr) && c.lr > 0))
    throw new ConfigError(`distill: lr must be a number > 0, got ${c.lr}`);
  if (!Number.isInteger(c.seed)) throw new ConfigError(`distill: seed must be a whole number, got ${c.seed}`);
  validateHardware(c);
}

/**
 * The 51-bucket KL(teacher ‖ student) per predicted position: student logits (B, S, V), teacher top-k ids
 * (B, S, K) int64 and log-probs (B, S, K), teacher rest log-prob (B, S); returns (B, S).
 *
 * @example const kl = bucketKL(studentLogits, ids, teacherLogp, teacherRest); // (B, S)
 */
export function bucketKL(
  studentLogits: Tensor,
  ids: Tensor,
  teacherLogp: Tensor,
  teacherRest: Tensor,
): Tensor {
  const total = studentLogits.logsumexp(-1, true); // (B, S, 1)
  const studentTop = studentLogits.gather(-1, ids).sub(total); // (B, S, K)
  const studentRest = studentLogits.scatter(-1, ids, -1e30).logsumexp(-1).sub(total.squeeze(-1)); // (B, S)
  const top = teacherLogp.exp().mul(teacherLogp.sub(studentTop)).sum(-1);
  const rest = teacherRest.exp().mul(teacherRest.sub(studentRest));
  return top.add(rest);
}

/**
 * Mean bucket KL of `model` over the examples `rows` of the cache (or the gradient-carrying loss). The
 * student reads `head` (a chat template's system turn; empty in HH text) then each example. The batch is
 * built on the CPU and moved to the model's device; 'bf16' autocasts the forward only.
 *
 * @example const loss = batchKL(student, cache, head, [0, 1, 2], tok.padId, 'fp32'); // scalar
 */
export function batchKL(
  model: CausalLM,
  cache: TeacherCache,
  head: readonly number[],
  rows: readonly number[],
  padId: number,
  precision: string,
): Tensor {
  const { k } = cache;
  const S = cache.width - 1;
  const H = head.length;
  const width = H + cache.width;
  const B = rows.length;
  // Right-padded student inputs: causal attention never looks right, so the padding changes nothing.
  const input = new BigInt64Array(B * width).fill(BigInt(padId));
  const attention = new Uint8Array(B * width);
  const valid = new Float32Array(B * S);
  const ids = new BigInt64Array(B * S * k);
  const logp = new Float32Array(B * S * k);
  const rest = new Float32Array(B * S);
  rows.forEach((m, b) => {
    [...head, ...cache.examples[m]!].forEach((id, j) => {
      input[b * width + j] = BigInt(id);
      attention[b * width + j] = 1;
    });
    const ex = cache.examples[m]!;
    for (let j = 0; j < ex.length - 1; j++) valid[b * S + j] = 1;
    for (let i = 0; i < S * k; i++) {
      ids[b * S * k + i] = BigInt(cache.ids[m * S * k + i]!);
      logp[b * S * k + i] = cache.logprobs[m * S * k + i]!;
    }
    rest.set(cache.rest.subarray(m * S, m * S + S), b * S);
  });
  const device = model.device;
  const logits = autocast(
    { device, enabled: precision === 'bf16' },
    () =>
      model.forward(tensor(input, { shape: [B, width], device }), {
        attentionMask: tensor(attention, { dtype: 'bool', shape: [B, width], device }),
      }).logits,
  ).float(); // (B, width, V)
  // The example's positions 0 … S − 1 (after the head) predict its tokens 1 … S, as the teacher's cache.
  const kl = bucketKL(
    logits.narrow(1, H, S),
    tensor(ids, { shape: [B, S, k], device }),
    tensor(logp, { shape: [B, S, k], device }),
    tensor(rest, { shape: [B, S], device }),
  );
  const mask = tensor(valid, { shape: [B, S], device });
  return kl.mul(mask).sum().div(mask.sum().clamp(1));
}

function meanKL(
  model: CausalLM,
  cache: TeacherCache,
  head: readonly number[],
  rows: readonly number[],
  padId: number,
  precision: string,
): number {
  let total = 0;
  for (let i = 0; i < rows.length; i += 16) {
    const part = rows.slice(i, i + 16);
    total +=
      noGrad(() => tidy(() => batchKL(model, cache, head, part, padId, precision).item())) * part.length;
  }
  return total / Math.max(1, rows.length);
}

/**
 * Context-distils the HHH prompt into the LM at `init`.
 *
 * @example
 * const report = await distill({ config: { ...defaultDistillConfig, out: 'runs/distill' }, init: 'runs/lm/checkpoint',
 *   tokenizer, hhhPrompt: hhhPrompt(), dialogues, evalPrompts, gold });
 * report.klBefore; report.klAfter;
 */
export async function distill(opts: DistillOptions): Promise<DistillReport> {
  const c = opts.config;
  validateDistillConfig(c);
  const device = trainingDevice(c); // a ConfigError when CUDA is asked for but absent
  const out = resolve(c.out);
  mkdirSync(out, { recursive: true });
  const metricsPath = join(out, 'metrics.jsonl');
  const emit = opts.onEvent ?? (() => {});
  const allowNonFinite = opts.allowNonFinite ?? false;
  const teacherCkpt = loadCheckpoint(opts.init, { allowNonFinite });
  const teacher = teacherCkpt.model.eval();
  if (device !== 'cpu') teacher.to({ device });
  const padId = opts.tokenizer.padId;

  // Data: the student reads head + dialogue, the teacher the HHH prompt (cut from the left, its system turn
  // kept, so prefix + dialogue fits the context) + dialogue: one system turn each (distill-context.ts).
  const {
    head,
    examples: encoded,
    hhh,
  } = await distillContexts(opts.tokenizer, opts.hhhPrompt, opts.dialogues, c.maxTokens);
  if (encoded.length <= c.evalExamples)
    throw new RangeError(
      `distill: ${encoded.length} usable dialogues, need more than evalExamples (${c.evalExamples})`,
    );
  const width = Math.max(...encoded.map((e) => e.length));
  const fullPrefix = hhh.ids;
  const budget = Math.max(0, teacher.lmConfig.maxPositions - width);
  const prefix = teacherPrefix(hhh, budget);
  const key = {
    teacher: resolve(opts.init),
    prefixTokens: prefix.length,
    k: c.topK,
    width,
    examples: encoded.length,
    dataHash: hashTokens([prefix, ...encoded]),
    // A bf16 teacher's cache differs from a float32 one (fp32 keys stay as before, so old caches are reused).
    ...(c.precision === 'bf16' ? { precision: 'bf16' } : {}),
  };
  const cache = buildTeacherCache(teacher, prefix, encoded, {
    dir: join(out, 'teacher-cache'),
    k: c.topK,
    width,
    key,
    padId,
    precision: c.precision,
    onBatch: (done) => emit({ type: 'teacher', done, total: encoded.length }),
  });
  const trainRows = Array.from({ length: encoded.length - c.evalExamples }, (_, i) => i);
  const evalRows = Array.from({ length: c.evalExamples }, (_, i) => encoded.length - c.evalExamples + i);

  // The student: the LM again (or the latest checkpoint on resume).
  const existing = latestRunCheckpoint(out);
  if (existing && !opts.resume)
    throw new ConfigError(
      `${out} already holds a distillation run (${existing}); pass resume (--resume) to continue it or pick another out`,
    );
  const student = loadCheckpoint(existing ?? opts.init, { allowNonFinite }).model.eval();
  const tokenizerPath = runTokenizerPath(out, opts.tokenizer, teacherCkpt.tokenizerPath);
  if (device !== 'cpu') student.to({ device }); // before the optimiser holds its weights
  const optimizer = new AdamW(student.parameters(), { lr: c.lr, weightDecay: 0 });
  const free = (): void => {
    for (const t of Object.values(optimizer.state().tensors)) t.dispose();
    for (const p of [...student.parameters(), ...teacher.parameters()]) p.dispose();
  };
  try {
    type State = { step: number; klBefore: number; goldBefore: number; goldTeacher: number };
    const gold = async (model: CausalLM, withPrefix: boolean): Promise<number> => {
      if (!opts.gold || !opts.evalPrompts?.length) return Number.NaN;
      if (!withPrefix) {
        return (
          await evaluatePolicy(model, opts.tokenizer, opts.evalPrompts, {
            maxNewTokens: c.maxNewTokens,
            seed: c.seed + 99,
            gold: opts.gold,
            precision: c.precision,
          })
        ).gold;
      }
      // The teacher samples with the HHH prompt in front (in a chat template, in place of the prompt's system
      // turn), cut to leave room for prompt + response; the gold judge strips it.
      const evalPrompts = [...opts.evalPrompts];
      const longest = Math.max(
        ...(await opts.tokenizer.encodeWithSystemTurn(evalPrompts, { allowSpecial: false })).map(
          (p) => p.ids.length - p.systemTokens,
        ),
      );
      const room = Math.max(0, model.lmConfig.maxPositions - longest - c.maxNewTokens - 8);
      const textPrefix = await teacherPromptText(opts.tokenizer, hhh, room);
      return (
        await evaluatePolicy(
          model,
          opts.tokenizer,
          evalPrompts.map((p) => textPrefix + p),
          {
            maxNewTokens: c.maxNewTokens,
            seed: c.seed + 99,
            gold: opts.gold,
            batchSize: 8,
            precision: c.precision,
          },
        )
      ).gold;
    };
    let state: State;
    if (existing) {
      state = readRunState<State>(existing);
      const { tensors, metadata } = decodeSafetensors(
        new Uint8Array(readFileSync(join(existing, 'optimizer.safetensors'))),
      );
      optimizer.loadState({ step: Number(metadata['step']), lrs: [c.lr], tensors });
      for (const t of Object.values(tensors)) t.dispose();
      truncateMetrics(metricsPath, state.step, { closingEval: true });
      pruneStepFolders(out, c.keepCheckpoints); // what a kill after the last write left
      emit({ type: 'resume', step: state.step, dir: existing });
    } else {
      state = {
        step: 0,
        klBefore: meanKL(student, cache, head, evalRows, padId, c.precision),
        goldBefore: await gold(student, false),
        goldTeacher: await gold(teacher, true),
      };
      const before = {
        type: 'eval',
        step: 0,
        kl: state.klBefore,
        gold: state.goldBefore,
        goldTeacher: state.goldTeacher,
      } as const;
      writeFileSync(metricsPath, `${JSON.stringify(before)}\n`);
      emit(before);
    }
    const resumedFrom = state.step;
    const bar = opts.progress ? new Progress({ total: c.steps, label: 'distill', unit: 'step' }) : null;
    bar?.resumeAt(state.step);
    let checkpoint = existing ?? '';
    const save = (step: number) =>
      writeRunCheckpoint(
        out,
        step,
        { ...state, step },
        {
          'optimizer.safetensors': tidy(() => {
            const s = optimizer.state();
            return encodeSafetensors(s.tensors, { step: String(s.step) });
          }),
        },
        (dir, files) =>
          saveCheckpoint(dir, {
            model: student,
            meta: {
              kind: 'policy',
              lineage: [opts.init],
              training: { algorithm: 'context-distillation', prefixTokens: prefix.length, ...c },
              metrics: { step },
            },
            files,
            ...(tokenizerPath ? { tokenizerPath } : {}),
          }),
        c.keepCheckpoints,
      );

    // Batches walk the training dialogues in epoch order (step s: positions (s − 1)·B … s·B − 1).
    const order = new EpochOrder(trainRows.length, c.seed);
    for (let step = state.step + 1; step <= c.steps; step++) {
      const rows = order.slice((step - 1) * c.batchSize, c.batchSize).map((i) => trainRows[i]!);
      const guard: DivergenceContext = { trainer: 'distill', step, lastGood: checkpoint, init: opts.init };
      const loss = tidy(() => {
        const l = injectNonFinite(batchKL(student, cache, head, rows, padId, c.precision), step);
        const [value] = agreeFinite(guard, 'the loss', [l.item()]) as [number];
        optimizer.zeroGrad();
        l.backward();
        assertFinite(guard, 'the gradient norm', clipGradNorm(student.parameters(), 1));
        optimizer.step();
        optimizer.zeroGrad();
        return value;
      });
      appendFileSync(metricsPath, `${JSON.stringify({ type: 'step', step, loss })}\n`);
      emit({ type: 'step', step, loss });
      bar?.tick(1, { kl: loss });
      if (step % c.checkpointEvery === 0 || step === c.steps) {
        // Never a non-finite checkpoint (it would become OUT/checkpoint and could prune the good ones).
        assertFiniteWeights(guard, student.namedParameters());
        checkpoint = save(step);
        emit({ type: 'checkpoint', step, dir: checkpoint });
      }
    }
    bar?.done();
    if (!checkpoint) checkpoint = save(state.step);
    const klAfter = meanKL(student, cache, head, evalRows, padId, c.precision);
    const goldAfter = await gold(student, false);
    const after = { type: 'eval', step: c.steps, kl: klAfter, gold: goldAfter } as const;
    appendFileSync(metricsPath, `${JSON.stringify(after)}\n`);
    emit(after);
    return {
      checkpoint,
      klBefore: state.klBefore,
      klAfter,
      goldBefore: state.goldBefore,
      goldAfter,
      goldTeacher: state.goldTeacher,
      prefixTokens: prefix.length,
      prefixTokensTotal: fullPrefix.length,
      steps: c.steps,
      resumedFrom,
    };
  } finally {
    free();
  }
}
