/**
 * HH-RLHF transcripts: `"\n\nHuman: …\n\nAssistant: …"` text, as in Bai et al. 2022's data release.
 *
 * The text is the source of truth and is never rewritten here: parsing is for reading turns and
 * for splitting a comparison into its shared prompt and two responses, and every split keeps
 * `chosen === prompt + chosenResponse` exactly, so nothing is lost whatever defects the text has.
 * How each defect of real files is handled is documented in src/data/README.md.
 */

/** The turn delimiters of the format. A turn starts at one of these (or at the very start of the text). */
export const HUMAN_MARKER = '\n\nHuman:';
export const ASSISTANT_MARKER = '\n\nAssistant:';

export type Role = 'human' | 'assistant';

/** One turn: who spoke and what, with the single space after the colon removed. */
export interface Turn {
  role: Role;
  text: string;
}

export interface ParsedTranscript {
  /** Text before the first turn marker ('' in a well-formed transcript). */
  preamble: string;
  turns: Turn[];
  /** Occurrences of "Human:" not preceded by "\n\n" (at the start of the text or inside a turn). */
  unmarkedHuman: number;
}

/**
 * Anomalies of a comparison that hhkit handles deliberately and keeps the record for (see README):
 * - `extra-assistant-marker`: a response contains "\n\nAssistant:", so the plain "last marker" rule
 *   would cut inside it; the shared prefix of chosen and rejected decides the prompt instead.
 * - `empty-response`: a final response is empty or whitespace (kept: an empty answer can be ranked).
 * - `unmarked-human`: "Human:" not preceded by "\n\n" (a turn only when it opens the text).
 * - `no-shared-prompt`: chosen and rejected share no prefix ending in "\n\nAssistant:"; prompt is ''.
 * - `human-turn-in-response`: text after the shared prompt contains "\n\nHuman:" (the model wrote the
 *   user's next turn, or the two transcripts diverge before their last turn).
 * - `identical-pair`: chosen === rejected (no preference signal; the PM loss is constant).
 * - `leading-text`: text before the first turn marker.
 * - `unknown-key` is added by the file reader, not here.
 */
export type TranscriptNote =
  | 'extra-assistant-marker'
  | 'empty-response'
  | 'unmarked-human'
  | 'no-shared-prompt'
  | 'human-turn-in-response'
  | 'identical-pair'
  | 'leading-text';

// A turn boundary: a marker after "\n\n", or a marker opening the text ("Human: hi" with no blank line).
const TURN_RE = /\n\n(Human|Assistant):|^(Human|Assistant):/g;

/**
 * Splits a transcript into turns. Only "\n\nHuman:" / "\n\nAssistant:" (or a marker at offset 0)
 * start a turn; a "Human:" after a single newline or mid-line stays inside the current turn's text,
 * because splitting there would move text between prompt and response (counted in `unmarkedHuman`).
 *
 * @example
 * parseTranscript('\n\nHuman: hi\n\nAssistant: hello').turns
 * // [{ role: 'human', text: 'hi' }, { role: 'assistant', text: 'hello' }]
 */
export function parseTranscript(text: string): ParsedTranscript {
  const turns: Turn[] = [];
  let preamble = '';
  let current: { role: Role; start: number } | undefined;
  let cursor = 0;
  TURN_RE.lastIndex = 0;
  for (let m = TURN_RE.exec(text); m !== null; m = TURN_RE.exec(text)) {
    if (current) turns.push(makeTurn(current.role, text.slice(current.start, m.index)));
    else preamble = text.slice(cursor, m.index);
    const name = m[1] ?? m[2];
    current = { role: name === 'Human' ? 'human' : 'assistant', start: m.index + m[0].length };
    cursor = current.start;
  }
  if (current) turns.push(makeTurn(current.role, text.slice(current.start)));
  else preamble = text;
  return { preamble, turns, unmarkedHuman: countUnmarkedHuman(text) };
}

function makeTurn(role: Role, body: string): Turn {
  return { role, text: body.startsWith(' ') ? body.slice(1) : body };
}

/** Counts "Human:" occurrences that are not the "\n\nHuman:" delimiter. */
export function countUnmarkedHuman(text: string): number {
  let count = 0;
  for (let i = text.indexOf('Human:'); i >= 0; i = text.indexOf('Human:', i + 6)) {
    if (i < 2 || text[i - 1] !== '\n' || text[i - 2] !== '\n') count++;
  }
  return count;
}

/**
 * Formats turns as transcript text; the inverse of {@link parseTranscript} for well-formed text
 * (no preamble, one space after each colon, an empty turn written as a bare marker).
 *
 * @example formatTranscript([{ role: 'human', text: 'hi' }, { role: 'assistant', text: '' }])
 * // '\n\nHuman: hi\n\nAssistant:'
 */
export function formatTranscript(turns: readonly Turn[]): string {
  let out = '';
  for (const turn of turns) {
    out += turn.role === 'human' ? HUMAN_MARKER : ASSISTANT_MARKER;
    if (turn.text !== '') out += ` ${turn.text}`;
  }
  return out;
}

/**
 * The prompt of a single transcript by the HH convention: everything up to and including the LAST
 * "\n\nAssistant:", or null when there is none.
 *
 * @example promptOf('\n\nHuman: hi\n\nAssistant: hello') // '\n\nHuman: hi\n\nAssistant:'
 */
export function promptOf(transcript: string): string | null {
  const at = transcript.lastIndexOf(ASSISTANT_MARKER);
  return at < 0 ? null : transcript.slice(0, at + ASSISTANT_MARKER.length);
}

/** The final response of a transcript (after its last "\n\nAssistant:"), or null when there is none. */
export function finalResponse(transcript: string): string | null {
  const prompt = promptOf(transcript);
  return prompt === null ? null : transcript.slice(prompt.length);
}

/** Length of the longest common prefix of two strings, in UTF-16 code units. */
export function commonPrefixLength(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  // Compare in blocks first: transcripts share long prompts, so this is the hot path.
  const block = 64;
  while (i + block <= n && a.slice(i, i + block) === b.slice(i, i + block)) i += block;
  while (i < n && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  return i;
}

/** A comparison split into its shared prompt and two responses; `chosen === prompt + chosenResponse`. */
export interface ComparisonSplit {
  prompt: string;
  chosenResponse: string;
  rejectedResponse: string;
  notes: TranscriptNote[];
}

/**
 * Splits chosen/rejected into prompt and responses. The prompt is the longest common prefix of the
 * two, cut just after its last "\n\nAssistant:". When both transcripts agree on their last marker
 * this is exactly the HH rule (everything up to the last "\n\nAssistant:"); when a response contains
 * a second marker the rule alone would put part of that response into the prompt, and the shared
 * prefix gives the right answer. An explicit `prompt` (hhkit's richer form) wins; it must be a
 * prefix of both, else this returns null.
 *
 * @example
 * splitComparison('\n\nHuman: 2+2?\n\nAssistant: 4', '\n\nHuman: 2+2?\n\nAssistant: 5').prompt
 * // '\n\nHuman: 2+2?\n\nAssistant:'
 */
export function splitComparison(chosen: string, rejected: string, prompt?: string): ComparisonSplit | null {
  let shared: string;
  if (prompt !== undefined) {
    if (!chosen.startsWith(prompt) || !rejected.startsWith(prompt)) return null;
    shared = prompt;
  } else {
    const common = chosen.slice(0, commonPrefixLength(chosen, rejected));
    const at = common.lastIndexOf(ASSISTANT_MARKER);
    shared = at < 0 ? '' : common.slice(0, at + ASSISTANT_MARKER.length);
  }
  const chosenResponse = chosen.slice(shared.length);
  const rejectedResponse = rejected.slice(shared.length);
  return {
    prompt: shared,
    chosenResponse,
    rejectedResponse,
    notes: notesOf(shared, chosenResponse, rejectedResponse),
  };
}

function notesOf(prompt: string, chosenResponse: string, rejectedResponse: string): TranscriptNote[] {
  const notes: TranscriptNote[] = [];
  const both = [chosenResponse, rejectedResponse];
  // With no shared prompt the "responses" are whole transcripts: their own markers are not news.
  if (prompt !== '' && both.some((r) => r.includes(ASSISTANT_MARKER))) notes.push('extra-assistant-marker');
  if (both.some((r) => r.trim() === '')) notes.push('empty-response');
  if (
    countUnmarkedHuman(prompt) + countUnmarkedHuman(chosenResponse) + countUnmarkedHuman(rejectedResponse) >
    0
  ) {
    notes.push('unmarked-human');
  }
  if (prompt === '') notes.push('no-shared-prompt');
  if (prompt !== '' && both.some((r) => r.includes(HUMAN_MARKER))) notes.push('human-turn-in-response');
  if (chosenResponse === rejectedResponse) notes.push('identical-pair');
  const starts = prompt === '' ? both : [prompt];
  if (starts.some((text) => !/^(\n\n)?(Human|Assistant):/.test(text))) notes.push('leading-text');
  return notes;
}
