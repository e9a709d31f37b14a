/**
 * Policy training (Bai et al. 2022 §3–4): context distillation, PPO against a reward (the PM) with a KL
 * penalty, best-of-N, and the robustness study. Rewards are plain functions of (prompts, responses), so
 * the PM, the world's gold judge or a test's toy reward plug in alike.
 */
export {
  gae,
  type GAEResult,
  type Masked2D,
  penalisedRewards,
  type SumAcrossRanks,
  whiten,
} from './advantages.ts';
export { type BestOfNReport, type BestOfNRow, bestOfN } from './best-of-n.ts';
export {
  bucketKL,
  type DistillConfig,
  type DistillEvent,
  type DistillOptions,
  type DistillReport,
  defaultDistillConfig,
  distill,
  validateDistillConfig,
} from './distill.ts';
export { buildTeacherCache, type TeacherCache, type TeacherCacheKey, topKWithRest } from './distill-cache.ts';
export { evaluatePolicy, type PolicyEvaluation, sequenceKL } from './evaluate.ts';
export {
  AdaptiveKLController,
  bestOfNKL,
  FixedKLController,
  type KLController,
  type KLEstimator,
  klEstimate,
  klPerToken,
} from './kl.ts';
export {
  clippedPolicyLoss,
  clippedValueLoss,
  maskedMean,
  type PolicyLossOutput,
  tokenEntropy,
  type ValueLossOutput,
} from './losses.ts';
export {
  ActorCritic,
  gatherLogprobs,
  type ResponseWindow,
  responseLogits,
  type ValueModelKind,
} from './policy.ts';
export {
  MAX_PARAMETER_DRIFT,
  PPODivergenceError,
  PPODriftError,
  type PPOEvent,
  type PPOOptions,
  type PPOResult,
  type PPOStepMetrics,
  trainPPO,
} from './ppo.ts';
export {
  miniBatchPlan,
  type PPOUpdateOptions,
  type PPOUpdateResult,
  ppoUpdate,
  type ResponseBatch,
} from './ppo-update.ts';
export { defaultPPOConfig, type PPOConfig, PPOConfigError, validatePPOConfig } from './ppo-config.ts';
export {
  analyseRobustness,
  evaluateSnapshots,
  listSnapshots,
  type RobustnessAnalysis,
  type RobustnessPoint,
  type ScoringOptions,
} from './robustness.ts';
export {
  decodeResponses,
  type RewardFn,
  type Rollout,
  type SampleOptions,
  sampleRollout,
  stopIdsOf,
} from './rollout.ts';
