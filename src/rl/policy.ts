// The PPO policy with its value function: a causal LM of any family (the actor) and a scalar value head read
// from either the policy's own trunk ('shared': one forward for both, as TRL's AutoModelForCausalLMWithValueHead)
// or a separate LM initialised from the same checkpoint ('separate': OpenRLHF's critic; value-loss gradients
// then never reach the policy).
import type { Tensor } from '../engine/index.ts';
import type { CausalLM } from '../nn/causal-lm.ts';
import { ScalarHead } from '../nn/heads.ts';

export type ValueModelKind = 'shared' | 'separate';

/** Where the response sits in a rollout's (B, P + N) sequences: P prompt columns, then N response columns. */
export interface ResponseWindow {
  /** (B, P + N) int64. */
  sequences: Tensor;
  /** (B, P + N) bool. */
  attentionMask: Tensor;
  /** Prompt width P (left-padded). */
  promptWidth: number;
  /** Response width N. */
  responseWidth: number;
}

/**
 * Logits (B, N, V) predicting each response token, and the final hidden states (B, N, C) at the same
 * positions (column P − 1 + t predicts response token t).
 *
 * @example const { logits } = responseLogits(policy, window); // (B, N, V)
 */
export function responseLogits(model: CausalLM, w: ResponseWindow): { logits: Tensor; hidden: Tensor } {
  const { hidden } = model.forwardHidden(w.sequences, { attentionMask: w.attentionMask }); // (B, P+N, C)
  const h = hidden.narrow(1, w.promptWidth - 1, w.responseWidth); // (B, N, C)
  return { logits: model.lmHead(h), hidden: h };
}

/**
 * log p(token) of each response token (B, N) under logits (B, N, V).
 *
 * @example const logp = gatherLogprobs(logits, responses); // (B, N)
 */
export function gatherLogprobs(logits: Tensor, tokens: Tensor): Tensor {
  return logits.logSoftmax(-1).gather(2, tokens.unsqueeze(2)).squeeze(2);
}

/**
 * Policy + value head. `forward` returns the response logits (B, N, V) and values (B, N): V_t is the value
 * of the state before response token t (read at the same column as its logits).
 *
 * @example
 * const ac = new ActorCritic(policy, 'shared', null, { seed: 1 });
 * const { logits, values } = ac.forward(window);
 */
export class ActorCritic {
  readonly valueHead: ScalarHead;
  constructor(
    readonly policy: CausalLM,
    readonly kind: ValueModelKind,
    /** The critic's own trunk when kind is 'separate' (a copy of the initial policy). */
    readonly valueTrunk: CausalLM | null,
    opts: { seed?: number; valueHead?: ScalarHead } = {},
  ) {
    if (kind === 'separate' && !valueTrunk)
      throw new TypeError("ActorCritic: kind 'separate' needs a valueTrunk");
    // A small init std: values start near 0, where whitened advantages put them.
    this.valueHead =
      opts.valueHead ?? new ScalarHead(policy.lmConfig.hiddenSize, { seed: opts.seed ?? 1, std: 0.01 });
  }

  parameters(): Tensor[] {
    return [
      ...this.policy.parameters(),
      ...(this.valueTrunk ? this.valueTrunk.parameters() : []),
      ...this.valueHead.parameters(),
    ];
  }

  forward(w: ResponseWindow): { logits: Tensor; values: Tensor } {
    const { logits, hidden } = responseLogits(this.policy, w);
    if (this.kind === 'shared') return { logits, values: this.valueHead.forward(hidden) };
    const { hidden: criticHidden } = this.valueTrunk!.forwardHidden(w.sequences, {
      attentionMask: w.attentionMask,
    }); // (B, P+N, C)
    const h = criticHidden.narrow(1, w.promptWidth - 1, w.responseWidth); // (B, N, C)
    return { logits, values: this.valueHead.forward(h) };
  }

  /** Dropout off everywhere: PPO's ratio must be 1 at the rollout's own parameters. */
  eval(): this {
    this.policy.eval();
    this.valueTrunk?.eval();
    this.valueHead.eval();
    return this;
  }
}
