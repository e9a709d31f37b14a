// Messages between the server and its model-serving worker threads (gen-worker.ts).
import type { HhkitMeta } from '../nn/checkpoint.ts';
import { ASSISTANT_TURN, HUMAN_TURN } from '../tokenizer/special.ts';

/**
 * How a response is sampled; stored with each candidate response. Replaying a seed is exact only when no
 * other model samples at the same time: torch's CPU generator is one per process, shared by the workers.
 */
export interface SamplingParams {
  maxNewTokens: number;
  temperature: number;
  topP: number;
  seed: number;
}

export type WorkerRequest = {
  type: 'generate';
  id: number;
  prompt: string;
  count: number;
  sampling: SamplingParams;
};

export type WorkerReply =
  | { type: 'ready'; info: { maxPositions: number; kind: string; meta: HhkitMeta | null } }
  | { type: 'result'; id: number; texts: string[] }
  | { type: 'error'; id: number; message: string };

/**
 * A response's text up to the next turn marker: a tokenizer without single-token markers can spell
 * "\n\nHuman:" out of pieces, and the model's next turn is not part of its response.
 *
 * @example cutAtTurnMarker(' Paris.\n\nHuman: and Spain?') // ' Paris.'
 */
export function cutAtTurnMarker(text: string): string {
  let end = text.length;
  for (const marker of [HUMAN_TURN, ASSISTANT_TURN]) {
    const at = text.indexOf(marker);
    if (at >= 0) end = Math.min(end, at);
  }
  return text.slice(0, end);
}
