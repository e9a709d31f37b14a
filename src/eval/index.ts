// hhkit's model-independent analyses (Bai et al. 2022 §3.3, §4.2, §4.5, §5.4): Elo, PM calibration,
// line fits for reward vs √KL, and OOD detection. They work on numbers and engine tensors only.
export * from './calibration.ts';
export * from './elo.ts';
export * from './elo-data.ts';
export * from './fit.ts';
export * from './ood.ts';
export * from './outlier-exposure.ts';
export { quantile, SeededRandom } from './rng.ts';
// Model-level evaluations (these read a GPT's activations or log-likelihoods, and the world's judge).
export * from './nlp.ts';
export * from './nlp-data.ts';
export * from './ood-model.ts';
export * from './world-tasks.ts';
export type { Interval } from './intervals.ts';
