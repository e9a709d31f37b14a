// Rejection-sampling finetuning of one round's policy (expert iteration; "rejection sampling fine-tuning" in
// Touvron et al. 2023 §3.2.3, RAFT in Dong et al. 2023): the paper's best-of-N (§4.2) against the round's PM,
// with the picks made training data. For every training prompt, sample N responses from the policy, keep the
// one the PM scores highest, and finetune the policy on the kept transcripts with the loss on the Assistant's
// reply only. The round's snapshot then needs no PM when it is deployed. Two resumable steps, each in
// OUT/rounds/K/rs: the selection (samples.jsonl, then selection.json, whose presence marks it done) and the
// finetuning (sft/, a `hhkit pretrain --loss-on assistant` run folder).
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadCheckpoint, readCheckpointConfig } from '../nn/checkpoint.ts';
import { bestOfN } from '../rl/best-of-n.ts';
import { bestOfNKL } from '../rl/kl.ts';
import type { RewardFn } from '../rl/rollout.ts';
import { Tokenizer } from '../tokenizer/tokenizer.ts';
import { exampleCount } from '../train/batches.ts';
import {
  defaultLMTrainConfig,
  resolveLMTrainConfig,
  trainingDevice,
  validateHardware,
} from '../train/config.ts';
import { prepareCorpus } from '../train/dataset.ts';
import { trainLM } from '../train/loop.ts';
import { writeFileAtomicSync } from '../util/atomic.ts';
import { Progress } from '../util/progress.ts';
import type { OnlineConfig } from './config.ts';
import { goldHH, pmRewardFn } from './train.ts';

/** What the selection step records (OUT/selection.json). */
export interface RSSelection {
  prompts: number;
  n: number;
  /** Mean reward and gold score of the first sample (best-of-1) and of the kept one (best-of-N). */
  reward: { first: number; kept: number };
  gold: { first: number; kept: number };
  /** Analytic KL(best-of-N ‖ policy) of the kept samples' distribution: what the finetuning imitates. */
  kl: number;
}

export interface RejectionFinetuneOptions {
  /** The policy checkpoint sampled from and finetuned. */
  init: string;
  tokenizer: Tokenizer;
  prompts: readonly string[];
  /** The selecting reward, made only when the selection runs (a finished one is read back) and then disposed. */
  reward: () => { reward: RewardFn; dispose(): void };
  /** Logged beside the reward (the world's gold judge); never selects. */
  gold?: RewardFn;
  /** Samples per prompt; the reward keeps the best. */
  n: number;
  /**
   * Epochs of finetuning over the kept transcripts, at peak lr `lr` (cosine to lr/10), `batchSize` windows per
   * step. The transcripts are packed into windows of the context length (several short ones to a window), and
   * an epoch is one pass over the windows of the 95% that train (5% are held out for the final eval loss).
   */
  epochs: number;
  lr: number;
  batchSize: number;
  maxNewTokens: number;
  seed: number;
  /** Run folder: samples.jsonl, selection.json, sft/ (the finetuning's run folder). */
  out: string;
  device?: string;
  precision?: string;
  progress?: boolean;
  label?: string;
}

/**
 * Rejection-sampling finetuning: best-of-`n` by `reward` for every prompt, then supervised finetuning of the
 * policy on the kept transcripts (loss on the reply only). Resumable: a finished selection is read back, and
 * the finetuning continues from its last checkpoint.
 *
 * @example const r = await rejectionFinetune({ init, tokenizer, prompts, reward: () => pmRewardFn(pmDir), n: 16, epochs: 15, lr: 1e-4, batchSize: 16, maxNewTokens: 32, seed: 1, out: 'runs/rs' });
 */
export async function rejectionFinetune(
  o: RejectionFinetuneOptions,
): Promise<{ checkpoint: string; selection: RSSelection }> {
  const samplesPath = join(o.out, 'samples.jsonl');
  const selectionPath = join(o.out, 'selection.json');
  const label = o.label ?? 'rs';
  const hardware = { device: o.device ?? 'auto', precision: o.precision ?? 'fp32' };
  validateHardware(hardware); // before the sampling, not after it
  mkdirSync(o.out, { recursive: true });
  if (!existsSync(selectionPath)) {
    const device = trainingDevice(hardware);
    const { model, extra } = loadCheckpoint(o.init);
    model.eval();
    if (device !== 'cpu') model.to({ device });
    const kept: string[] = [];
    const bar = o.progress
      ? new Progress({ total: o.prompts.length, label: `${label} sample`, unit: 'prompt' })
      : null;
    let reward: ReturnType<RejectionFinetuneOptions['reward']> | undefined;
    try {
      reward = o.reward();
      const report = await bestOfN(model, o.tokenizer, o.prompts, {
        ns: o.n > 1 ? [1, o.n] : [1],
        reward: reward.reward,
        ...(o.gold ? { gold: o.gold } : {}),
        maxNewTokens: o.maxNewTokens,
        seed: o.seed,
        precision: hardware.precision,
        onKept: (x) => {
          if (x.n === o.n) kept.push(JSON.stringify({ text: o.prompts[x.prompt]! + x.response }));
        },
        onPrompt: () => bar?.tick(1),
      });
      bar?.done();
      const first = report.rows[0]!;
      const last = report.rows.at(-1)!;
      writeFileAtomicSync(samplesPath, `${kept.join('\n')}\n`);
      const selection: RSSelection = {
        prompts: o.prompts.length,
        n: o.n,
        reward: { first: first.reward, kept: last.reward },
        gold: { first: first.gold, kept: last.gold },
        kl: bestOfNKL(o.n),
      };
      // Written last: its presence marks the selection finished.
      writeFileAtomicSync(selectionPath, `${JSON.stringify(selection, null, 2)}\n`);
    } finally {
      reward?.dispose();
      // A PPO checkpoint's value head comes back in `extra`.
      for (const t of [...model.parameters(), ...Object.values(extra)]) t.dispose();
    }
  }
  const selection = JSON.parse(readFileSync(selectionPath, 'utf8')) as RSSelection;
  if (selection.n !== o.n || selection.prompts !== o.prompts.length)
    throw new Error(
      `${selectionPath}: made with n ${selection.n} on ${selection.prompts} prompts, asked for n ${o.n} on ${o.prompts.length}; use another out (or delete ${o.out} to redo it)`,
    );
  const sftOut = join(o.out, 'sft');
  const blockSize = Math.min(defaultLMTrainConfig.blockSize, readCheckpointConfig(o.init).maxPositions);
  // The windows an epoch passes over: tokenised once into the cache the finetuning reads.
  const corpus = await prepareCorpus({
    data: samplesPath,
    cacheDir: join(sftOut, 'data'),
    tokenizer: o.tokenizer,
    lossOn: 'assistant',
    evalFraction: defaultLMTrainConfig.evalFraction,
  });
  const steps = Math.max(1, Math.ceil((o.epochs * exampleCount(corpus.train, blockSize)) / o.batchSize));
  const config = resolveLMTrainConfig({
    data: samplesPath,
    out: sftOut,
    init: o.init,
    lossOn: 'assistant',
    blockSize,
    batchSize: o.batchSize,
    steps,
    lr: o.lr,
    minLr: o.lr / 10,
    warmupSteps: Math.min(10, steps),
    evalEvery: 0,
    checkpointEvery: Math.max(1, Math.ceil(steps / 4)),
    keepCheckpoints: 1,
    seed: o.seed,
    ...hardware,
  });
  const result = await trainLM(config, {
    tokenizer: o.tokenizer,
    resume: true,
    progress: o.progress ?? false,
    label: `${label} sft`,
  });
  return { checkpoint: result.checkpoint, selection };
}

/**
 * Round `k`'s policy by rejection-sampling finetuning against the round's PM (OUT/rounds/K/rs), from the
 * initial policy or (`start`) an earlier round's. Returns the finetuned checkpoint, the mean PM reward of the
 * kept samples and the analytic best-of-N KL of their distribution from the sampling policy.
 *
 * @example const { checkpoint } = await trainRoundPolicyRS(config, 1, pm.checkpoint, prompts, true);
 */
export async function trainRoundPolicyRS(
  c: OnlineConfig,
  k: number,
  pmCheckpoint: string,
  prompts: readonly string[],
  progress: boolean,
  start?: string,
): Promise<{ checkpoint: string; reward: number; kl: number; selection: RSSelection }> {
  const { checkpoint, selection } = await rejectionFinetune({
    init: start ?? c.init,
    tokenizer: Tokenizer.fromFile(join(c.init, 'tokenizer.json')),
    prompts: c.rs.prompts > 0 ? prompts.slice(0, c.rs.prompts) : prompts,
    reward: () => pmRewardFn(pmCheckpoint),
    gold: goldHH,
    n: c.rs.n,
    epochs: c.rs.epochs,
    lr: c.rs.lr,
    batchSize: c.rs.batchSize,
    maxNewTokens: c.ppo.maxNewTokens ?? c.maxNewTokens,
    seed: c.seed * 7919 + k,
    out: join(c.out, 'rounds', String(k), 'rs'),
    ...(c.ppo.device ? { device: c.ppo.device } : {}),
    ...(c.ppo.precision ? { precision: c.ppo.precision } : {}),
    progress,
    label: `rs r${k}`,
  });
  return { checkpoint, reward: selection.reward.kept, kl: selection.kl, selection };
}
