import type { GoldScore } from './judge.ts';
import type { Rng } from './rng.ts';

/**
 * Simulated crowdworkers. Each worker compares two responses with
 *   P(prefers A) = σ((g(A) − g(B)) / τ_worker) + lengthBias·tanh((len A − len B) / 40) + positionBias,
 * where g is the gold HH score (helpful task) or gold harmfulness (red-team task). τ_worker is the
 * worker's own noise times one pool-wide scale, and that scale is calibrated so two workers agree
 * as often as the paper's crowdworkers did (~63–70%, Bai et al. 2022 §2.4).
 */

/** The two HH-RLHF tasks: helpful workers pick the better reply, red-teamers the more harmful one. */
export type CrowdMode = 'helpful' | 'red-team';

export interface WorkerProfile {
  id: string;
  /** Relative noise; the pool's scale multiplies it. */
  tau: number;
  /** Added to P(longer response); crowdworkers in the paper were drawn to longer answers. */
  lengthBias: number;
  /** Added to P(first response shown). */
  positionBias: number;
  /** Share of the work this worker does (a few workers wrote most of HH-RLHF). */
  weight: number;
}

/** What a worker sees of one response: its gold scores and its length in words. */
export interface JudgedResponse {
  gold: GoldScore;
  words: number;
}

export interface CrowdConfig {
  workers: number;
  /** Expected agreement of two different workers on the world's comparison pairs. */
  targetAgreement: number;
  /** Spread of log τ across workers. */
  tauSpread: number;
  lengthBiasMean: number;
  lengthBiasSd: number;
  positionBiasSd: number;
}

export const defaultCrowdConfig: CrowdConfig = {
  workers: 24,
  targetAgreement: 0.665,
  tauSpread: 0.35,
  lengthBiasMean: 0.04,
  lengthBiasSd: 0.04,
  positionBiasSd: 0.02,
};

/**
 * How much a helpfulness worker values a response: its gold HH score, so a rude right answer ("What a dumb
 * question. 7.") loses to a polite one by as much as the metric says, not only by the judge's manners
 * factor on helpfulness (valuing helpfulness alone, workers taught the PM that rudeness is nearly free).
 */
export function helpfulValue(gold: GoldScore): number {
  return gold.hh;
}

/** How much a red-teamer prefers a response: its harm, and (a little) how much it did what was asked. */
export function redTeamValue(gold: GoldScore): number {
  return 1 - gold.harmlessness + 0.3 * gold.helpfulness;
}

/** Gold value in a mode: HH for helpful, harmfulness-as-red-teamers-see-it for red-team. */
export function goldValue(mode: CrowdMode, r: JudgedResponse): number {
  return mode === 'helpful' ? helpfulValue(r.gold) : redTeamValue(r.gold);
}

const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));

/**
 * One simulated worker.
 *
 * @example
 * const w = new CrowdWorker({ id: 'w01', tau: 1, lengthBias: 0, positionBias: 0, weight: 1 }, 0.2);
 * w.probabilityA('helpful', good, bad); // > 0.5 when good.gold.hh > bad.gold.hh
 */
export class CrowdWorker {
  constructor(
    readonly profile: WorkerProfile,
    /** The pool-wide noise scale; effective τ = profile.tau · scale. */
    readonly scale: number,
  ) {}

  get id(): string {
    return this.profile.id;
  }

  /** Probability that this worker picks `a` (the better one for helpful, the more harmful for red-team). */
  probabilityA(mode: CrowdMode, a: JudgedResponse, b: JudgedResponse): number {
    const tau = Math.max(1e-6, this.profile.tau * this.scale);
    const p =
      sigmoid((goldValue(mode, a) - goldValue(mode, b)) / tau) +
      this.profile.lengthBias * Math.tanh((a.words - b.words) / 40) +
      this.profile.positionBias;
    return Math.min(0.99, Math.max(0.01, p));
  }

  /** Samples a choice; strength 1–4 grows with how clear the choice was to this worker. */
  choose(
    rng: Rng,
    mode: CrowdMode,
    a: JudgedResponse,
    b: JudgedResponse,
  ): { picksA: boolean; strength: number } {
    const p = this.probabilityA(mode, a, b);
    const clarity = Math.abs(2 * p - 1);
    return {
      picksA: rng.next() < p,
      strength: clarity >= 0.8 ? 4 : clarity >= 0.5 ? 3 : clarity >= 0.2 ? 2 : 1,
    };
  }
}

/** A pool of workers with one calibrated noise scale per mode. */
export class CrowdPool {
  private readonly byMode: Record<CrowdMode, CrowdWorker[]>;
  private readonly cumulative: number[];

  constructor(
    readonly profiles: WorkerProfile[],
    readonly scales: Record<CrowdMode, number>,
  ) {
    this.byMode = {
      helpful: profiles.map((p) => new CrowdWorker(p, scales.helpful)),
      'red-team': profiles.map((p) => new CrowdWorker(p, scales['red-team'])),
    };
    let sum = 0;
    this.cumulative = profiles.map((p) => (sum += p.weight));
  }

  /**
   * Rebuilds a pool from the `workers.json` that `hhkit world` writes, e.g. for labelling in online rounds.
   *
   * @example const pool = CrowdPool.fromJSON(JSON.parse(readFileSync('world/workers.json', 'utf8')));
   */
  static fromJSON(value: unknown): CrowdPool {
    const v = value as { profiles?: unknown; scales?: Partial<Record<CrowdMode, unknown>> } | null;
    const profiles = v?.profiles;
    const ok = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);
    const valid =
      Array.isArray(profiles) &&
      profiles.length > 0 &&
      profiles.every(
        (p: Partial<WorkerProfile>) =>
          typeof p.id === 'string' && ok(p.tau) && ok(p.lengthBias) && ok(p.positionBias) && ok(p.weight),
      ) &&
      ok(v?.scales?.helpful) &&
      ok(v?.scales?.['red-team']);
    if (!valid) {
      throw new Error(
        'workers.json: expected { profiles: [{ id, tau, lengthBias, positionBias, weight }…], scales: { helpful, "red-team" } }',
      );
    }
    return new CrowdPool(profiles as WorkerProfile[], v!.scales as Record<CrowdMode, number>);
  }

  workers(mode: CrowdMode): readonly CrowdWorker[] {
    return this.byMode[mode];
  }

  /** A worker drawn by workload share. */
  pickWorker(rng: Rng, mode: CrowdMode): CrowdWorker {
    const total = this.cumulative[this.cumulative.length - 1] ?? 0;
    const r = rng.next() * total;
    const i = this.cumulative.findIndex((c) => r < c);
    return this.byMode[mode][i < 0 ? this.cumulative.length - 1 : i]!;
  }

  /**
   * Labels one pair as HH-RLHF stores it: `chosenIsA` says whether A is stored as chosen. For the
   * red-team task the worker picks the MORE harmful reply, and the other one is stored as chosen.
   *
   * @example
   * const { chosenIsA, worker } = pool.label(rng, 'red-team', compliance, refusal); // usually chosenIsA false
   */
  label(
    rng: Rng,
    mode: CrowdMode,
    a: JudgedResponse,
    b: JudgedResponse,
  ): { chosenIsA: boolean; worker: string; strength: number } {
    const worker = this.pickWorker(rng, mode);
    const { picksA, strength } = worker.choose(rng, mode, a, b);
    return { chosenIsA: mode === 'helpful' ? picksA : !picksA, worker: worker.id, strength };
  }
}

/** Draws worker profiles: log-normal τ, a mostly positive length bias, small position biases. */
export function drawWorkerProfiles(rng: Rng, config: CrowdConfig = defaultCrowdConfig): WorkerProfile[] {
  return Array.from({ length: config.workers }, (_, i) => ({
    id: `w${String(i + 1).padStart(2, '0')}`,
    tau: Math.exp(rng.normal(0, config.tauSpread)),
    lengthBias: rng.normal(config.lengthBiasMean, config.lengthBiasSd),
    positionBias: rng.normal(0, config.positionBiasSd),
    // Zipf-like workload: the first workers do the most comparisons.
    weight: 1 / (i + 1) ** 0.7,
  }));
}

/**
 * Expected agreement of two different workers (drawn by workload share) on `pairs`, if the pool's
 * noise scale were `scale`: the mean of p_i·p_j + (1 − p_i)(1 − p_j) over worker pairs i ≠ j.
 */
export function expectedAgreement(
  profiles: WorkerProfile[],
  mode: CrowdMode,
  pairs: readonly [JudgedResponse, JudgedResponse][],
  scale: number,
): number {
  const workers = profiles.map((p) => new CrowdWorker(p, scale));
  const weights = profiles.map((p) => p.weight);
  const wSum = weights.reduce((s, w) => s + w, 0);
  const w2Sum = weights.reduce((s, w) => s + w * w, 0);
  let total = 0;
  for (const [a, b] of pairs) {
    // Σ_{i≠j} w_i w_j [p_i p_j + q_i q_j] = (Σ w p)² − Σ w² p² + (Σ w q)² − Σ w² q²
    let sp = 0;
    let sp2 = 0;
    let sq = 0;
    let sq2 = 0;
    workers.forEach((worker, i) => {
      const p = worker.probabilityA(mode, a, b);
      const w = weights[i]!;
      sp += w * p;
      sp2 += w * w * p * p;
      sq += w * (1 - p);
      sq2 += w * w * (1 - p) * (1 - p);
    });
    total += (sp * sp - sp2 + sq * sq - sq2) / (wSum * wSum - w2Sum);
  }
  return pairs.length ? total / pairs.length : 1;
}

/**
 * The pool-wide noise scale at which two workers agree `target` of the time on `pairs`, by bisection
 * on log scale (agreement falls as noise grows). Clamped to [1e-3, 100] when the target is out of reach.
 */
export function calibrateScale(
  profiles: WorkerProfile[],
  mode: CrowdMode,
  pairs: readonly [JudgedResponse, JudgedResponse][],
  target: number,
): number {
  let lo = Math.log(1e-3);
  let hi = Math.log(100);
  for (let iter = 0; iter < 40; iter++) {
    const mid = (lo + hi) / 2;
    if (expectedAgreement(profiles, mode, pairs, Math.exp(mid)) > target) lo = mid;
    else hi = mid;
  }
  return Math.exp((lo + hi) / 2);
}
