/**
 * OOD detection of harmful requests from a real model's activations (Bai et al. 2022, §5.4 and
 * Appendix B.9): run the prompts through the GPT, pool each layer's residual stream over the prompt's
 * tokens, fit a Gaussian on part of the in-distribution (helpful) prompts, and measure per layer how
 * well Mahalanobis / simplified relative Mahalanobis distances tell held-out helpful prompts from
 * harmful ones (AUROC). The best layer is chosen on a validation split and its AUROC reported on a
 * disjoint test split (choosing the layer by the same AUROC one reports would overstate it). At the
 * best layer, few-shot outlier exposure shows how far M labelled harmful examples (drawn from a pool
 * disjoint from both splits) move the test AUROC. The distance and probe maths live in ./ood.ts and
 * ./outlier-exposure.ts.
 */
import { cat, keep, noGrad, type Tensor, tensor, tidy } from '../engine/index.ts';
import { leftPad } from '../nn/generate.ts';
import type { CausalLM } from '../nn/causal-lm.ts';
import {
  fitGaussian,
  type GaussianFitOptions,
  type OodAurocs,
  type SplitAurocs,
  splitAurocs,
} from './ood.ts';
import { type FewShotResult, fewShotOutlierExposure } from './outlier-exposure.ts';
import { SeededRandom } from './rng.ts';

/** How a prompt's (T, C) activations become one (C) vector. */
export type Pooling = 'mean' | 'last';

export interface ActivationOptions {
  /** 'mean' over the prompt's real tokens (default) or the 'last' token's activation. */
  pool?: Pooling;
  /** Hidden-state indices to keep, 0 = embeddings … L = last block; default all L + 1. */
  layers?: readonly number[];
  /** Prompts per forward pass (default 16). */
  batchSize?: number;
}

/**
 * Pooled activations of every prompt at the chosen layers: one (N, C) float32 tensor per layer, in
 * `layers` order. Prompts longer than the model's context keep their LAST maxPositions tokens (the end
 * of a request is what says what is asked). Runs under noGrad in eval mode; the returned tensors are
 * the caller's to dispose.
 *
 * @example
 * const ids = await tok.encodeBatch(prompts);
 * const [emb, last] = layerActivations(model, ids, { layers: [0, model.lmConfig.nLayer] }); // (N, C) each
 */
export function layerActivations(
  model: CausalLM,
  prompts: readonly (readonly number[])[],
  opts: ActivationOptions = {},
): Tensor[] {
  const nLayer = model.lmConfig.nLayer;
  const layers = opts.layers ?? Array.from({ length: nLayer + 1 }, (_, i) => i);
  for (const l of layers) {
    if (!(Number.isInteger(l) && l >= 0 && l <= nLayer))
      throw new RangeError(`layerActivations: layer ${l} not in 0…${nLayer}`);
  }
  if (prompts.length === 0) throw new RangeError('layerActivations: no prompts');
  const batchSize = opts.batchSize ?? 16;
  const pool = opts.pool ?? 'mean';
  const device = model.device;
  const wasTraining = model.training;
  model.eval(); // dropout off: activations must be a function of the prompt
  const perLayer: Tensor[][] = layers.map(() => []);
  try {
    for (let start = 0; start < prompts.length; start += batchSize) {
      const rows = prompts.slice(start, start + batchSize).map((p, i) => {
        if (p.length === 0) throw new RangeError(`layerActivations: prompt ${start + i} is empty`);
        return p.slice(-model.lmConfig.maxPositions);
      });
      const pooled = noGrad(() =>
        tidy(() => {
          // Left padding puts every prompt's last token in the last column.
          const padded = leftPad(rows, 0);
          const ids = device === 'cpu' ? padded.ids : padded.ids.to({ device }); // (B, T)
          const mask = device === 'cpu' ? padded.mask : padded.mask.to({ device }); // (B, T)
          const { hiddenStates } = model.forwardHidden(ids, {
            attentionMask: mask,
            outputHiddenStates: true,
          });
          const weights = mask.float().div(mask.float().sum(1, true)).unsqueeze(2); // (B, T, 1)
          return layers.map((l) => {
            const h = hiddenStates![l]!; // (B, T, C)
            const v = pool === 'last' ? h.select(1, h.size(1) - 1) : h.mul(weights).sum(1); // (B, C)
            return keep(v.to({ dtype: 'float32', device: 'cpu' }));
          });
        }),
      );
      pooled.forEach((t, i) => {
        perLayer[i]!.push(t);
      });
    }
  } finally {
    if (wasTraining) model.train();
  }
  return perLayer.map((parts) => {
    const all = tidy(() => keep(cat(parts, 0))); // (N, C)
    for (const p of parts) p.dispose();
    return all;
  });
}

export interface OodSplitOptions {
  /** Fraction of in-distribution prompts used to fit the Gaussian. Default 0.5. */
  fitFraction?: number;
  /**
   * Fraction of the prompts left after the fit (in-distribution) and after the exposure pool
   * (out-of-distribution) that go to validation; the rest are the test split. Default 0.5.
   */
  validationFraction?: number;
  /** Few-shot outlier exposure shot counts (default [1, 2, 5, 10], the paper's). */
  shots?: number[];
  /** Seed of the splits and the draws (default 0). */
  seed?: number;
}

export interface OodEvalOptions extends ActivationOptions, GaussianFitOptions, OodSplitOptions {
  /** Random draws per shot count (default 5). */
  seeds?: number;
}

/**
 * Row indices of the disjoint parts of an OOD evaluation. In-distribution: `fit` (the Gaussian),
 * `validationIn`, `testIn`. Out-of-distribution: `outlierPool` (the few-shot exposure draws),
 * `validationOut`, `testOut`. Anything chosen by looking at an AUROC (the layer) is chosen on the
 * validation parts; the reported AUROCs and the few-shot curve are measured on the test parts, which
 * nothing was fitted to, chosen with or drawn from.
 */
export interface OodSplits {
  fit: number[];
  validationIn: number[];
  testIn: number[];
  outlierPool: number[];
  validationOut: number[];
  testOut: number[];
  /** The shot counts the pool is large enough for (those of `opts.shots` ≤ the pool size). */
  shots: number[];
}

/**
 * Splits `nIn` in-distribution and `nOut` out-of-distribution prompts into the disjoint parts of
 * {@link OodSplits} by seeded shuffles. The exposure pool takes at most a third of the harmful
 * prompts (and no more than 2·max(shots)); with too few of them few-shot exposure is skipped
 * (`shots` is empty) rather than eating into validation or test.
 *
 * @example
 * const s = splitOodPrompts(200, 60, { shots: [1, 2, 5] });
 * [s.fit.length, s.validationIn.length, s.testIn.length]          // [100, 50, 50]
 * [s.outlierPool.length, s.validationOut.length, s.testOut.length] // [10, 25, 25]
 */
export function splitOodPrompts(nIn: number, nOut: number, opts: OodSplitOptions = {}): OodSplits {
  const fitFraction = opts.fitFraction ?? 0.5;
  const validationFraction = opts.validationFraction ?? 0.5;
  for (const [name, v] of [
    ['fitFraction', fitFraction],
    ['validationFraction', validationFraction],
  ] as const) {
    if (!(v > 0 && v < 1)) throw new RangeError(`OOD: ${name} must be in (0, 1) (got ${v})`);
  }
  const fitCount = Math.round(nIn * fitFraction);
  const heldIn = nIn - fitCount;
  const validationInCount = Math.round(heldIn * validationFraction);
  if (fitCount < 2 || validationInCount < 1 || heldIn - validationInCount < 1) {
    throw new RangeError(
      `OOD: need ≥ 2 in-distribution prompts to fit, ≥ 1 to validate and ≥ 1 to test (got ${nIn} in all)`,
    );
  }
  if (nOut < 2)
    throw new RangeError(
      `OOD: need ≥ 2 out-of-distribution prompts, 1 to validate and 1 to test (got ${nOut})`,
    );
  const shots = (opts.shots ?? [1, 2, 5, 10]).filter((m) => Number.isInteger(m) && m > 0);
  const poolCap = shots.length ? Math.min(Math.floor(nOut / 3), 2 * Math.max(...shots)) : 0;
  const usableShots = shots.filter((m) => m <= poolCap);
  const poolCount = usableShots.length ? poolCap : 0;
  const heldOut = nOut - poolCount;
  const validationOutCount = Math.min(heldOut - 1, Math.max(1, Math.round(heldOut * validationFraction)));
  const rng = new SeededRandom(opts.seed ?? 0);
  const inOrder = rng.sample(nIn, nIn);
  const outOrder = rng.sample(nOut, nOut);
  return {
    fit: inOrder.slice(0, fitCount),
    validationIn: inOrder.slice(fitCount, fitCount + validationInCount),
    testIn: inOrder.slice(fitCount + validationInCount),
    outlierPool: outOrder.slice(0, poolCount),
    validationOut: outOrder.slice(poolCount, poolCount + validationOutCount),
    testOut: outOrder.slice(poolCount + validationOutCount),
    shots: usableShots,
  };
}

/**
 * One layer's AUROCs. The top-level `mahalanobis`, `diagonalMahalanobis` and
 * `simplifiedRelativeMahalanobis` are measured on the TEST split; `validation` holds the same
 * AUROCs on the validation split, the ones the best layer is chosen by. Both splits are scored under
 * the one Gaussian fitted on the fit split (`shrinkage` is that fit's).
 */
export interface OodLayerResult extends OodAurocs {
  /** Hidden-state index: 0 = embeddings, l = output of block l. */
  layer: number;
  validation: SplitAurocs;
}

/** The result of {@link evaluateOodDetection}; also what `hhkit ood --out` writes and the report reads. */
export interface OodReport {
  pool: Pooling;
  /** Per layer: test-split AUROCs at the top level, validation-split AUROCs under `validation`. */
  layers: OodLayerResult[];
  /**
   * The layer with the highest VALIDATION simplified relative Mahalanobis AUROC (ties: the earlier
   * one). Its test AUROCs (`layers[…].simplifiedRelativeMahalanobis` of this layer) are the result.
   */
  bestLayer: number;
  /** How `bestLayer` was chosen: by this score's AUROC on this split. */
  selection: { split: 'validation'; score: 'simplifiedRelativeMahalanobis' };
  /**
   * Few-shot outlier exposure at the best layer: M outliers drawn from the exposure pool (disjoint
   * from validation and test), AUROC on the test split; empty when there were too few harmful prompts.
   */
  fewShot: FewShotResult[];
  counts: {
    fit: number;
    validationIn: number;
    validationOut: number;
    testIn: number;
    testOut: number;
    outlierPool: number;
  };
}

function rowsOf(x: Tensor, index: number[]): Tensor {
  return tidy(() => keep(x.indexSelect(0, tensor(index, { dtype: 'int64' }))));
}

/**
 * The OOD evaluation on activations already pooled: `inActs[i]` / `outActs[i]` are the (N_in, C) /
 * (N_out, C) activations at hidden-state `layers[i]`. Per layer, a Gaussian is fitted on the fit
 * split and the validation and test splits are scored under it; the best layer is chosen on the
 * validation split only, and few-shot outlier exposure runs there, drawing its outliers from the
 * exposure pool and scoring the test split. The tensors stay the caller's.
 *
 * @example
 * const report = evaluateOodActivations([embIn, lastIn], [embOut, lastOut], [0, 2], { shots: [1, 5] });
 * report.layers.find((l) => l.layer === report.bestLayer)!.simplifiedRelativeMahalanobis; // test AUROC
 */
export function evaluateOodActivations(
  inActs: readonly Tensor[],
  outActs: readonly Tensor[],
  layers: readonly number[],
  opts: OodEvalOptions = {},
): OodReport {
  if (inActs.length !== layers.length || outActs.length !== layers.length)
    throw new RangeError(`OOD: ${layers.length} layers but ${inActs.length} / ${outActs.length} activations`);
  if (layers.length === 0) throw new RangeError('OOD: no layers');
  const splits = splitOodPrompts(inActs[0]!.shape[0]!, outActs[0]!.shape[0]!, opts);
  const results: OodLayerResult[] = [];
  let bestAt = 0;
  layers.forEach((layer, i) => {
    const parts = {
      fit: rowsOf(inActs[i]!, splits.fit),
      validationIn: rowsOf(inActs[i]!, splits.validationIn),
      validationOut: rowsOf(outActs[i]!, splits.validationOut),
      testIn: rowsOf(inActs[i]!, splits.testIn),
      testOut: rowsOf(outActs[i]!, splits.testOut),
    };
    try {
      using fit = fitGaussian(parts.fit, opts);
      const validation = splitAurocs(fit, parts.validationIn, parts.validationOut);
      const test = splitAurocs(fit, parts.testIn, parts.testOut);
      results.push({ layer, ...test, shrinkage: fit.shrinkage, validation });
      // Chosen on validation only: the test AUROCs must not have seen the choice.
      if (
        validation.simplifiedRelativeMahalanobis > results[bestAt]!.validation.simplifiedRelativeMahalanobis
      )
        bestAt = results.length - 1;
    } finally {
      for (const t of Object.values(parts)) t.dispose();
    }
  });
  let fewShot: FewShotResult[] = [];
  if (splits.shots.length) {
    const data = {
      inDistribution: rowsOf(inActs[bestAt]!, splits.fit),
      outlierPool: rowsOf(outActs[bestAt]!, splits.outlierPool),
      testIn: rowsOf(inActs[bestAt]!, splits.testIn),
      testOut: rowsOf(outActs[bestAt]!, splits.testOut),
    };
    try {
      fewShot = fewShotOutlierExposure(data, {
        shots: splits.shots,
        seeds: opts.seeds ?? 5,
        seed: opts.seed ?? 0,
      });
    } finally {
      for (const t of Object.values(data)) t.dispose();
    }
  }
  return {
    pool: opts.pool ?? 'mean',
    layers: results,
    bestLayer: results[bestAt]!.layer,
    selection: { split: 'validation', score: 'simplifiedRelativeMahalanobis' },
    fewShot,
    counts: {
      fit: splits.fit.length,
      validationIn: splits.validationIn.length,
      validationOut: splits.validationOut.length,
      testIn: splits.testIn.length,
      testOut: splits.testOut.length,
      outlierPool: splits.outlierPool.length,
    },
  };
}

/**
 * Per-layer OOD AUROCs and few-shot outlier exposure for token-id prompts: in-distribution
 * (helpful/benign) vs out-of-distribution (harmful). Runs the prompts through the model and hands
 * the pooled activations to {@link evaluateOodActivations}: splits as in {@link splitOodPrompts},
 * the layer chosen on validation, every reported AUROC on the disjoint test split.
 *
 * @example
 * const report = evaluateOodDetection(model, await tok.encodeBatch(benign), await tok.encodeBatch(harmful));
 * report.bestLayer;                                    // chosen on the validation split
 * report.layers.map((l) => l.simplifiedRelativeMahalanobis); // test AUROC per layer
 */
export function evaluateOodDetection(
  model: CausalLM,
  inDistribution: readonly (readonly number[])[],
  outOfDistribution: readonly (readonly number[])[],
  opts: OodEvalOptions = {},
): OodReport {
  // Check the split sizes before the forward passes.
  splitOodPrompts(inDistribution.length, outOfDistribution.length, opts);
  const layerIds = opts.layers ?? Array.from({ length: model.lmConfig.nLayer + 1 }, (_, i) => i);
  const inActs = layerActivations(model, inDistribution, { ...opts, layers: layerIds });
  const outActs = layerActivations(model, outOfDistribution, { ...opts, layers: layerIds });
  try {
    return evaluateOodActivations(inActs, outActs, layerIds, opts);
  } finally {
    for (const t of [...inActs, ...outActs]) t.dispose();
  }
}
