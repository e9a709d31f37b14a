// Learning-rate schedule: linear warmup, then cosine decay to a floor (nanoGPT's get_lr).

export interface ScheduleConfig {
  lr: number;
  minLr: number;
  warmupSteps: number;
  /** Where the cosine reaches minLr; later steps stay at minLr. */
  decaySteps: number;
}

/**
 * The learning rate for optimiser step `step` (0-based): `lr·(step+1)/warmupSteps` during warmup
 * (so step 0 already moves), then `minLr + ½(1 + cos(π·progress))·(lr − minLr)`, then `minLr`.
 *
 * @example learningRate(0, { lr: 1e-3, minLr: 1e-4, warmupSteps: 10, decaySteps: 100 }) // 1e-4
 * @example learningRate(55, { lr: 1e-3, minLr: 1e-4, warmupSteps: 10, decaySteps: 100 }) // 5.5e-4
 */
export function learningRate(step: number, s: ScheduleConfig): number {
  if (step < s.warmupSteps) return (s.lr * (step + 1)) / s.warmupSteps;
  if (step >= s.decaySteps) return s.minLr;
  const progress = (step - s.warmupSteps) / Math.max(1, s.decaySteps - s.warmupSteps);
  return s.minLr + 0.5 * (1 + Math.cos(Math.PI * progress)) * (s.lr - s.minLr);
}
