// The robustness study (Bai et al. 2022 §4.2, Figure 4): split the comparisons 50/50, train a "train PM"
// and a "test PM", run PPO against the train PM, then score every policy snapshot with both PMs (each
// centred by its mean on held-out data) and, on the world, with the gold judge — all against √KL(policy ‖
// initial policy). Early in training the train-PM score grows ~linearly in √KL; where the test PM (and
// gold) stop following it, the policy is exploiting the train PM.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { earlyRange, fitEarlyLine, type LineFit, leastSquaresSlope } from '../eval/fit.ts';
import { mean, sampleVariance } from '../eval/intervals.ts';
import { loadCheckpoint } from '../nn/checkpoint.ts';
import type { CausalLM } from '../nn/causal-lm.ts';
import type { Tokenizer } from '../tokenizer/index.ts';
import { evaluatePolicy } from './evaluate.ts';
import type { RewardFn } from './rollout.ts';

export interface RobustnessPoint {
  step: number;
  kl: number;
  sqrtKL: number;
  /** Mean scores, each PM's centred by its held-out mean (each in its own units). */
  trainPM: number;
  testPM: number;
  /**
   * The test PM in train-PM units: testPM × σ(train PM) / σ(test PM), both spreads over the initial
   * policy's samples. Two PMs trained on halves of the data rank alike but need not share a scale (the
   * learned likelihood weight, training noise), and gains in raw units would count a scale as a lag.
   * Absent in files written before it existed (the analysis then reads testPM).
   */
  testPMScaled?: number;
  /** Mean gold score (NaN without gold). */
  gold: number;
  /**
   * The gold gain over the initial policy in train-PM units: (gold − gold₀) × the slope of the train PM's
   * score on gold over the initial policy's samples, so the three curves share one axis (NaN without gold).
   */
  goldPM: number;
}

export interface RobustnessAnalysis {
  points: RobustnessPoint[];
  /**
   * At the largest √KL: the train PM's gain over the start, and the test PM's and gold's (train-PM units).
   * Over-optimisation shows as test and gold below train.
   */
  atLargestKL: { step: number; sqrtKL: number; trainGain: number; testGain: number; goldGain: number } | null;
  /** Lines fitted to the early part (√KL up to `earlyFraction` of the range) of each curve (test PM in train-PM units). */
  fits: { trainPM: LineFit | null; testPM: LineFit | null; gold: LineFit | null };
  earlyFraction: number;
  /**
   * The first snapshot where the train PM's gain over the start exceeds the test PM's by more than
   * `threshold` (in train-PM units), or null if they never diverge.
   */
  divergence: { step: number; sqrtKL: number; gap: number } | null;
  threshold: number;
  /**
   * The test PM's gain over the start as a fraction of the train PM's, both in their own units (no scaling,
   * so nothing rests on putting one PM in the other's units): `early`, the least-squares slope through the
   * origin of test gains on train gains over the early part's `earlyPoints` snapshots; `atLargestKL`, test
   * gain / train gain at the largest √KL. Two PMs that rank alike keep a steady fraction while the policy
   * improves what both reward; over-optimisation of the train PM shows as `atLargestKL` below `early`. Null
   * when the train PM gained nothing early or at the end.
   */
  gainFraction: { early: number; earlyPoints: number; atLargestKL: number } | null;
}

/** Policy snapshots of a PPO run folder (OUT/snapshots/step-N), in step order. */
export function listSnapshots(runDir: string): { step: number; dir: string }[] {
  const dir = join(runDir, 'snapshots');
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((n) => /^step-\d+$/.test(n))
    .map((n) => ({ step: Number(n.slice(5)), dir: join(dir, n) }))
    .sort((a, b) => a.step - b.step);
}

/** How a policy's samples are scored at a point: the train and test PMs (centred), optional gold, sampling. */
export interface ScoringOptions {
  trainPM: RewardFn;
  testPM: RewardFn;
  gold?: RewardFn;
  centres: { train: number; test: number };
  maxNewTokens: number;
  seed: number;
  /** Gold's slope in train-PM units and the initial policy's gold (default: measured on this policy). */
  goldScale?: { slope: number; gold0: number };
  /** σ(train PM) / σ(test PM), the test PM's factor into train-PM units (default: measured on this policy). */
  testScale?: number;
}

/**
 * Scores one policy on held-out prompts with both PMs and gold, and measures its KL from the reference.
 *
 * @example const { point } = await robustnessPoint(policy, init, tok, prompts, { step: 40, trainPM, testPM, gold, centres });
 */
export async function robustnessPoint(
  policy: CausalLM,
  reference: CausalLM,
  tokenizer: Tokenizer,
  prompts: readonly string[],
  o: ScoringOptions & { step: number },
): Promise<{ point: RobustnessPoint; goldScale: { slope: number; gold0: number }; testScale: number }> {
  let responses: string[] = [];
  // One sampling: capture the responses through the reward hook, then score them with the test PM.
  const captureTrain: RewardFn = async (p, r) => {
    responses = r;
    return o.trainPM(p, r);
  };
  const ev = await evaluatePolicy(policy, tokenizer, prompts, {
    maxNewTokens: o.maxNewTokens,
    seed: o.seed,
    reward: captureTrain,
    ...(o.gold ? { gold: o.gold } : {}),
    reference,
  });
  const test = await o.testPM([...prompts], responses);
  const testMean = test.length ? mean(test) : 0;
  const goldScale = o.goldScale ?? { slope: goldSlope(ev.rewards, ev.golds), gold0: ev.gold };
  const testScale = o.testScale ?? spreadRatio(ev.rewards, test);
  return {
    point: {
      step: o.step,
      kl: ev.kl,
      sqrtKL: ev.sqrtKL,
      trainPM: ev.reward - o.centres.train,
      testPM: testMean - o.centres.test,
      testPMScaled: (testMean - o.centres.test) * testScale,
      gold: ev.gold,
      goldPM: (ev.gold - goldScale.gold0) * goldScale.slope,
    },
    goldScale,
    testScale,
  };
}

/**
 * σ(a) / σ(b) over the same samples: the factor that puts scores b in a's units (1 when either is constant
 * or there are fewer than 2 samples, so a degenerate start leaves the test PM in its own units).
 *
 * @example spreadRatio([0, 2, 4], [0, 1, 2]) // 2
 */
export function spreadRatio(a: readonly number[], b: readonly number[]): number {
  if (a.length < 2 || b.length < 2) return 1;
  const [sa, sb] = [Math.sqrt(sampleVariance(a)), Math.sqrt(sampleVariance(b))];
  return sa > 0 && sb > 0 && Number.isFinite(sa / sb) ? sa / sb : 1;
}

/**
 * Least-squares slope of the reward on gold over one policy's samples: how many PM units one unit of
 * gold is worth where the PM was trained (NaN when gold does not vary).
 *
 * @example goldSlope([0.1, 1.1, 2.1], [0, 0.5, 1]) // 2
 */
export function goldSlope(rewards: readonly number[], golds: readonly number[]): number {
  return leastSquaresSlope(golds, rewards);
}

/**
 * Evaluates the initial policy (step 0) and every snapshot of a PPO run.
 *
 * @example const points = await evaluateSnapshots('runs/robust/ppo', 'runs/distill/checkpoint', tok, prompts, scorers);
 */
export async function evaluateSnapshots(
  runDir: string,
  init: string,
  tokenizer: Tokenizer,
  prompts: readonly string[],
  o: ScoringOptions & { onPoint?: (p: RobustnessPoint) => void },
): Promise<RobustnessPoint[]> {
  const reference = loadCheckpoint(init).model.eval();
  const points: RobustnessPoint[] = [];
  // The initial policy (step 0) fixes gold's and the test PM's scales in train-PM units for every later snapshot.
  let goldScale = o.goldScale;
  let testScale = o.testScale;
  for (const snap of [{ step: 0, dir: init }, ...listSnapshots(runDir)]) {
    const { model } = loadCheckpoint(snap.dir);
    model.eval();
    const scored = await robustnessPoint(model, reference, tokenizer, prompts, {
      ...o,
      step: snap.step,
      ...(goldScale ? { goldScale } : {}),
      ...(testScale === undefined ? {} : { testScale }),
    });
    const { point } = scored;
    for (const p of model.parameters()) p.dispose();
    goldScale ??= scored.goldScale;
    testScale ??= scored.testScale;
    points.push(point);
    o.onPoint?.(point);
  }
  for (const p of reference.parameters()) p.dispose();
  return points;
}

/** A point's test-PM score in train-PM units (its own units in files that predate the scaling). */
export const testInTrainUnits = (p: RobustnessPoint): number => p.testPMScaled ?? p.testPM;

const safeFit = (x: number[], y: number[], fraction: number): LineFit | null => {
  const ok = x.map((_, i) => i).filter((i) => Number.isFinite(x[i]!) && Number.isFinite(y[i]!));
  try {
    return fitEarlyLine(
      ok.map((i) => x[i]!),
      ok.map((i) => y[i]!),
      { fraction },
    );
  } catch {
    return null;
  }
};

/**
 * Line fits on the early part of each curve and the divergence point of the two PMs.
 *
 * @example const a = analyseRobustness(points, { earlyFraction: 0.5, threshold: 0.25 }); a.fits.trainPM?.r2
 */
export function analyseRobustness(
  points: readonly RobustnessPoint[],
  opts: { earlyFraction?: number; threshold?: number } = {},
): RobustnessAnalysis {
  const earlyFraction = opts.earlyFraction ?? 0.5;
  const threshold = opts.threshold ?? 0.25;
  const sorted = [...points].sort((a, b) => a.sqrtKL - b.sqrtKL || a.step - b.step);
  const x = sorted.map((p) => p.sqrtKL);
  const fits = {
    trainPM: safeFit(
      x,
      sorted.map((p) => p.trainPM),
      earlyFraction,
    ),
    testPM: safeFit(x, sorted.map(testInTrainUnits), earlyFraction),
    gold: safeFit(
      x,
      sorted.map((p) => p.gold),
      earlyFraction,
    ),
  };
  const byStep = [...points].sort((a, b) => a.step - b.step);
  const start = byStep[0];
  let divergence: RobustnessAnalysis['divergence'] = null;
  if (start) {
    for (const p of byStep.slice(1)) {
      const gap = p.trainPM - start.trainPM - (testInTrainUnits(p) - testInTrainUnits(start));
      if (gap > threshold) {
        divergence = { step: p.step, sqrtKL: p.sqrtKL, gap };
        break;
      }
    }
  }
  const last = sorted.at(-1);
  const atLargestKL =
    start && last && last !== start
      ? {
          step: last.step,
          sqrtKL: last.sqrtKL,
          trainGain: last.trainPM - start.trainPM,
          testGain: testInTrainUnits(last) - testInTrainUnits(start),
          goldGain: last.goldPM - start.goldPM,
        }
      : null;
  return {
    points: [...points],
    fits,
    atLargestKL,
    earlyFraction,
    divergence,
    threshold,
    gainFraction: start ? gainFraction(points, start, earlyFraction) : null,
  };
}

/** `RobustnessAnalysis.gainFraction` over the points, from `start` (the initial policy). */
function gainFraction(
  points: readonly RobustnessPoint[],
  start: RobustnessPoint,
  earlyFraction: number,
): RobustnessAnalysis['gainFraction'] {
  // Only snapshots whose √KL and PM scores are numbers (a failed evaluation leaves NaN), by √KL.
  const finite = (p: RobustnessPoint) =>
    Number.isFinite(p.sqrtKL) && Number.isFinite(p.trainPM) && Number.isFinite(p.testPM);
  const usable = points.filter(finite).sort((a, b) => a.sqrtKL - b.sqrtKL || a.step - b.step);
  const last = usable.at(-1);
  if (!finite(start) || !last || last === start) return null;
  const early = earlyRange(
    usable.map((p) => p.sqrtKL),
    { fraction: earlyFraction },
  )
    .map((i) => usable[i]!)
    .filter((p) => p !== start);
  let cross = 0;
  let square = 0;
  for (const p of early) {
    const train = p.trainPM - start.trainPM;
    cross += train * (p.testPM - start.testPM);
    square += train * train;
  }
  const endTrain = last.trainPM - start.trainPM;
  if (!(square > 0) || !(endTrain > 0)) return null;
  // Every point here is finite, so both fractions are.
  return {
    early: cross / square,
    earlyPoints: early.length,
    atLargestKL: (last.testPM - start.testPM) / endTrain,
  };
}
