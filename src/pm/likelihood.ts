// The likelihood feature of a preference model: how likely a frozen language model finds the response,
// added to the score with a learned weight.
//
// Why: a small PM reads its score from one hidden state at the end of the transcript. To tell "24" from
// "26" as the answer to "What is 6 x 4?" it must work out the answer and compare — which a 2-layer trunk
// cannot do at one position, even with gold labels (on the demo's world: 52 % right/wrong pair accuracy on
// arithmetic and facts). The LM it was initialised from already knows: its mean log-probability of the
// response ranks right above wrong in 90-96 % of such pairs, and PMP erases that from the trunk. So the PM
// keeps a frozen copy of that LM and adds w · (mean log-probability per response token, the stop included)
// to the head's score; w is one number learned from the comparisons like every other weight (from 0). The
// paper's PMs are 13M-52B models that can do this inside the trunk; this is the small-model stand-in.
import { noGrad, type Tensor, tensor, zeros } from '../engine/index.ts';
import type { CausalLM } from '../nn/causal-lm.ts';
import { Module } from '../nn/module.ts';
import type { SequenceBatch } from './batch.ts';

/** What the feature needs of the tokenizer: where the response starts and which tokens end it. */
export interface LikelihoodTokens {
  /** The "\n\nAssistant:" turn marker: the response is what follows its last occurrence. */
  assistantTurnId: number;
  /** Tokens that end a response (end-of-text, the next "\n\nHuman:"): the response's stop probability is
   *  their summed probability after its last token. */
  stopIds: number[];
}

/**
 * The frozen LM (not a registered submodule: never trained, not in parameters() or stateDict()) and the
 * learned weight (registered: `likelihood.weight` in the PM's state dict).
 *
 * @example const f = new LikelihoodFeature(lm, { assistantTurnId: 4, stopIds: [0, 3] });
 * const x = f.feature(batch); // (N) mean log-prob per response token
 */
export class LikelihoodFeature extends Module {
  readonly weight: Tensor;

  constructor(
    readonly lm: CausalLM,
    readonly tokens: LikelihoodTokens,
  ) {
    super();
    this.weight = this.param('weight', zeros([1]));
    lm.eval();
    if (tokens.stopIds.length === 0) throw new RangeError('LikelihoodFeature: no stop tokens');
  }

  /**
   * (N): each row's mean log-probability per token of its last Assistant response under the frozen LM,
   * counting the stop as one more token (so an empty or cut-off response is not free). Rows without an
   * Assistant marker take everything before the end-of-context token as the response. No gradients.
   */
  feature(batch: SequenceBatch): Tensor {
    const cpu = (t: Tensor): BigInt64Array => {
      const c = t.device === 'cpu' ? t : t.to({ device: 'cpu' });
      const a = c.toTypedArray() as BigInt64Array;
      if (c !== t) c.dispose();
      return a;
    };
    const [n, T] = batch.ids.shape as [number, number];
    const flat = cpu(batch.ids);
    const real = cpu(batch.attentionMask);
    const readout = cpu(batch.readout);
    // The columns whose next-token distribution is read: start − 1 … end − 2 predict the response's tokens,
    // end − 1 its stop. Only those go through the LM head (prompts are most of a transcript).
    const cols: number[] = [];
    const next: bigint[] = [];
    const isStop: number[] = [];
    const owner: number[] = [];
    const count = new Float32Array(n);
    const marker = BigInt(this.tokens.assistantTurnId);
    for (let r = 0; r < n; r++) {
      const end = Number(readout[r]); // the end-of-context column
      let first = -1; // the row's first real column (left padding puts it past 0)
      let start = -1;
      for (let t = 0; t < end; t++) {
        if (first < 0 && real[r * T + t] !== 0n) first = t;
        if (flat[r * T + t] === marker) start = t + 1;
      }
      if (start < 0) start = Math.min(end, Math.max(first, 0) + 1);
      for (let c = Math.max(start - 1, 0); c <= end - 1; c++) {
        cols.push(r * T + c);
        const stop = c === end - 1;
        next.push(stop ? 0n : flat[r * T + c + 1]!);
        isStop.push(stop ? 1 : 0);
        owner.push(r);
      }
      count[r] = end - start + 1;
    }
    const k = cols.length;
    // average[r, j] = 1/count[r] for the columns of row r: feature = average @ values.
    const average = new Float32Array(n * k);
    owner.forEach((r, j) => {
      average[r * k + j] = 1 / count[r]!;
    });
    const device = this.lm.device;
    return noGrad(() => {
      const place = (t: Tensor): Tensor => (t.device === device ? t : t.to({ device }));
      const { hidden } = this.lm.forwardHidden(place(batch.ids), {
        attentionMask: place(batch.attentionMask),
      });
      const C = hidden.size(2);
      const picked = hidden
        .reshape(n * T, C)
        .indexSelect(0, place(tensor(BigInt64Array.from(cols, BigInt), { shape: [k] })));
      const logp = this.lm.lmHead(picked).float().logSoftmax(-1); // (K, V)
      const stopIds = tensor(BigInt64Array.from(this.tokens.stopIds, BigInt), {
        shape: [this.tokens.stopIds.length],
      });
      const stopLp = logp.indexSelect(1, place(stopIds)).logsumexp(1); // (K)
      const tokLp = logp.gather(1, place(tensor(BigInt64Array.from(next), { shape: [k, 1] }))).squeeze(1); // (K)
      const s = place(tensor(Float32Array.from(isStop), { shape: [k] }));
      const values = tokLp.mul(s.neg().add(1)).add(stopLp.mul(s)); // (K)
      return place(tensor(average, { shape: [n, k] }))
        .matmul(values.unsqueeze(1))
        .squeeze(1); // (N)
    });
  }

  /** w · feature (N): the term added to the head's score (gradients reach w only). */
  term(batch: SequenceBatch): Tensor {
    return this.feature(batch).mul(this.weight);
  }
}
