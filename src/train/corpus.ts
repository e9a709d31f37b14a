// Reading an LM corpus as documents: JSON lines (optionally gzipped) with a "text" transcript per line
// (or "chosen", so a comparison file can be used for SFT on its preferred side), or a plain .txt file
// whose documents are separated by "<|endoftext|>". Unusable lines are reported with file:line and why,
// and skipped; one bad line never stops a load (unless strict). A file that stops mid-way (truncated or
// corrupt gzip) keeps the documents before it and is reported where it stopped, never lost quietly.
import { isUtf8 } from 'node:buffer';
import { readFile } from 'node:fs/promises';
import { DataFileError } from '../data/errors.ts';
import { pathError, readRawLines } from '../data/lines.ts';
import { type Location, lostTailWarning } from '../data/report.ts';
import { END_OF_TEXT } from '../tokenizer/index.ts';
import { holdsLoneSurrogate, mayHoldLoneSurrogate } from '../util/unicode.ts';

export interface CorpusDocument {
  /** 1-based line of a JSONL file; for .txt the document's index + 1. */
  line: number;
  text: string;
}

/** What a load skipped: `${file}:${line}: ${why}` for the first few, and the total. */
export interface CorpusReport {
  documents: number;
  skipped: number;
  blankLines: number;
  examples: string[];
  /** Where the file stopped mid-way (counted in `skipped`); the rest of it was lost. */
  stoppedAt?: Location;
}

export interface CorpusReadOptions {
  /** Throw a {@link DataFileError} (file:line: why) on the first unusable line or unreadable tail. */
  strict?: boolean;
}

const MAX_EXAMPLES = 20;
const utf8 = new TextDecoder('utf-8', { fatal: true });

function documentOf(raw: Buffer): { text: string } | { why: string } {
  let line: string;
  try {
    line = utf8.decode(raw);
  } catch {
    return { why: 'invalid UTF-8' };
  }
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (error) {
    return { why: `invalid JSON (${(error as Error).message})` };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { why: 'expected a JSON object with a string "text"' };
  }
  const record = value as Record<string, unknown>;
  const text = record['text'] ?? record['chosen'];
  if (typeof text !== 'string') return { why: 'expected a string "text" (or "chosen") field' };
  if (text.trim() === '') return { why: 'empty "text"' };
  if (mayHoldLoneSurrogate(line) && holdsLoneSurrogate(text))
    return {
      why: 'the text holds an unpaired UTF-16 surrogate (a \\uD800–\\uDFFF escape), which UTF-8 cannot encode',
    };
  return { text };
}

/**
 * Streams a corpus as batches of documents, filling `report` as it goes; with `strict` the first bad
 * line or a file that stops mid-way throws a {@link DataFileError} instead.
 *
 * @example
 * const report = newCorpusReport();
 * for await (const docs of readCorpusDocuments('world/pretrain.jsonl', report)) console.log(docs.length);
 * report.examples; // ['world/pretrain.jsonl:17: invalid JSON (…)', …]
 */
export async function* readCorpusDocuments(
  path: string,
  report: CorpusReport,
  opts: CorpusReadOptions = {},
): AsyncGenerator<CorpusDocument[]> {
  const skip = (line: number, why: string) => {
    if (opts.strict) throw new DataFileError(path, line, why);
    report.skipped++;
    if (report.examples.length < MAX_EXAMPLES) report.examples.push(`${path}:${line}: ${why}`);
  };
  if (path.endsWith('.txt')) {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      throw pathError(path, err) ?? err;
    }
    const docs = text
      .split(END_OF_TEXT)
      .map((text, i) => ({ line: i + 1, text }))
      .filter((d) => d.text.trim() !== '');
    report.documents += docs.length;
    yield docs;
    return;
  }
  const lines = readRawLines(path, {
    onUnreadable: (line, why) => {
      skip(line, why);
      report.stoppedAt = { file: path, line, reason: why };
    },
  });
  for await (const batch of lines) {
    const docs: CorpusDocument[] = [];
    for (const raw of batch) {
      // Blank as the comparison loader says it: UTF-8 that trims to nothing (0xA0 alone is not UTF-8).
      const bytes = raw.bytes;
      if (bytes !== null && bytes.length < 64 && isUtf8(bytes) && bytes.toString('utf8').trim() === '') {
        report.blankLines++;
        continue;
      }
      const parsed =
        raw.bytes === null ? { why: `line of ${raw.length} bytes is too long` } : documentOf(raw.bytes);
      if ('why' in parsed) {
        skip(raw.line, parsed.why);
        continue;
      }
      docs.push({ line: raw.line, text: parsed.text });
    }
    report.documents += docs.length;
    if (docs.length) yield docs;
  }
}

/**
 * The lines a command prints to stderr after a load: the loud one for a lost tail, then the skipped lines.
 *
 * @example for (const w of corpusWarnings(report)) console.error(w);
 */
export function corpusWarnings(report: CorpusReport): string[] {
  const stop = report.stoppedAt;
  const out = stop ? [lostTailWarning(`${stop.file}:${stop.line}`, stop.reason)] : [];
  if (report.skipped > 0)
    out.push(`data: skipped ${report.skipped} lines:`, ...report.examples.map((x) => `  ${x}`));
  return out;
}

/**
 * An empty CorpusReport, for readCorpusDocuments to fill while it reads.
 *
 * @example const report = newCorpusReport(); for await (const docs of readCorpusDocuments(path, report)) …
 */
export const newCorpusReport = (): CorpusReport => ({
  documents: 0,
  skipped: 0,
  blankLines: 0,
  examples: [],
});
