// Batched sampling with a KV cache, for any CausalLM (GPT-2, Llama-like, GPT-NeoX): the rollout step of
// RLHF (PPO needs the sampled tokens and their log-probs), best-of-N and the feedback interface's model turns.
//
// Prompts of different lengths are LEFT-padded so every row's next token sits in the same column; the
// attention mask hides the padding and the position ids count only real tokens, so a padded prompt gives
// the same logits as the prompt alone. The cache is allocated once per call, for prompt + maxNewTokens.
//
// Defaults are the RL defaults: temperature 1, no top-p, no top-k, no minimum length. Top-k and a minimum
// length (suppressing EOS) sample from a distribution other than the policy's, and the KL penalty
// estimated from those samples with the policy's log-probs can go negative (a known TRL failure).
import {
  cat,
  getRngState,
  manualSeed,
  multinomial,
  noGrad,
  sampleCategorical,
  setRngState,
  type Tensor,
  tensor,
  tidy,
  zeros,
} from '../engine/index.ts';
import { fusedDecoding } from './attention.ts';
import type { CausalLM } from './causal-lm.ts';
import type { KVCache } from './kvcache.ts';

export interface GenerateOptions {
  /** Upper bound on response length; generation ends earlier once every row has stopped. */
  maxNewTokens: number;
  /** Written after a row stops and used for left padding. */
  padId: number;
  /** End-of-text token: a row stops after sampling it (the token is kept in the response). */
  eosId?: number | null;
  /** More tokens that end a row, e.g. the "\n\nHuman:" turn marker. */
  stopIds?: readonly number[];
  /**
   * Text that ends a row once its sampled tokens spell it, however they split it (Hugging Face's
   * `stop_strings`): a row stops after the token that completes one, that token kept. Needs `tokenText`.
   * E.g. "\n\nHuman:" for a tokenizer that has it as several tokens.
   */
  stopStrings?: readonly string[];
  /** Each id's text, to match stopStrings (a tokenizer's tokenText). */
  tokenText?: (id: number) => string;
  /** Always pick the most likely token (temperature and topP are then ignored). Default false. */
  greedy?: boolean;
  /** Divides the logits before sampling. Default 1 (the policy's own distribution). */
  temperature?: number;
  /** Nucleus sampling: keep the smallest set of tokens whose mass reaches topP. Default 1 (off). */
  topP?: number;
  /**
   * Samples from a generator seeded with this, then restores the global generator, so a seeded call is
   * reproducible and leaves training's random stream untouched. Without it the global generator is used.
   */
  seed?: number;
}

/** Tensor-level result (what PPO consumes). N = steps run (≤ maxNewTokens). */
export interface GeneratedBatch {
  /** (B, P + N) int64: left-padded prompts then responses. */
  sequences: Tensor;
  /** (B, P + N) bool: true at real tokens (prompt without padding, response up to its stop token). */
  attentionMask: Tensor;
  /** (B, N) int64: sampled tokens; padId after a row stopped. */
  responses: Tensor;
  /** (B, N) bool: true at response tokens that were sampled (the stop token included). */
  responseMask: Tensor;
  /**
   * (B, N) float32: log p(token) under the model at temperature 1 — the raw log-softmax of the logits,
   * whatever temperature/topP sampled it — which is what PPO's ratio and KL penalty compare against
   * (its training forward also runs at temperature 1). 0 where responseMask is false.
   */
  logprobs: Tensor;
  /** (B) bool: the row ended on EOS or a stop id (false: it ran out of maxNewTokens). */
  finished: Tensor;
}

/** Per-row result of `generate`. */
export interface Generation {
  /** Response tokens of each row, ending with the stop token when the row finished. */
  tokens: number[][];
  /** log p(token) at temperature 1 for each response token (see GeneratedBatch.logprobs). */
  logprobs: number[][];
  /** Whether each row ended on EOS or a stop id. */
  finished: boolean[];
}

/**
 * Left-pads token lists into (B, P) ids and a (B, P) bool mask (true at real tokens).
 *
 * @example const { ids, mask } = leftPad([[5, 6, 7], [8]], 0); // ids [[5,6,7],[0,0,8]]
 */
export function leftPad(rows: readonly (readonly number[])[], padId: number): { ids: Tensor; mask: Tensor } {
  const width = Math.max(0, ...rows.map((r) => r.length));
  const ids = new BigInt64Array(rows.length * width).fill(BigInt(padId));
  const mask = new Uint8Array(rows.length * width);
  rows.forEach((row, b) => {
    const offset = b * width + width - row.length;
    row.forEach((id, i) => {
      ids[offset + i] = BigInt(id);
      mask[offset + i] = 1;
    });
  });
  return {
    ids: tensor(ids, { shape: [rows.length, width] }),
    mask: tensor(mask, { dtype: 'bool', shape: [rows.length, width] }),
  };
}

/**
 * Samples a response to each prompt (token ids, any lengths; at least one token each), batched with a
 * KV cache. Returns each row's tokens, their temperature-1 log-probs and whether it hit a stop token.
 *
 * @example
 * const prompt = await tok.encode('\n\nHuman: hi\n\nAssistant:');
 * const out = generate(model, [prompt], {
 *   maxNewTokens: 32, padId: tok.padId, eosId: tok.eosId, stopIds: [tok.humanTurnId!], seed: 1,
 * });
 * out.tokens[0]; // e.g. [31, 8, 12, tok.humanTurnId]: the stop token ends the response
 */
export function generate(
  model: CausalLM,
  prompts: readonly (readonly number[])[],
  opts: GenerateOptions,
): Generation {
  return tidy(() => {
    const { ids, mask } = leftPad(prompts, opts.padId);
    const out = generateBatch(model, ids, mask, opts);
    const [B, N] = out.responses.shape as [number, number];
    const tokens = out.responses.toTypedArray() as BigInt64Array;
    const logprobs = out.logprobs.toTypedArray() as Float32Array;
    const sampled = out.responseMask.toTypedArray() as Uint8Array;
    const finished = out.finished.toTypedArray() as Uint8Array;
    const result: Generation = { tokens: [], logprobs: [], finished: [] };
    for (let b = 0; b < B; b++) {
      let length = 0;
      while (length < N && sampled[b * N + length] === 1) length++;
      result.tokens.push(Array.from(tokens.subarray(b * N, b * N + length), Number));
      result.logprobs.push(Array.from(logprobs.subarray(b * N, b * N + length)));
      result.finished.push(finished[b] === 1);
    }
    return result;
  });
}

// Picks the next token of each row from logits (B, V); returns (B, 1) int64.
function pick(logits: Tensor, o: GenerateOptions): Tensor {
  if (o.greedy) return logits.argmax(-1, true);
  const temperature = o.temperature ?? 1;
  const scaled = temperature === 1 ? logits : logits.div(temperature);
  const topP = o.topP ?? 1;
  if (topP >= 1) return drawOne(scaled.softmax(-1));
  // Nucleus: keep a token while the mass of the tokens ranked above it is below topP (the top token always
  // survives), then sample in the sorted order and map back to vocabulary ids.
  const [sortedLogits, order] = scaled.sort(-1, true); // (B, V) each
  const sortedProbs = sortedLogits.softmax(-1);
  const massAbove = sortedProbs.cumsum(-1).sub(sortedProbs);
  const kept = sortedProbs.maskedFill(massAbove.ge(topP), 0);
  return order.gather(1, drawOne(kept));
}

// One index per row of nonnegative weights (B, V) → (B, 1): the native inverse-CDF draw on the CPU in
// float32, multinomial elsewhere (the same distribution; different draws for a seed).
function drawOne(weights: Tensor): Tensor {
  return fusedDecoding() && weights.device === 'cpu' && weights.dtype === 'float32'
    ? sampleCategorical(weights)
    : multinomial(weights, 1);
}

function checkOptions(model: CausalLM, B: number, P: number, o: GenerateOptions): void {
  const { maxNewTokens, temperature = 1, topP = 1 } = o;
  if (!Number.isInteger(maxNewTokens) || maxNewTokens < 1) {
    throw new RangeError(`generate: maxNewTokens must be a positive integer, got ${maxNewTokens}`);
  }
  if (!(temperature > 0)) throw new RangeError(`generate: temperature must be > 0, got ${temperature}`);
  if (!(topP > 0 && topP <= 1)) throw new RangeError(`generate: topP must be in (0, 1], got ${topP}`);
  if (B === 0 || P === 0) throw new RangeError(`generate: empty batch or prompts (B=${B}, P=${P})`);
  const maxPositions = model.lmConfig.maxPositions;
  if (P + maxNewTokens > maxPositions) {
    throw new RangeError(
      `generate: prompt width ${P} + maxNewTokens ${maxNewTokens} exceeds the model's context length ` +
        `(maxPositions ${maxPositions}); shorten the prompts or lower maxNewTokens`,
    );
  }
}

/**
 * Samples continuations of left-padded prompts (B, P) int64 with mask (B, P) bool (see `leftPad`),
 * under noGrad. Every prompt needs at least one real token. The model runs in its current mode: call
 * `model.eval()` first unless dropout during sampling is wanted. It may run inside `autocast` (bf16
 * forwards): the logits are cast to float32 before sampling, so `logprobs` are float32.
 *
 * @example
 * const { ids, mask } = leftPad(prompts, tok.padId);
 * const out = generateBatch(policy, ids, mask, { maxNewTokens: 64, padId: tok.padId, eosId: tok.eosId });
 * out.logprobs; // (B, N) log-probs at temperature 1 of out.responses
 */
export function generateBatch(
  model: CausalLM,
  promptIds: Tensor,
  promptMask: Tensor,
  opts: GenerateOptions,
): GeneratedBatch {
  const [B, P] = promptIds.shape as [number, number];
  checkOptions(model, B, P, opts);
  const { maxNewTokens, padId } = opts;
  const V = model.lmConfig.vocabSize;
  const stopIds = [...(opts.eosId == null ? [] : [opts.eosId]), ...(opts.stopIds ?? [])];
  for (const id of stopIds) {
    if (!Number.isInteger(id) || id < 0 || id >= V)
      throw new RangeError(`generate: stop id ${id} not in [0, ${V})`);
  }
  const device = model.device;
  return noGrad(() =>
    tidy(() => {
      if (promptIds.device !== device) promptIds = promptIds.to({ device });
      if (promptMask.device !== device) promptMask = promptMask.to({ device });
      if (promptMask.long().sum(1).min().item() < 1) {
        throw new RangeError('generate: every prompt needs at least one real token (a row is all padding)');
      }
      // A seed reseeds every generator (manualSeed); put back the CPU's and the device's afterwards.
      const saved =
        opts.seed === undefined
          ? null
          : [...new Set(['cpu', device])].map((d) => [d, getRngState(d)] as const);
      if (opts.seed !== undefined) manualSeed(opts.seed);
      const cache = model.makeCache(B, P + maxNewTokens);
      try {
        const isStop = stopTable(V, stopIds).to({ device });
        const matcher = stopStringMatcher(B, opts);
        return sample(model, promptIds, promptMask, opts, cache, isStop, padId, maxNewTokens, matcher);
      } finally {
        cache.dispose();
        for (const [d, state] of saved ?? []) setRngState(state, d);
      }
    }),
  );
}

/** Per-row tails of the sampled text; `push` says which live rows just completed a stop string. */
interface StopStringMatcher {
  push(tokens: BigInt64Array, done: Uint8Array): Uint8Array;
}

function stopStringMatcher(B: number, o: GenerateOptions): StopStringMatcher | null {
  const strings = (o.stopStrings ?? []).filter((s) => s.length > 0);
  if (strings.length === 0) return null;
  const tokenText = o.tokenText;
  if (!tokenText) throw new RangeError("generate: stopStrings need tokenText (each id's text)");
  // A match ends in the newest token and starts at most (longest − 1) characters before it.
  const keep = Math.max(...strings.map((s) => s.length)) - 1;
  const tails = new Array<string>(B).fill('');
  return {
    push(tokens, done) {
      const hit = new Uint8Array(B);
      for (let b = 0; b < B; b++) {
        if (done[b]) continue;
        const text = tails[b] + tokenText(Number(tokens[b]));
        if (strings.some((s) => text.includes(s))) hit[b] = 1;
        tails[b] = keep > 0 ? text.slice(-keep) : '';
      }
      return hit;
    },
  };
}

// (V) bool, true at stop ids: one index() per step tells which rows just stopped.
function stopTable(V: number, ids: readonly number[]): Tensor {
  const table = new Uint8Array(V);
  for (const id of ids) table[id] = 1;
  return tensor(table, { dtype: 'bool' });
}

function sample(
  model: CausalLM,
  promptIds: Tensor,
  promptMask: Tensor,
  opts: GenerateOptions,
  cache: KVCache,
  isStop: Tensor,
  padId: number,
  maxNewTokens: number,
  matcher: StopStringMatcher | null,
): GeneratedBatch {
  const [B, P] = promptIds.shape as [number, number];
  const device = promptIds.device;
  // Buffers written in place, one column per step.
  const mask = zeros([B, P + maxNewTokens], { dtype: 'bool', device }); // (B, P + N): attention mask over the cache
  mask.narrow(1, 0, P).copy_(promptMask);
  const responses = zeros([B, maxNewTokens], { dtype: 'int64', device }).fill_(padId);
  const logprobs = zeros([B, maxNewTokens], { device });
  const done = zeros([B, 1], { dtype: 'bool', device });
  // Position ids count real tokens only: left padding shifts nothing. Padding positions get 0 (masked).
  const promptPositions = promptMask.long().cumsum(1).sub(1).clamp(0); // (B, P)
  const nextPosition = promptMask.long().sum(1, true); // (B, 1)

  // Logits are made float32 (a no-op unless under bf16 autocast), so sampling and the returned log-probs
  // are computed in full precision whatever the forward ran in.
  let logits = tidy(() =>
    model
      .forward(promptIds, { attentionMask: promptMask, positionIds: promptPositions, cache, logits: 'last' })
      .logits.select(1, 0)
      .float(),
  ); // (B, V) at the last prompt column
  let steps = 0;
  while (steps < maxNewTokens) {
    const step = steps;
    const [next, allDone] = tidy(() => {
      const logp = logits.logSoftmax(-1); // (B, V) at temperature 1: what PPO compares against
      const token = pick(logits, opts).maskedFill(done, padId); // (B, 1)
      responses.narrow(1, step, 1).copy_(token);
      logprobs.narrow(1, step, 1).copy_(logp.gather(1, token).maskedFill(done, 0));
      mask.narrow(1, P + step, 1).copy_(done.logicalNot());
      if (matcher) {
        // Host-side: the rows that were live before this token and whose text now holds a stop string.
        const live = done.to({ device: 'cpu' }).toTypedArray() as Uint8Array;
        const hits = matcher.push(token.to({ device: 'cpu' }).toTypedArray() as BigInt64Array, live);
        done.copy_(done.logicalOr(tensor(hits, { dtype: 'bool', shape: [B, 1] }).to({ device })));
      }
      done.copy_(done.logicalOr(isStop.index([token])));
      return [token, done.all().item() !== 0] as const;
    });
    steps++;
    logits.dispose();
    if (allDone || steps === maxNewTokens) {
      next.dispose();
      break;
    }
    // Rows that stopped keep feeding padId with a false mask column; their outputs are discarded, and
    // their queries still see earlier real tokens, so nothing becomes NaN.
    logits = tidy(() => {
      const attentionMask = mask.narrow(1, 0, P + steps).contiguous(); // (B, P + steps)
      return model
        .forward(next, { attentionMask, positionIds: nextPosition, cache, logits: 'last' })
        .logits.select(1, 0)
        .float();
    });
    next.dispose();
    nextPosition.add_(1);
  }
  const responsesSoFar = responses.narrow(1, 0, steps);
  return {
    sequences: cat([promptIds, responsesSoFar], 1),
    attentionMask: mask.narrow(1, 0, P + steps).contiguous(),
    responses: responsesSoFar.contiguous(),
    responseMask: mask.narrow(1, P, steps).contiguous(),
    logprobs: logprobs.narrow(1, 0, steps).contiguous(),
    finished: done.squeeze(1),
  };
}
