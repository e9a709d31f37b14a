/**
 * Loaders for the public JSONL formats of the NLP benchmarks the paper evaluates by log-likelihood
 * (Bai et al. 2022, §3.2 / Figure 3: ARC, HellaSwag, OpenBookQA, MMLU, Lambada, and exact-match QA).
 * The user brings the files; nothing is downloaded. Every item becomes one of three shapes:
 * multiple choice (a context and its choices), last word (a context and the word that ends it) or QA
 * (a question and its accepted answers). A line that cannot be used is reported as `file:line: why`
 * and skipped; it never stops the load.
 *
 * Accepted variants (one JSON object per line; .gz files are read too):
 * - ARC (AI2 release): {"question": {"stem", "choices": [{"text", "label"}]}, "answerKey": "B"};
 *   Hugging Face `ai2_arc`: {"question": "…", "choices": {"text": […], "label": […]}, "answerKey"}.
 *   Labels may be letters or digits ("1"–"4" in some ARC questions).
 * - OpenBookQA: the AI2 release uses ARC's nested form above; Hugging Face `openbookqa` uses
 *   {"question_stem", "choices": {"text", "label"}, "answerKey"}. Both are read.
 * - HellaSwag (rowanz release and Hugging Face): {"ctx" or "ctx_a"+"ctx_b", "endings": [4], "label"}
 *   with label an integer or a digit string; "activity_label" is prefixed as in lm-eval-harness.
 *   Test-split lines (no label) are reported as unusable.
 * - MMLU (Hugging Face `cais/mmlu` JSONL export): {"question", "choices": [4], "answer": 0–3 or "A"–"D"},
 *   optional "subject".
 * - Lambada: {"text"}: the context is everything before the last space, the target the last word.
 * - QA: {"question", "answer": "…"} or {"question", "answers": ["…", …]} (any answer counts).
 */
import { isUtf8 } from 'node:buffer';
import { readFileSync } from 'node:fs';
import { constants, gunzipSync } from 'node:zlib';
import { DataFileError } from '../data/errors.ts';
import { pathError } from '../data/lines.ts';
import { hasGzipMagic } from '../util/gzip.ts';
import { holdsLoneSurrogate, mayHoldLoneSurrogate } from '../util/unicode.ts';

export type EvalFormat = 'arc' | 'openbookqa' | 'hellaswag' | 'mmlu' | 'lambada' | 'qa';
export const EVAL_FORMATS: readonly EvalFormat[] = [
  'arc',
  'openbookqa',
  'hellaswag',
  'mmlu',
  'lambada',
  'qa',
];

/** Score `context + choices[i]` for each i; the right one is `gold`. Choices start with a space. */
export interface MultipleChoiceItem {
  kind: 'choice';
  context: string;
  choices: string[];
  gold: number;
  where: string;
}

/** Does the model's greedy continuation of `context` equal `target` (" word")? */
export interface LastWordItem {
  kind: 'last-word';
  context: string;
  target: string;
  where: string;
}

/** Greedy answer to `prompt`, compared with `answers` after normalisation. */
export interface QaItem {
  kind: 'qa';
  prompt: string;
  answers: string[];
  where: string;
}

export type EvalItem = MultipleChoiceItem | LastWordItem | QaItem;

export interface Skipped {
  where: string;
  reason: string;
  /** Where the file stopped mid-way (a truncated or corrupt gzip): the lines after it were lost. */
  lost?: boolean;
}

export interface EvalReadOptions {
  /** Throw a DataFileError (file:line: why) at the first unusable line or where the file stops. */
  strict?: boolean;
}

export interface LoadedEval {
  format: EvalFormat;
  items: EvalItem[];
  skipped: Skipped[];
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const isString = (v: unknown): v is string => typeof v === 'string';

class LineError extends Error {}
const fail = (reason: string): never => {
  throw new LineError(reason);
};

/** Guesses the format from one parsed line's keys (the keys differ between the benchmarks). */
export function detectFormat(row: Record<string, unknown>): EvalFormat | null {
  if ('endings' in row) return 'hellaswag';
  if ('question_stem' in row) return 'openbookqa';
  if ('answerKey' in row) return 'arc';
  if ('choices' in row && 'answer' in row) return 'mmlu';
  if ('question' in row && ('answer' in row || 'answers' in row)) return 'qa';
  if ('text' in row && Object.keys(row).length <= 2) return 'lambada';
  return null;
}

/** {"text": […], "label": […]} or [{"text", "label"}] → parallel lists. */
function labelledChoices(raw: unknown): { texts: string[]; labels: string[] } {
  if (Array.isArray(raw)) {
    const texts: string[] = [];
    const labels: string[] = [];
    raw.forEach((c, i) => {
      if (!isObject(c) || !isString(c['text']) || !isString(c['label']))
        fail(`choices[${i}] needs string "text" and "label"`);
      texts.push((c as Json)['text'] as string);
      labels.push((c as Json)['label'] as string);
    });
    return { texts, labels };
  }
  if (isObject(raw) && Array.isArray(raw['text']) && Array.isArray(raw['label'])) {
    const texts = raw['text'];
    const labels = raw['label'];
    if (texts.length !== labels.length || !texts.every(isString) || !labels.every(isString))
      fail('choices.text and choices.label must be string lists of the same length');
    return { texts: texts as string[], labels: labels as string[] };
  }
  return fail('"choices" must be a list of {text, label} or {text: […], label: […]}');
}

function arcLike(row: Json, where: string): MultipleChoiceItem {
  const q = row['question'];
  const stem = isObject(q) ? q['stem'] : isString(q) ? q : row['question_stem'];
  if (!isString(stem)) fail('no question text ("question.stem", "question" or "question_stem")');
  const { texts, labels } = labelledChoices(isObject(q) && 'choices' in q ? q['choices'] : row['choices']);
  const key = row['answerKey'];
  if (!isString(key)) fail('"answerKey" must be a string label');
  const gold = labels.indexOf(key as string);
  if (gold < 0) fail(`answerKey ${JSON.stringify(key)} is not one of the labels ${labels.join(', ')}`);
  return {
    kind: 'choice',
    context: `Question: ${stem}\nAnswer:`,
    choices: texts.map((t) => ` ${t}`),
    gold,
    where,
  };
}

function intLabel(v: unknown, n: number, what: string): number {
  const i = typeof v === 'number' ? v : isString(v) && /^\d+$/.test(v) ? Number(v) : Number.NaN;
  if (!(Number.isInteger(i) && i >= 0 && i < n))
    fail(`${what} must be an index 0…${n - 1}, got ${JSON.stringify(v)}`);
  return i;
}

function hellaswag(row: Json, where: string): MultipleChoiceItem {
  const ctx = isString(row['ctx'])
    ? row['ctx']
    : isString(row['ctx_a']) && isString(row['ctx_b'])
      ? `${row['ctx_a']} ${row['ctx_b']}`.trim()
      : fail('no context ("ctx" or "ctx_a" + "ctx_b")');
  const endings = row['endings'];
  if (!Array.isArray(endings) || endings.length < 2 || !endings.every(isString))
    fail('"endings" must be a list of ≥ 2 strings');
  if (row['label'] === undefined || row['label'] === '') fail('no "label" (a test-split line?)');
  const gold = intLabel(row['label'], (endings as string[]).length, '"label"');
  const activity = isString(row['activity_label']) ? `${row['activity_label']}: ` : '';
  return {
    kind: 'choice',
    context: `${activity}${ctx}`,
    choices: (endings as string[]).map((e) => ` ${e}`),
    gold,
    where,
  };
}

function mmlu(row: Json, where: string): MultipleChoiceItem {
  if (!isString(row['question'])) fail('"question" must be a string');
  const choices = row['choices'];
  if (!Array.isArray(choices) || choices.length < 2 || !choices.every(isString))
    fail('"choices" must be a list of ≥ 2 strings');
  const n = (choices as string[]).length;
  const answer = row['answer'];
  const gold =
    isString(answer) && /^[A-Z]$/.test(answer)
      ? intLabel(answer.charCodeAt(0) - 65, n, '"answer"')
      : intLabel(answer, n, '"answer"');
  return {
    kind: 'choice',
    context: `Question: ${row['question']}\nAnswer:`,
    choices: (choices as string[]).map((c) => ` ${c}`),
    gold,
    where,
  };
}

function lambada(row: Json, where: string): LastWordItem {
  const text = row['text'];
  if (!isString(text)) fail('"text" must be a string');
  const trimmed = (text as string).trimEnd();
  const cut = trimmed.lastIndexOf(' ');
  if (cut <= 0 || cut === trimmed.length - 1) fail('"text" needs a context and a last word');
  return { kind: 'last-word', context: trimmed.slice(0, cut), target: trimmed.slice(cut), where };
}

function qa(row: Json, where: string): QaItem {
  if (!isString(row['question'])) fail('"question" must be a string');
  const raw = 'answers' in row ? row['answers'] : [row['answer']];
  if (!Array.isArray(raw) || raw.length === 0 || !raw.every(isString) || raw.some((a) => !a.trim()))
    fail('"answer" must be a non-empty string (or "answers" a list of them)');
  return { kind: 'qa', prompt: `Question: ${row['question']}\nAnswer:`, answers: raw as string[], where };
}

const PARSERS: Record<EvalFormat, (row: Json, where: string) => EvalItem> = {
  arc: arcLike,
  openbookqa: arcLike,
  hellaswag,
  mmlu,
  lambada,
  qa,
};

/**
 * Lines of a (possibly gzipped) text file, read whole (benchmark files are small). A gzip that stops
 * mid-way keeps the whole lines before the break; `stopped` then says why, and the partial line is dropped.
 * Lines whose bytes are not valid UTF-8 are decoded with U+FFFD and listed (1-based) in `notUtf8`, so a
 * caller can refuse them rather than use altered text.
 */
export function readTextLines(path: string): { lines: string[]; stopped: string | null; notUtf8: number[] } {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw pathError(path, err) ?? err;
  }
  let raw = bytes;
  let stopped: string | null = null;
  if (hasGzipMagic(bytes)) {
    try {
      raw = gunzipSync(bytes);
    } catch (err) {
      stopped = (err as Error).message;
      try {
        raw = gunzipSync(bytes, { finishFlush: constants.Z_SYNC_FLUSH });
      } catch {
        raw = Buffer.alloc(0); // corrupt from the start: nothing usable
      }
    }
  }
  const lines: string[] = [];
  const notUtf8: number[] = [];
  for (let start = 0; ; ) {
    const nl = raw.indexOf(0x0a, start);
    const part = raw.subarray(start, nl < 0 ? raw.length : nl);
    if (!isUtf8(part)) notUtf8.push(lines.length + 1);
    lines.push(part.toString('utf8'));
    if (nl < 0) break;
    start = nl + 1;
  }
  if (stopped !== null || lines.at(-1) === '') {
    lines.pop();
    if (notUtf8.at(-1) === lines.length + 1) notUtf8.pop();
  }
  return { lines, stopped, notUtf8 };
}

/** Records a skipped line, or throws it as a DataFileError when strict. */
function skipper(path: string, skipped: Skipped[], opts: EvalReadOptions) {
  return (line: number, reason: string, lost = false): void => {
    if (opts.strict) throw new DataFileError(path, line, reason);
    skipped.push({ where: `${path}:${line}`, reason, ...(lost ? { lost } : {}) });
  };
}

/**
 * The non-blank lines of a (possibly gzipped) JSONL file, parsed, each with its file:line; lines that are
 * not UTF-8, not JSON or hold an unpaired surrogate go to `skip` with the reason, in line order with the caller's own skips, and a file
 * that stops mid-way ends with one `lost` skip where it stopped.
 */
function* jsonRows(
  path: string,
  skip: ReturnType<typeof skipper>,
): Generator<{ row: unknown; where: string }> {
  const { lines, stopped, notUtf8 } = readTextLines(path);
  const invalid = new Set(notUtf8);
  for (let i = 0; i < lines.length; i++) {
    const where = `${path}:${i + 1}`;
    if (invalid.has(i + 1)) {
      skip(i + 1, 'not valid UTF-8');
      continue;
    }
    if (!lines[i]!.trim()) continue;
    let row: unknown;
    try {
      row = JSON.parse(lines[i]!);
    } catch (err) {
      skip(i + 1, `not JSON (${(err as Error).message})`);
      continue;
    }
    // An escaped unpaired surrogate cannot be tokenized (or written back) as it is: refuse the line.
    if (mayHoldLoneSurrogate(lines[i]!) && holdsLoneSurrogate(row)) {
      skip(i + 1, 'holds an unpaired UTF-16 surrogate (a \\uD800–\\uDFFF escape), which UTF-8 cannot encode');
      continue;
    }
    yield { row, where };
  }
  if (stopped !== null)
    skip(lines.length + 1, `file stops here (${stopped}); the rest of the file is lost`, true);
}

const lineOf = (where: string): number => Number(where.slice(where.lastIndexOf(':') + 1));

/**
 * Loads a benchmark file. `format` defaults to detection from the first parseable line.
 *
 * @example
 * const { items, skipped } = loadEvalFile('arc-easy-test.jsonl');
 * for (const s of skipped) console.error(`${s.where}: ${s.reason}`);
 */
export function loadEvalFile(path: string, format?: EvalFormat, opts: EvalReadOptions = {}): LoadedEval {
  const items: EvalItem[] = [];
  const skipped: Skipped[] = [];
  const skip = skipper(path, skipped, opts);
  let chosen = format ?? null;
  for (const { row, where } of jsonRows(path, skip)) {
    if (!isObject(row)) {
      skip(lineOf(where), 'not a JSON object');
      continue;
    }
    chosen ??= detectFormat(row);
    if (!chosen) {
      skip(lineOf(where), `cannot tell the format from keys ${Object.keys(row).join(', ')}`);
      continue;
    }
    try {
      items.push(PARSERS[chosen](row, where));
    } catch (err) {
      if (!(err instanceof LineError)) throw err;
      skip(lineOf(where), err.message);
    }
  }
  if (!chosen) throw new RangeError(`${path}: no usable line; cannot tell which benchmark format it is`);
  return { format: chosen, items, skipped };
}

/**
 * Prompts from a JSONL file: {"prompt": "…"} lines (the world's ood-*.jsonl, rl-prompts.jsonl), or
 * comparison lines {"chosen": transcript} whose prompt is everything up to the last "\n\nAssistant:"
 * (helpful-test.jsonl). Duplicates are dropped (comparisons share prompts).
 *
 * @example const { prompts } = loadPrompts('world/ood-harmful.jsonl');
 */
export function loadPrompts(
  path: string,
  opts: EvalReadOptions = {},
): { prompts: string[]; skipped: Skipped[] } {
  const prompts: string[] = [];
  const seen = new Set<string>();
  const skipped: Skipped[] = [];
  const skip = skipper(path, skipped, opts);
  for (const { row, where } of jsonRows(path, skip)) {
    let prompt: string | null = null;
    if (isObject(row) && isString(row['prompt'])) prompt = row['prompt'];
    else if (isObject(row) && isString(row['chosen'])) {
      const at = row['chosen'].lastIndexOf('\n\nAssistant:');
      if (at >= 0) prompt = row['chosen'].slice(0, at + '\n\nAssistant:'.length);
    }
    if (prompt === null || !prompt.trim()) {
      skip(lineOf(where), 'expected {"prompt": string} or {"chosen": transcript with an Assistant turn}');
      continue;
    }
    if (!seen.has(prompt)) {
      seen.add(prompt);
      prompts.push(prompt);
    }
  }
  return { prompts, skipped };
}
