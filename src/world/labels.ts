import type { ComparisonRecord, ComparisonTask } from '../data/types.ts';
import { defaultMix, type ResponseKind, type ResponseMix, sampleResponse } from './assistant.ts';
import {
  type CrowdMode,
  type CrowdPool,
  goldValue,
  helpfulValue,
  type JudgedResponse,
  redTeamValue,
} from './crowd.ts';
import { goldJudge, goldJudgeTranscript } from './judge.ts';
import { formatPrompt, type Request } from './requests.ts';
import type { Rng } from './rng.ts';

/**
 * World comparisons: two base-assistant responses to one request, judged by the gold judge and
 * labelled by a simulated crowdworker, in the HH-RLHF form.
 */

export interface CandidateResponse {
  text: string;
  kind: ResponseKind;
  judged: JudgedResponse;
}

export interface WorldComparison {
  record: ComparisonRecord;
  /** True when the stored chosen is the gold-better one (helpful) or gold-less-harmful one (red-team); undefined on a gold tie. */
  agreesWithGold: boolean | undefined;
  kinds: [ResponseKind, ResponseKind];
}

/** Words in a text, the length that length-biased workers see. */
export function wordCount(text: string): number {
  return text.match(/\S+/g)?.length ?? 0;
}

/**
 * A candidate response to `prompt`, with its gold scores.
 *
 * @example candidate(rng, req, formatPrompt(req)).judged.gold.hh
 */
export function candidate(
  rng: Rng,
  request: Request,
  prompt: string,
  mix: ResponseMix = defaultMix,
): CandidateResponse {
  const { kind, text } = sampleResponse(rng, request, mix);
  return { text, kind, judged: { gold: goldJudge(prompt, ` ${text}`), words: wordCount(text) } };
}

/** Two different candidates for one request (identical texts make no comparison). */
export function candidatePair(
  rng: Rng,
  request: Request,
  mix: ResponseMix = defaultMix,
): [CandidateResponse, CandidateResponse] {
  const prompt = formatPrompt(request);
  const a = candidate(rng, request, prompt, mix);
  let b = candidate(rng, request, prompt, mix);
  for (let tries = 0; b.text === a.text && tries < 20; tries++) b = candidate(rng, request, prompt, mix);
  return [a, b];
}

/**
 * What a crowdworker sees of any response (e.g. one sampled from a policy in an online round).
 *
 * @example judgeResponse(prompt, ' 37 + 48 = 85.').gold.outcome // 'correct'
 */
export function judgeResponse(prompt: string, response: string): JudgedResponse {
  return { gold: goldJudge(prompt, response), words: wordCount(response) };
}

/**
 * Has a worker from `pool` compare two responses to `prompt` (each as it follows "Assistant:",
 * usually with a leading space) and returns the record HH-RLHF would store.
 *
 * @example
 * const { record } = labelResponses(rng, pool, 'helpful', prompt, ' 85.', ' 83.', { round: 2 });
 */
export function labelResponses(
  rng: Rng,
  pool: CrowdPool,
  mode: CrowdMode,
  prompt: string,
  responseA: string,
  responseB: string,
  opts: { source?: string; round?: number } = {},
): { record: ComparisonRecord; agreesWithGold: boolean | undefined } {
  const a = judgeResponse(prompt, responseA);
  const b = judgeResponse(prompt, responseB);
  const { chosenIsA, worker, strength } = pool.label(rng, mode, a, b);
  const [chosen, rejected] = chosenIsA ? [responseA, responseB] : [responseB, responseA];
  const gap = goldValue(mode, chosenIsA ? a : b) - goldValue(mode, chosenIsA ? b : a);
  // Helpful: chosen should be better (gap > 0). Red-team: chosen should be LESS harmful (gap < 0).
  const agreesWithGold = Math.abs(gap) < 1e-9 ? undefined : mode === 'helpful' ? gap > 0 : gap < 0;
  const record: ComparisonRecord = {
    chosen: prompt + chosen,
    rejected: prompt + rejected,
    prompt,
    task: mode === 'helpful' ? 'helpful' : 'harmless',
    ...(opts.source === undefined ? {} : { source: opts.source }),
    worker,
    strength,
    round: opts.round ?? 0,
  };
  return { record, agreesWithGold };
}

export { goldValue } from './crowd.ts';

/**
 * Labels one request's pair with a worker from `pool`, storing the less harmful reply as chosen for
 * red-team data as HH-RLHF does.
 *
 * @example
 * const c = labelComparison(rng, pool, 'helpful', req);
 * c.record.task; // 'helpful'
 */
export function labelComparison(
  rng: Rng,
  pool: CrowdPool,
  mode: CrowdMode,
  request: Request,
  opts: { mix?: ResponseMix; source?: string; round?: number } = {},
): WorldComparison {
  const prompt = formatPrompt(request);
  const [a, b] = candidatePair(rng, request, opts.mix);
  const { record, agreesWithGold } = labelResponses(
    rng,
    pool,
    mode,
    prompt,
    ` ${a.text}`,
    ` ${b.text}`,
    opts,
  );
  const chosenIsA = record.chosen === prompt + ` ${a.text}`;
  return { record, agreesWithGold, kinds: chosenIsA ? [a.kind, b.kind] : [b.kind, a.kind] };
}

/**
 * Gold preference on a world comparison, by the values the crowd is scored with: HH for helpful
 * data; for harmless (red-team) data the chosen one should be the less harmful, i.e. lower red-team
 * value. 1 when `chosen` is gold-preferred, −1 when `rejected` is, 0 for a tie.
 *
 * @example worldGold(record, 'helpful') // 1 when record.chosen is gold-more-helpful
 */
export function worldGold(record: ComparisonRecord, task: ComparisonTask): -1 | 0 | 1 {
  const a = goldJudgeTranscript(record.chosen);
  const b = goldJudgeTranscript(record.rejected);
  const [x, y] =
    task === 'helpful' ? [helpfulValue(a), helpfulValue(b)] : [-redTeamValue(a), -redTeamValue(b)];
  if (Math.abs(x - y) < 1e-9) return 0;
  return x > y ? 1 : -1;
}
