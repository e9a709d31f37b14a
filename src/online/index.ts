/** Iterated online rounds (Bai et al. 2022 §2.3, §4.5): deploy → collect → retrain PM → PPO → Elo. */
export * from './collect.ts';
export * from './config.ts';
export * from './data.ts';
export * from './evaluate.ts';
export * from './rejection.ts';
export * from './rounds.ts';
export * from './snapshots.ts';
export * from './state.ts';
export * from './table.ts';
export * from './train.ts';
