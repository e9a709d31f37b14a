// Rotary position embeddings (Su et al. 2021) as Hugging Face applies them (the "rotate_half" layout, not
// the interleaved one of Meta's original code): the first `rotaryDim` channels of each head are split in two
// halves (x1, x2) and rotated, x·cos + (−x2, x1)·sin, with frequencies θ^(−2i/rotaryDim). Llama, Mistral and
// Qwen rotate the whole head; GPT-NeoX only its first rotary_pct of channels. Llama 3's "llama3" rope_scaling
// stretches the low frequencies.
import { cat, type Tensor, tensor } from '../engine/index.ts';
import { ModelConfigError } from './causal-lm.ts';
import { Module } from './module.ts';

/** Llama 3.1's rope_scaling {rope_type: "llama3", factor, low_freq_factor, high_freq_factor, original_max_position_embeddings}. */
export interface Llama3RopeScaling {
  type: 'llama3';
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalMaxPositions: number;
}

/**
 * The inverse frequencies θ^(−2i/dim), i < dim/2, with Llama 3's scaling when given: wavelengths above
 * original/lowFreqFactor are divided by `factor`, below original/highFreqFactor kept, and interpolated between.
 *
 * @example ropeInverseFrequencies(4, 10000) // [1, 0.01]
 */
export function ropeInverseFrequencies(dim: number, theta: number, scaling: Llama3RopeScaling | null = null) {
  if (!Number.isInteger(dim) || dim < 2 || dim % 2 !== 0) {
    throw new ModelConfigError(`rotary dimension must be a positive even integer, got ${dim}`);
  }
  const out = new Float64Array(dim / 2);
  for (let i = 0; i < dim / 2; i++) out[i] = 1 / theta ** ((2 * i) / dim);
  if (!scaling) return out;
  const { factor, lowFreqFactor, highFreqFactor, originalMaxPositions } = scaling;
  const lowFreqWavelen = originalMaxPositions / lowFreqFactor;
  const highFreqWavelen = originalMaxPositions / highFreqFactor;
  for (let i = 0; i < out.length; i++) {
    const f = out[i]!;
    const wavelen = (2 * Math.PI) / f;
    if (wavelen > lowFreqWavelen) out[i] = f / factor;
    else if (wavelen >= highFreqWavelen) {
      // Medium frequencies: interpolate between scaled and unscaled.
      const smooth = (originalMaxPositions / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
      out[i] = ((1 - smooth) * f) / factor + smooth * f;
    }
  }
  return out;
}

/**
 * Rotary embedding of one model: its frequencies and how many channels of a head it rotates. Registered
 * once per model as `rotary_emb` (as in Hugging Face) and shared by every attention layer.
 */
export class RotaryEmbedding extends Module {
  /** θ^(−2i/rotaryDim), i < rotaryDim/2 (after any scaling), in float32 as Hugging Face keeps inv_freq. */
  readonly frequencies: Float32Array;
  /**
   * The frequencies as a tensor (rotaryDim/2): a non-persistent buffer, so it is made once, moves with the
   * model's device and stays float32 when the model is converted (not copied from the host every forward).
   */
  inv_freq: Tensor;

  constructor(
    readonly rotaryDim: number,
    theta: number,
    scaling: Llama3RopeScaling | null = null,
  ) {
    super();
    this.frequencies = Float32Array.from(ropeInverseFrequencies(rotaryDim, theta, scaling));
    this.inv_freq = this.buffer('inv_freq', tensor(this.frequencies), false, true);
  }

  /**
   * cos and sin for positions (T) or (B, T): each (B or 1, 1, T, rotaryDim), computed in float32 (as Hugging
   * Face does, autocast off) and cast to `dtype`.
   */
  cosSin(positions: Tensor, dtype: Tensor['dtype']): [Tensor, Tensor] {
    const pos = positions.ndim === 1 ? positions.unsqueeze(0) : positions; // (B|1, T)
    // (rotaryDim/2); positions on another device than the model's (not a forward's case) get a copy.
    const invFreq =
      this.inv_freq.device === positions.device
        ? this.inv_freq
        : this.inv_freq.to({ device: positions.device });
    const freqs = pos.float().unsqueeze(-1).mul(invFreq); // (B|1, T, rotaryDim/2)
    const emb = cat([freqs, freqs], -1).unsqueeze(1); // (B|1, 1, T, rotaryDim)
    return [emb.cos().to(dtype), emb.sin().to(dtype)];
  }

  /** Rotates the first rotaryDim channels of x (B, H, T, D); the rest pass through. */
  apply(x: Tensor, cos: Tensor, sin: Tensor): Tensor {
    const d = x.size(3);
    const rot = this.rotaryDim === d ? x : x.narrow(3, 0, this.rotaryDim);
    const half = this.rotaryDim / 2;
    // rotate_half: (x1, x2) → (−x2, x1)
    const rotated = cat([rot.narrow(3, half, half).neg(), rot.narrow(3, 0, half)], -1);
    const out = rot.mul(cos).add(rotated.mul(sin));
    return this.rotaryDim === d ? out : cat([out, x.narrow(3, this.rotaryDim, d - this.rotaryDim)], -1);
  }
}
