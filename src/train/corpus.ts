// Reading an LM corpus as documents: JSON lines (optionally gzipped) with a "text" transcript per line
// (or "chosen", so a comparison file can be used for SFT on its preferred side), or a plain .txt file
// whose documents are separated by "<|endoftext|>". Unusable lines are reported with file:line and why,
// and skipped; one bad line never stops a load.
import { readFile } from 'node:fs/promises';
import { readRawLines } from '../data/lines.ts';
import { END_OF_TEXT } from '../tokenizer/index.ts';

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
  return { text };
}

/**
 * Streams a corpus as batches of documents, filling `report` as it goes.
 *
 * @example
 * const report = newCorpusReport();
 * for await (const docs of readCorpusDocuments('world/pretrain.jsonl', report)) console.log(docs.length);
 * report.examples; // ['world/pretrain.jsonl:17: invalid JSON (…)', …]
 */
export async function* readCorpusDocuments(
  path: string,
  report: CorpusReport,
): AsyncGenerator<CorpusDocument[]> {
  if (path.endsWith('.txt')) {
    const docs = (await readFile(path, 'utf8'))
      .split(END_OF_TEXT)
      .map((text, i) => ({ line: i + 1, text }))
      .filter((d) => d.text.trim() !== '');
    report.documents += docs.length;
    yield docs;
    return;
  }
  for await (const lines of readRawLines(path)) {
    const docs: CorpusDocument[] = [];
    for (const raw of lines) {
      if (raw.bytes !== null && raw.bytes.length < 64 && raw.bytes.toString('latin1').trim() === '') {
        report.blankLines++;
        continue;
      }
      const parsed =
        raw.bytes === null ? { why: `line of ${raw.length} bytes is too long` } : documentOf(raw.bytes);
      if ('why' in parsed) {
        report.skipped++;
        if (report.examples.length < MAX_EXAMPLES) report.examples.push(`${path}:${raw.line}: ${parsed.why}`);
        continue;
      }
      docs.push({ line: raw.line, text: parsed.text });
    }
    report.documents += docs.length;
    if (docs.length) yield docs;
  }
}

export const newCorpusReport = (): CorpusReport => ({
  documents: 0,
  skipped: 0,
  blankLines: 0,
  examples: [],
});
