// One round's training (§4.5: "retrain the PM on all data so far, then run PPO from the distilled policy
// against it"): PM finetuning through src/pm and PPO through src/rl, each in its own resumable run folder.
import { join } from 'node:path';
import { mean } from '../eval/intervals.ts';
import { loadPreferenceModel } from '../pm/model.ts';
import { loadTaskedComparisons } from '../pm/data.ts';
import { evaluateScored, scoreComparisons } from '../pm/evaluate.ts';
import { resolvePMTrainConfig } from '../pm/config.ts';
import { scoreTranscripts } from '../pm/score.ts';
import { type PMTrainEvent, trainPreferenceModel } from '../pm/train.ts';
import { defaultPPOConfig } from '../rl/ppo-config.ts';
import { type PPOEvent, trainPPO } from '../rl/ppo.ts';
import type { RewardFn } from '../rl/rollout.ts';
import { Tokenizer } from '../tokenizer/tokenizer.ts';
import { goldJudge, worldGold } from '../world/index.ts';
import type { OnlineConfig } from './config.ts';
import type { PMResult } from './state.ts';

/** The world's gold HH score (0–1) of each response: logged beside the PM reward, never trained on. */
export const goldHH: RewardFn = (prompts, responses) =>
  prompts.map((p, i) => goldJudge(p, responses[i] ?? '').hh);

/** A PM checkpoint as a reward function: the score of prompt + response at the end-of-context token. */
export function pmRewardFn(dir: string): { reward: RewardFn; dispose(): void } {
  const loaded = loadPreferenceModel(dir);
  const pm = loaded.pm.eval();
  if (!loaded.tokenizerPath) throw new Error(`${dir}: the PM checkpoint has no tokenizer.json`);
  const tokenizer = Tokenizer.fromFile(loaded.tokenizerPath);
  return {
    reward: (prompts, responses) =>
      scoreTranscripts(
        pm,
        tokenizer,
        prompts.map((p, i) => p + (responses[i] ?? '')),
      ),
    dispose: () => {
      pm.dispose();
    },
  };
}

/** What every round records of its PM's held-out scoring (state.ts PMResult, less where it is kept). */
export type RoundPMScores = Required<Omit<PMResult, 'checkpoint' | 'modelId'>>;

/**
 * Finetunes round `k`'s PM on `files` (every round's export so far) from `pmInit`, then scores the world's
 * held-out comparisons: accuracy against the crowd's labels and against gold, the mean score, and the mean
 * score of the chosen responses (PPO's reward offset).
 *
 * @example const r = await trainRoundPM(config, 2, ['data/round-0.jsonl', 'data/round-1.jsonl', 'data/round-2.jsonl'], testFiles);
 */
export async function trainRoundPM(
  c: OnlineConfig,
  k: number,
  files: readonly string[],
  testFiles: readonly string[],
  progress: boolean,
  onEvent?: (e: PMTrainEvent) => void,
): Promise<RoundPMScores & { checkpoint: string }> {
  const config = resolvePMTrainConfig('finetune', {
    ...c.pm,
    init: c.pmInit || c.init,
    data: files.join(','),
    eval: testFiles.join(','),
    out: join(c.out, 'rounds', String(k), 'pm'),
    seed: c.seed + k,
  });
  const result = await trainPreferenceModel(config, {
    resume: true,
    progress,
    label: `pm r${k}`,
    ...(onEvent ? { onEvent } : {}),
  });
  return {
    checkpoint: result.checkpoint,
    ...(await scoreRoundPM(join(config.out, 'checkpoint'), testFiles)),
  };
}

/**
 * A PM's accuracy on held-out comparisons against the crowd's labels and against gold, its mean score there,
 * and its mean score of the chosen responses (PPO's reward offset): what every round records of its PM,
 * trained here or adopted from elsewhere.
 *
 * @example const { goldAccuracy, chosenMean } = await scoreRoundPM('runs/demo/pm/checkpoint', ['collect/test.jsonl']);
 */
export async function scoreRoundPM(checkpoint: string, testFiles: readonly string[]): Promise<RoundPMScores> {
  const loaded = loadPreferenceModel(checkpoint);
  const pm = loaded.pm.eval();
  try {
    const tokenizer = Tokenizer.fromFile(loaded.tokenizerPath ?? join(checkpoint, 'tokenizer.json'));
    const { items } = await loadTaskedComparisons(testFiles);
    const scored = await scoreComparisons(pm, tokenizer, items, { gold: worldGold });
    const report = evaluateScored(scored);
    const all = scored.flatMap((s) => [s.chosen, s.rejected]);
    return {
      crowdAccuracy: report.crowd.accuracy,
      goldAccuracy: report.gold?.accuracy ?? Number.NaN,
      count: report.count,
      meanScore: all.length ? mean(all) : 0,
      // PPO's reward offset, as `hhkit ppo --normalize-reward` computes it (cli/rl-common heldOutChosen):
      // the mean score of the preferred responses, so every round's PPO is round 0's with a new PM.
      chosenMean: scored.length ? mean(scored.map((s) => s.chosen)) : 0,
    };
  } finally {
    pm.dispose();
  }
}

/**
 * PPO for round `k` from the initial policy against the round's PM (reward centred by the PM's held-out
 * mean), with the gold HH score logged beside it.
 *
 * @example const { checkpoint } = await trainRoundPolicy(config, 2, pm.checkpoint, pm.chosenMean, prompts);
 */
export async function trainRoundPolicy(
  c: OnlineConfig,
  k: number,
  pmCheckpoint: string,
  rewardOffset: number,
  prompts: readonly string[],
  progress: boolean,
  onEvent?: (e: PPOEvent) => void,
  start?: string,
): Promise<{ checkpoint: string; reward: number; kl: number }> {
  const pm = pmRewardFn(pmCheckpoint);
  try {
    const result = await trainPPO({
      config: {
        ...defaultPPOConfig,
        ...c.ppo,
        out: join(c.out, 'rounds', String(k), 'ppo'),
        seed: c.seed + k,
        rewardOffset,
      },
      init: c.init,
      ...(start ? { start } : {}),
      tokenizer: Tokenizer.fromFile(join(c.init, 'tokenizer.json')),
      prompts,
      reward: pm.reward,
      gold: goldHH,
      resume: true,
      progress,
      ...(onEvent ? { onEvent } : {}),
    });
    return {
      checkpoint: result.checkpoint,
      reward: result.lastStep?.reward ?? Number.NaN,
      kl: result.lastStep?.kl ?? Number.NaN,
    };
  } finally {
    pm.dispose();
  }
}
