/**
 * OOD detection of harmful requests from a real model's activations (Bai et al. 2022, §5.4 and
 * Appendix B.9): run the prompts through the GPT, pool each layer's residual stream over the prompt's
 * tokens, fit a Gaussian on part of the in-distribution (helpful) prompts, and measure per layer how
 * well Mahalanobis / simplified relative Mahalanobis distances tell held-out helpful prompts from
 * harmful ones (AUROC). At the best layer, few-shot outlier exposure shows how far M labelled harmful
 * examples move that AUROC. The distance and probe maths live in ./ood.ts and ./outlier-exposure.ts.
 */
import { cat, keep, noGrad, type Tensor, tensor, tidy } from '../engine/index.ts';
import { leftPad } from '../nn/generate.ts';
import type { GPT } from '../nn/gpt.ts';
import { type GaussianFitOptions, type OodAurocs, oodAurocs } from './ood.ts';
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
 * `layers` order. Prompts longer than the model's context keep their LAST nPositions tokens (the end
 * of a request is what says what is asked). Runs under noGrad in eval mode; the returned tensors are
 * the caller's to dispose.
 *
 * @example
 * const ids = await tok.encodeBatch(prompts);
 * const [emb, last] = layerActivations(model, ids, { layers: [0, model.config.nLayer] }); // (N, C) each
 */
export function layerActivations(
  model: GPT,
  prompts: readonly (readonly number[])[],
  opts: ActivationOptions = {},
): Tensor[] {
  const nLayer = model.config.nLayer;
  const layers = opts.layers ?? Array.from({ length: nLayer + 1 }, (_, i) => i);
  for (const l of layers) {
    if (!(Number.isInteger(l) && l >= 0 && l <= nLayer))
      throw new RangeError(`layerActivations: layer ${l} not in 0…${nLayer}`);
  }
  if (prompts.length === 0) throw new RangeError('layerActivations: no prompts');
  const batchSize = opts.batchSize ?? 16;
  const pool = opts.pool ?? 'mean';
  const device = model.wte.device;
  const wasTraining = model.training;
  model.eval(); // dropout off: activations must be a function of the prompt
  const perLayer: Tensor[][] = layers.map(() => []);
  try {
    for (let start = 0; start < prompts.length; start += batchSize) {
      const rows = prompts.slice(start, start + batchSize).map((p, i) => {
        if (p.length === 0) throw new RangeError(`layerActivations: prompt ${start + i} is empty`);
        return p.slice(-model.config.nPositions);
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

export interface OodEvalOptions extends ActivationOptions, GaussianFitOptions {
  /** Fraction of in-distribution prompts used to fit the Gaussian; the rest are test negatives. Default 0.5. */
  fitFraction?: number;
  /** Few-shot outlier exposure shot counts (default [1, 2, 5, 10], the paper's). */
  shots?: number[];
  /** Random draws per shot count (default 5). */
  seeds?: number;
  /** Seed of the splits and the draws (default 0). */
  seed?: number;
}

export interface OodLayerResult extends OodAurocs {
  /** Hidden-state index: 0 = embeddings, l = output of block l. */
  layer: number;
}

/** The result of {@link evaluateOodDetection}; also what `hhkit ood --out` writes and the report reads. */
export interface OodReport {
  pool: Pooling;
  layers: OodLayerResult[];
  /** The layer with the highest simplified relative Mahalanobis AUROC (ties: the earlier one). */
  bestLayer: number;
  /** Few-shot outlier exposure at the best layer; empty when there were too few harmful prompts. */
  fewShot: FewShotResult[];
  counts: { fit: number; testIn: number; testOut: number; outlierPool: number };
}

/** Splits [0, n) by a seeded shuffle into the first `k` and the rest. */
function shuffledSplit(n: number, k: number, rng: SeededRandom): [number[], number[]] {
  const order = rng.sample(n, n);
  return [order.slice(0, k), order.slice(k)];
}

function rowsOf(x: Tensor, index: number[]): Tensor {
  return tidy(() => keep(x.indexSelect(0, tensorOfIndices(index))));
}

function tensorOfIndices(index: number[]): Tensor {
  return tensor(index, { dtype: 'int64' });
}

/**
 * Per-layer OOD AUROCs and few-shot outlier exposure for token-id prompts: in-distribution
 * (helpful/benign) vs out-of-distribution (harmful). In-distribution prompts are split into a fit part
 * and a test part; harmful prompts into an exposure pool (half, at most max(shots)·2, for the few-shot
 * probe) and a test part. Unsupervised scores are measured on the same test parts as the probe.
 *
 * @example
 * const report = evaluateOodDetection(model, await tok.encodeBatch(benign), await tok.encodeBatch(harmful));
 * report.layers.map((l) => l.simplifiedRelativeMahalanobis); // AUROC per layer
 */
export function evaluateOodDetection(
  model: GPT,
  inDistribution: readonly (readonly number[])[],
  outOfDistribution: readonly (readonly number[])[],
  opts: OodEvalOptions = {},
): OodReport {
  const rng = new SeededRandom(opts.seed ?? 0);
  const nIn = inDistribution.length;
  const nOut = outOfDistribution.length;
  const fitCount = Math.round(nIn * (opts.fitFraction ?? 0.5));
  if (fitCount < 2 || nIn - fitCount < 1)
    throw new RangeError(`OOD: need ≥ 3 in-distribution prompts to fit and test (got ${nIn})`);
  if (nOut < 1) throw new RangeError('OOD: no out-of-distribution prompts');
  const shots = (opts.shots ?? [1, 2, 5, 10]).filter((m) => Number.isInteger(m) && m > 0);
  // Exposure pool: enough for the largest M, but never more than half the harmful prompts.
  const poolCount = shots.length ? Math.min(Math.floor(nOut / 2), 2 * Math.max(...shots)) : 0;
  const usableShots = shots.filter((m) => m <= poolCount);
  const [fitIdx, testInIdx] = shuffledSplit(nIn, fitCount, rng);
  const [poolIdx, testOutIdx] = shuffledSplit(nOut, usableShots.length ? poolCount : 0, rng);

  const layerIds = opts.layers ?? Array.from({ length: model.config.nLayer + 1 }, (_, i) => i);
  const inActs = layerActivations(model, inDistribution, { ...opts, layers: layerIds });
  const outActs = layerActivations(model, outOfDistribution, { ...opts, layers: layerIds });
  const layers: OodLayerResult[] = [];
  let bestLayer = layerIds[0]!;
  let bestAt = 0;
  let fewShot: FewShotResult[] = [];
  try {
    layerIds.forEach((layer, i) => {
      const parts = [
        rowsOf(inActs[i]!, fitIdx),
        rowsOf(inActs[i]!, testInIdx),
        rowsOf(outActs[i]!, testOutIdx),
      ] as const;
      try {
        const aurocs = oodAurocs(parts[0], parts[1], parts[2], opts);
        layers.push({ layer, ...aurocs });
        if (aurocs.simplifiedRelativeMahalanobis > layers[bestAt]!.simplifiedRelativeMahalanobis) {
          bestAt = layers.length - 1;
        }
      } finally {
        for (const p of parts) p.dispose();
      }
    });
    bestLayer = layers[bestAt]!.layer;
    if (usableShots.length) {
      const i = layerIds.indexOf(bestLayer);
      const data = {
        inDistribution: rowsOf(inActs[i]!, fitIdx),
        outlierPool: rowsOf(outActs[i]!, poolIdx),
        testIn: rowsOf(inActs[i]!, testInIdx),
        testOut: rowsOf(outActs[i]!, testOutIdx),
      };
      try {
        fewShot = fewShotOutlierExposure(data, {
          shots: usableShots,
          seeds: opts.seeds ?? 5,
          seed: opts.seed ?? 0,
        });
      } finally {
        for (const t of Object.values(data)) t.dispose();
      }
    }
  } finally {
    for (const t of [...inActs, ...outActs]) t.dispose();
  }
  return {
    pool: opts.pool ?? 'mean',
    layers,
    bestLayer,
    fewShot,
    counts: {
      fit: fitIdx.length,
      testIn: testInIdx.length,
      testOut: testOutIdx.length,
      outlierPool: poolIdx.length,
    },
  };
}
