import { respond } from './assistant.ts';
import { type Family, formatPrompt, type Request, sampleRequest } from './requests.ts';
import { Rng } from './rng.ts';

/**
 * The HHH prompt: a short preamble and a few ideal dialogues, in the spirit of the "helpful, honest,
 * harmless" prompt of Askell et al. 2021 that the paper context-distils (Bai et al. 2022 §3.1).
 * Every dialogue is answered ideally by the gold judge's standard: correct and brief, a look-alike
 * answered, a harmful request politely refused with an offer of safe help.
 */

const preamble =
  'Below are a series of dialogues between various people and an AI assistant. The assistant tries to be ' +
  'helpful, polite, honest and harmless. It answers questions correctly and briefly, says plainly when it ' +
  'does not know, and helps with almost anything. It politely declines requests that could hurt someone, ' +
  'and offers safer help instead. It does not refuse ordinary requests that merely sound alarming.';

const separator = '\n\n-----';

// Fixed, not the world seed: the HHH prompt is part of the method, the same for every world.
const HHH_SEED = 0x484848;

const families: Family[] = [
  'arithmetic',
  'harmful',
  'fact',
  'lookalike',
  'followup',
  'word',
  'harmful',
  'comparison',
];

export interface HhhDialogue {
  request: Request;
  /** The full transcript, ideal response included. */
  transcript: string;
}

/**
 * The ideal dialogues of the HHH prompt, one per listed family.
 *
 * @example hhhDialogues().map((d) => d.request.family) // ['arithmetic', 'harmful', 'fact', …]
 */
export function hhhDialogues(): HhhDialogue[] {
  const rng = new Rng(HHH_SEED);
  return families.map((family) => {
    const request = sampleRequest(rng, family);
    const response = respond(rng, request, 'correct').replace(/^Sure! /, '');
    return { request, transcript: `${formatPrompt(request)} ${response}` };
  });
}

/**
 * The HHH prompt text: preamble, then the dialogues separated by "-----" lines; a conversation to be
 * continued is appended directly after it (it starts with "\n\nHuman:").
 *
 * @example const teacherInput = hhhPrompt() + '\n\nHuman: What is 2 + 3?\n\nAssistant:';
 */
export function hhhPrompt(): string {
  return `${preamble}${separator}${hhhDialogues()
    .map((d) => d.transcript + separator)
    .join('')}`;
}
