// PPO's config: one flat typed object with defaults (TRL's PPOConfig names where they exist), merged once
// at the edge (CLI / config file) and passed down. Device and precision are the trainers' shared keys
// (HardwareConfig): the policy, reference and value head move to `device`; 'bf16' autocasts their forwards.
import { ConfigError, type HardwareConfig, validateHardware } from '../train/config.ts';
import type { KLEstimator } from './kl.ts';
import type { ValueModelKind } from './policy.ts';

export interface PPOConfig extends HardwareConfig {
  /** Run folder: checkpoints, snapshots, metrics.jsonl. */
  out: string;
  /** PPO steps (one rollout batch each). */
  steps: number;
  /** Prompts per rollout (TRL's batch_size). */
  batchSize: number;
  /** Rows per gradient step (TRL's mini_batch_size). */
  miniBatchSize: number;
  /** K: optimisation passes over each rollout batch (TRL's ppo_epochs). */
  ppoEpochs: number;
  maxNewTokens: number;
  lr: number;
  /** λ_KL: 0.001 as in the paper (§4.1); the start value under the adaptive controller. */
  klCoef: number;
  klController: 'fixed' | 'adaptive';
  /** Adaptive controller: target sequence KL (nats) and horizon (Ziegler et al. 2019; TRL: 6, 10000). */
  klTarget: number;
  klHorizon: number;
  klEstimator: KLEstimator;
  /** γ = 1 and λ = 0.95, the paper's and TRL's defaults. */
  gamma: number;
  lambda: number;
  /** ε of the clipped policy loss. */
  clipRange: number;
  /** ε_v of the clipped value loss. */
  clipRangeValue: number;
  /** Weight of the value loss (TRL's vf_coef). */
  vfCoef: number;
  /** Scale per-token rewards to unit variance (no mean shift) before GAE (TRL's whiten_rewards). */
  whitenRewards: boolean;
  /** Subtracted from every score: the PM's mean on a held-out set, so rewards centre on 0. */
  rewardOffset: number;
  valueModel: ValueModelKind;
  maxGradNorm: number;
  seed: number;
  /** Evaluate on the held-out prompts every this many steps (and at step 0 and the end); 0: never. */
  evalEvery: number;
  checkpointEvery: number;
  keepCheckpoints: number;
  /** Keep a policy snapshot (OUT/snapshots/step-N) every this many steps, for the robustness study; 0: none. */
  snapshotEvery: number;
}

/** Defaults for the world's small policy on a laptop CPU. */
export const defaultPPOConfig: PPOConfig = {
  out: 'runs/ppo',
  steps: 60,
  batchSize: 32,
  miniBatchSize: 16,
  ppoEpochs: 2,
  maxNewTokens: 32,
  lr: 5e-5,
  klCoef: 0.001,
  klController: 'fixed',
  klTarget: 6,
  klHorizon: 10000,
  klEstimator: 'k1',
  gamma: 1,
  lambda: 0.95,
  clipRange: 0.2,
  clipRangeValue: 0.2,
  vfCoef: 0.1,
  whitenRewards: false,
  rewardOffset: 0,
  valueModel: 'shared',
  maxGradNorm: 1,
  device: 'auto',
  precision: 'fp32',
  seed: 1,
  evalEvery: 10,
  checkpointEvery: 10,
  keepCheckpoints: 2,
  snapshotEvery: 0,
};

export class PPOConfigError extends Error {
  override name = 'PPOConfigError';
}

/**
 * Throws a PPOConfigError naming the first bad field.
 *
 * @example validatePPOConfig({ ...defaultPPOConfig, miniBatchSize: 64, batchSize: 32 }); // throws: miniBatchSize (64) exceeds batchSize (32)
 */
export function validatePPOConfig(c: PPOConfig): void {
  const positiveInts = [
    'steps',
    'batchSize',
    'miniBatchSize',
    'ppoEpochs',
    'maxNewTokens',
    'keepCheckpoints',
  ] as const;
  for (const key of positiveInts) {
    if (!Number.isInteger(c[key]) || c[key] < 1)
      throw new PPOConfigError(`ppo: ${key} must be a positive integer, got ${c[key]}`);
  }
  if (c.miniBatchSize > c.batchSize) {
    throw new PPOConfigError(`ppo: miniBatchSize (${c.miniBatchSize}) exceeds batchSize (${c.batchSize})`);
  }
  for (const key of ['evalEvery', 'checkpointEvery', 'snapshotEvery'] as const) {
    if (!Number.isInteger(c[key]) || c[key] < 0)
      throw new PPOConfigError(`ppo: ${key} must be an integer ≥ 0, got ${c[key]}`);
  }
  if (!(c.klCoef >= 0)) throw new PPOConfigError(`ppo: klCoef must be ≥ 0, got ${c.klCoef}`);
  if (!(c.lr > 0)) throw new PPOConfigError(`ppo: lr must be > 0, got ${c.lr}`);
  if (!(c.gamma >= 0 && c.gamma <= 1) || !(c.lambda >= 0 && c.lambda <= 1)) {
    throw new PPOConfigError(`ppo: gamma and lambda must be in [0, 1], got ${c.gamma}, ${c.lambda}`);
  }
  if (!['fixed', 'adaptive'].includes(c.klController))
    throw new PPOConfigError(`ppo: klController must be fixed or adaptive, got ${c.klController}`);
  if (!['k1', 'k3'].includes(c.klEstimator))
    throw new PPOConfigError(`ppo: klEstimator must be k1 or k3, got ${c.klEstimator}`);
  if (!['shared', 'separate'].includes(c.valueModel))
    throw new PPOConfigError(`ppo: valueModel must be shared or separate, got ${c.valueModel}`);
  try {
    validateHardware(c);
  } catch (err) {
    if (err instanceof ConfigError) throw new PPOConfigError(`ppo: ${err.message}`);
    throw err;
  }
}
