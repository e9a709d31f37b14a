/** Preference models (Bai et al. 2022 §2.2, §3): PMP, finetuning on comparisons, scoring, evaluation. */
export * from './batch.ts';
export * from './config.ts';
export * from './data.ts';
export * from './evaluate.ts';
export * from './loss.ts';
export * from './model.ts';
export * from './score.ts';
export * from './train.ts';
export * from './experiments.ts';
export { LikelihoodFeature, type LikelihoodTokens } from './likelihood.ts';
