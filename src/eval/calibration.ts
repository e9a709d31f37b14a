/**
 * Preference-model accuracy and calibration (Bai et al. 2022, §3.3 and Figure 9).
 *
 * A PM scores the chosen and the rejected transcript; its implied preference probability is
 * σ(r_chosen − r_rejected). The paper's calibration plot folds the sign: for each comparison it takes
 * the gap |Δ| between the two scores, asks whether the higher-scored response was the one preferred,
 * and compares that frequency, per bin of |Δ|, with the predicted σ(|Δ|). A calibrated PM lies on the
 * diagonal; expected calibration error (ECE) is the count-weighted mean distance from it.
 */
import { parseTranscript } from '../data/transcript.ts';

/** PM scores of one comparison. */
export interface ScoredComparison {
  chosen: number;
  rejected: number;
}

const sigmoid = (x: number): number => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)));
const softplus = (x: number): number => (x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x)));

/** 1 when the chosen response scored higher, 0 when lower, ½ on a tie (pairAgreement). */
function correctness(c: ScoredComparison): number {
  if (Number.isNaN(c.chosen - c.rejected))
    throw new RangeError(`calibration: NaN score (${c.chosen}, ${c.rejected})`);
  return pairAgreement(c.chosen, c.rejected);
}

/**
 * Scores closer than this (relative to their size, at least 1) are a tie. The same transcript twice in one
 * batch need not score bit-identically: a BLAS kernel may sum the rows at the batch's edge in another
 * order (seen on AMD EPYC with OpenBLAS's Haswell kernels: chosen = rejected gave gaps of ~1e-7), so an
 * exact `gap === 0` would call a tie a win or a loss at random.
 */
export const TIE_TOLERANCE = 1e-5;

/**
 * Whether a PM ranks a comparison right: 1 when chosen scores above rejected, ½ on a tie (within
 * TIE_TOLERANCE), 0 otherwise — the one rule for accuracy in training, evaluation and the claims.
 *
 * @example [pairAgreement(2, 1), pairAgreement(1, 1 + 1e-8), pairAgreement(0, 1)] // [1, 0.5, 0]
 */
export function pairAgreement(chosen: number, rejected: number): number {
  const tolerance = TIE_TOLERANCE * Math.max(1, Math.abs(chosen), Math.abs(rejected));
  const gap = chosen - rejected;
  return gap > tolerance ? 1 : gap < -tolerance ? 0 : 0.5;
}

/**
 * Fraction of comparisons where the PM scores the chosen response higher (ties count ½).
 *
 * @example preferenceAccuracy([{ chosen: 1, rejected: 0 }, { chosen: 0, rejected: 2 }]) // 0.5
 */
export function preferenceAccuracy(data: readonly ScoredComparison[]): number {
  if (data.length === 0) return Number.NaN;
  return data.reduce((s, c) => s + correctness(c), 0) / data.length;
}

/**
 * Mean PM loss log(1 + e^(r_rejected − r_chosen)), computed stably (the training objective).
 *
 * @example preferenceLoss([{ chosen: 0, rejected: 0 }]) // ln 2
 */
export function preferenceLoss(data: readonly ScoredComparison[]): number {
  if (data.length === 0) return Number.NaN;
  return data.reduce((s, c) => s + softplus(c.rejected - c.chosen), 0) / data.length;
}

export interface CalibrationBin {
  /** |Δ| range of the bin, [lower, upper) (the last bin includes its upper edge). */
  lower: number;
  upper: number;
  count: number;
  /** Mean |Δ| of the bin's comparisons. */
  meanGap: number;
  /** Mean predicted σ(|Δ|): the PM's confidence that the higher-scored response wins. */
  predicted: number;
  /** Observed frequency that the higher-scored response was the preferred one (ties ½). */
  accuracy: number;
  /** Binomial standard error of `accuracy`. */
  standardError: number;
}

export interface CalibrationOptions {
  /** Number of bins (default 10). */
  bins?: number;
  /**
   * 'width': equal-width bins on [0, maxGap] (gaps beyond go in the last bin) — the paper's plot;
   * 'quantile': equal-count bins, steadier when most gaps are small. Default 'width'.
   */
  binning?: 'width' | 'quantile';
  /** Upper edge for 'width' binning (default: the largest |Δ|). */
  maxGap?: number;
  /** Multiply gaps by this before σ (a temperature for PMs trained at another scale). Default 1. */
  scale?: number;
}

export interface Calibration {
  bins: CalibrationBin[];
  /** Expected calibration error: Σ_bins (n_b/N)·|accuracy_b − predicted_b|. */
  ece: number;
  /** Largest |accuracy_b − predicted_b| over non-empty bins (MCE). */
  maxError: number;
  accuracy: number;
  count: number;
}

/**
 * Sign-folded calibration curve and ECE (the paper's Figure 9): bins comparisons by |Δ| and compares
 * how often the higher-scored response won with the predicted σ(|Δ|). Empty bins are dropped.
 *
 * @example
 * const cal = calibrationCurve(scored, { bins: 10 });
 * for (const b of cal.bins) console.log(b.meanGap, b.predicted, b.accuracy, b.count);
 * console.log('ECE', cal.ece);
 */
export function calibrationCurve(
  data: readonly ScoredComparison[],
  opts: CalibrationOptions = {},
): Calibration {
  const nBins = opts.bins ?? 10;
  const scale = opts.scale ?? 1;
  if (!(Number.isInteger(nBins) && nBins >= 1))
    throw new RangeError(`calibration: bins must be a positive integer (got ${nBins})`);
  // Folded: gap ≥ 0 and outcome = "the higher-scored one was chosen".
  const items = data.map((c) => ({ gap: Math.abs(c.chosen - c.rejected) * scale, hit: correctness(c) }));
  items.sort((x, y) => x.gap - y.gap);
  const edges = binEdges(
    items.map((i) => i.gap),
    nBins,
    opts.binning ?? 'width',
    opts.maxGap,
  );
  const bins: CalibrationBin[] = [];
  let start = 0;
  for (let b = 0; b < nBins; b++) {
    const lower = edges[b]!;
    const upper = edges[b + 1]!;
    let end = start;
    // items are sorted: the bin is [lower, upper), the last bin takes everything left.
    while (end < items.length && (b === nBins - 1 || items[end]!.gap < upper)) end++;
    const slice = items.slice(start, end);
    start = end;
    if (slice.length === 0) continue;
    const n = slice.length;
    const accuracy = slice.reduce((s, i) => s + i.hit, 0) / n;
    bins.push({
      lower,
      upper,
      count: n,
      meanGap: slice.reduce((s, i) => s + i.gap, 0) / n,
      predicted: slice.reduce((s, i) => s + sigmoid(i.gap), 0) / n,
      accuracy,
      standardError: Math.sqrt((accuracy * (1 - accuracy)) / n),
    });
  }
  const count = items.length;
  const errors = bins.map((b) => Math.abs(b.accuracy - b.predicted));
  return {
    bins,
    ece: count === 0 ? Number.NaN : bins.reduce((s, b, i) => s + (b.count / count) * errors[i]!, 0),
    maxError: Math.max(0, ...errors),
    accuracy: preferenceAccuracy(data),
    count,
  };
}

/** nBins + 1 edges over sorted values. */
function binEdges(
  sorted: readonly number[],
  nBins: number,
  binning: 'width' | 'quantile',
  maxGap?: number,
): number[] {
  const top = maxGap ?? sorted[sorted.length - 1] ?? 1;
  if (binning === 'width') {
    const width = top > 0 ? top / nBins : 1;
    return Array.from({ length: nBins + 1 }, (_, i) =>
      i === nBins ? Math.max(top, sorted.at(-1) ?? 0) : i * width,
    );
  }
  return Array.from({ length: nBins + 1 }, (_, i) => {
    if (sorted.length === 0) return 0;
    if (i === nBins) return sorted[sorted.length - 1]!;
    return sorted[Math.floor((i * sorted.length) / nBins)]!;
  });
}

export interface GroupAccuracy {
  group: string;
  count: number;
  accuracy: number;
  standardError: number;
}

/**
 * Accuracy per group (task, number of turns, round…): `groupOf` names each comparison's group.
 * Groups come back in sort order (numeric keys numerically).
 *
 * @example
 * accuracyByGroup(scored, (c) => c.task ?? 'unknown'); // [{ group: 'harmless', … }, { group: 'helpful', … }]
 * accuracyByGroup(scored, (c) => c.turns);              // per number of human turns
 */
export function accuracyByGroup<T extends ScoredComparison>(
  data: readonly T[],
  groupOf: (c: T) => string | number,
): GroupAccuracy[] {
  const groups = new Map<string, { key: string | number; items: T[] }>();
  for (const c of data) {
    const key = groupOf(c);
    const id = String(key);
    const g = groups.get(id) ?? { key, items: [] };
    g.items.push(c);
    groups.set(id, g);
  }
  const sorted = [...groups.values()].sort((x, y) =>
    typeof x.key === 'number' && typeof y.key === 'number'
      ? x.key - y.key
      : String(x.key) < String(y.key)
        ? -1
        : 1,
  );
  return sorted.map(({ key, items }) => {
    const accuracy = preferenceAccuracy(items);
    return {
      group: String(key),
      count: items.length,
      accuracy,
      standardError: Math.sqrt((accuracy * (1 - accuracy)) / items.length),
    };
  });
}

export interface ScoreLevelBin {
  /** Mean of (r_chosen + r_rejected)/2 in the bin. */
  meanScore: number;
  lower: number;
  upper: number;
  count: number;
  accuracy: number;
  standardError: number;
}

/**
 * Accuracy against the mean score level (r_chosen + r_rejected)/2, in equal-count bins. The paper
 * finds PMs are less accurate when both responses score high (comparisons among good answers are
 * harder), which is what RL pushes the policy towards.
 *
 * @example accuracyByScoreLevel(scored, 5).map((b) => [b.meanScore, b.accuracy])
 */
export function accuracyByScoreLevel(data: readonly ScoredComparison[], bins = 5): ScoreLevelBin[] {
  const items = data
    .map((c) => ({ level: (c.chosen + c.rejected) / 2, c }))
    .sort((x, y) => x.level - y.level);
  const out: ScoreLevelBin[] = [];
  for (let b = 0; b < bins; b++) {
    const slice = items.slice(
      Math.floor((b * items.length) / bins),
      Math.floor(((b + 1) * items.length) / bins),
    );
    if (slice.length === 0) continue;
    const accuracy = preferenceAccuracy(slice.map((s) => s.c));
    out.push({
      meanScore: slice.reduce((s, i) => s + i.level, 0) / slice.length,
      lower: slice[0]!.level,
      upper: slice[slice.length - 1]!.level,
      count: slice.length,
      accuracy,
      standardError: Math.sqrt((accuracy * (1 - accuracy)) / slice.length),
    });
  }
  return out;
}

/**
 * Number of human turns in an HH transcript, by the data layer's parser (so the turn rules match
 * the loaders'), for per-turn-count accuracy.
 *
 * @example humanTurns('\n\nHuman: hi\n\nAssistant: hello\n\nHuman: 2+2?\n\nAssistant: 4') // 2
 */
export function humanTurns(transcript: string): number {
  return parseTranscript(transcript).turns.filter((t) => t.role === 'human').length;
}
