/**
 * Test helper (not a test): a comparison file with one planted instance of every defect and every
 * note, in several line styles, with the exact counts a correct load must report. Shared by the
 * data and store tests.
 */
import type { DefectKind, NoteKind } from './report.ts';

const P = '\n\nHuman: What is the capital of France?\n\nAssistant:';

export interface PlantedFile {
  /** The file's bytes. */
  bytes: Buffer;
  /** The lines that are valid records, exactly as they appear in the file (without "\n"). */
  validLines: string[];
  defects: Partial<Record<DefectKind, number>>;
  notes: Partial<Record<NoteKind, number>>;
  blankLines: number;
  /** Non-blank lines. */
  records: number;
  /** The maxLineBytes to read it with, so the long line is over the limit. */
  maxLineBytes: number;
}

/** Builds the planted file. Every line is listed with what it tests. */
export function plantedDefectsFile(): PlantedFile {
  const valid = [
    // Plain HH release style (Python json.dumps: ", " / ": ", ASCII escapes).
    `{"chosen": ${JSON.stringify(`${P} Paris.`)}, "rejected": ${JSON.stringify(`${P} Lyon.`)}}`,
    // A second "\n\nAssistant:" inside the rejected response.
    `{"chosen": ${JSON.stringify(`${P} Paris.`)}, "rejected": ${JSON.stringify(`${P} Lyon.\n\nAssistant: No, Paris.`)}}`,
    // An empty final response (chosen), compact style.
    JSON.stringify({ chosen: P, rejected: `${P} I don't know.` }),
    // "Human:" not preceded by "\n\n" (start of text).
    JSON.stringify({ chosen: 'Human: hi\n\nAssistant: hello', rejected: 'Human: hi\n\nAssistant: go away' }),
    // No shared prompt.
    JSON.stringify({ chosen: '\n\nHuman: A?\n\nAssistant: a', rejected: '\n\nHuman: B?\n\nAssistant: b' }),
    // hhkit's rich form with every optional key, canonical order.
    JSON.stringify({
      chosen: `${P} Paris.`,
      rejected: `${P} Marseille.`,
      prompt: P,
      task: 'helpful',
      source: 'world:seed=1',
      worker: 'w07',
      strength: 0.75,
      round: 2,
    }),
    // Identical pair.
    JSON.stringify({ chosen: `${P} Paris.`, rejected: `${P} Paris.` }),
    // An unknown key (kept, key reported); also other key order: no style reproduces this line.
    `{"rejected": ${JSON.stringify(`${P} Nice.`)}, "chosen": ${JSON.stringify(`${P} Paris.`)}, "score": 1}`,
    // Optional keys as null are absent; Python-style float spelling.
    `{"chosen": ${JSON.stringify(`${P} Paris`)}, "rejected": ${JSON.stringify(`${P} Rome`)}, "worker": null, "strength": 1.0}`,
    // Unicode both raw (hh-utf8 style) and escaped, NUL, DEL, U+2028, emoji, CRLF inside text.
    `{"chosen": ${JSON.stringify(`${P} Paris 🇫🇷 café\u2028\u0000\u007f\r\nok`)}, "rejected": ${JSON.stringify(`${P} Pâris`)}}`,
    `{"chosen": "${'\\n\\nHuman: caf\\u00e9?\\n\\nAssistant: \\ud83d\\ude00'}", "rejected": "${'\\n\\nHuman: caf\\u00e9?\\n\\nAssistant: no'}"}`,
    // The model continued the dialogue in its response; red-team record.
    JSON.stringify({
      chosen: `${P} I can't help with that.`,
      rejected: `${P} Sure.\n\nHuman: thanks`,
      task: 'harmless',
      worker: 'w07',
      round: 0,
    }),
    // Leading text before the first marker.
    JSON.stringify({
      chosen: 'Intro\n\nHuman: q\n\nAssistant: a',
      rejected: 'Intro\n\nHuman: q\n\nAssistant: b',
    }),
    // A CRLF line ending (the "\r" is part of the line; JSON allows trailing whitespace).
    `${JSON.stringify({ chosen: `${P} Paris!`, rejected: `${P} Berlin!` })}\r`,
  ];
  const notes: Partial<Record<NoteKind, number>> = {
    'extra-assistant-marker': 1,
    'empty-response': 1,
    'unmarked-human': 1,
    'no-shared-prompt': 1,
    'identical-pair': 1,
    'unknown-key': 1,
    'human-turn-in-response': 1,
    'leading-text': 1,
  };
  const maxLineBytes = 4096;
  const bad: [DefectKind, string | Buffer][] = [
    ['invalid-json', '{"chosen": "\\n\\nHuman: hi'],
    ['invalid-json', 'this is not json'],
    ['not-an-object', '["a", "b"]'],
    ['not-an-object', 'null'],
    ['missing-key', JSON.stringify({ chosen: `${P} x` })],
    ['missing-key', JSON.stringify({ rejected: `${P} x` })],
    ['wrong-type', JSON.stringify({ chosen: 42, rejected: `${P} x` })],
    ['wrong-type', JSON.stringify({ chosen: `${P} x`, rejected: `${P} y`, round: '2' })],
    ['wrong-type', JSON.stringify({ chosen: `${P} x`, rejected: `${P} y`, worker: 7 })],
    ['empty-string', JSON.stringify({ chosen: '', rejected: `${P} x` })],
    ['empty-string', JSON.stringify({ chosen: `${P} x`, rejected: '  \n ' })],
    ['empty-string', JSON.stringify({ chosen: `${P} x`, rejected: `${P} y`, source: '' })],
    ['bad-value', JSON.stringify({ chosen: `${P} x`, rejected: `${P} y`, task: 'red-team' })],
    ['bad-value', JSON.stringify({ chosen: `${P} x`, rejected: `${P} y`, round: -1 })],
    ['bad-value', JSON.stringify({ chosen: `${P} x`, rejected: `${P} y`, round: 1.5 })],
    [
      'bad-value',
      `{"chosen": "${'\\n\\nHuman: q\\n\\nAssistant: \\ud800'}", "rejected": "\\n\\nHuman: q\\n\\nAssistant: b"}`,
    ],
    ['prompt-mismatch', JSON.stringify({ chosen: `${P} x`, rejected: `${P} y`, prompt: '\n\nHuman: other' })],
    [
      'invalid-utf8',
      Buffer.concat([
        Buffer.from('{"chosen": "\\n\\nHuman: q\\n\\nAssistant: '),
        Buffer.from([0xff, 0xfe]),
        Buffer.from('", "rejected": "x"}'),
      ]),
    ],
    ['line-too-long', JSON.stringify({ chosen: `${P} ${'a'.repeat(maxLineBytes)}`, rejected: `${P} b` })],
  ];
  const defects: Partial<Record<DefectKind, number>> = {};
  for (const [kind] of bad) defects[kind] = (defects[kind] ?? 0) + 1;
  // Interleave: valid, bad, valid, bad …, then two blank lines in the middle and no final newline.
  const lines: (string | Buffer)[] = [];
  const n = Math.max(valid.length, bad.length);
  for (let i = 0; i < n; i++) {
    const v = valid[i];
    const b = bad[i];
    if (v !== undefined) lines.push(v);
    if (b !== undefined) lines.push(b[1]);
    if (i === 3) lines.push('', '   ');
  }
  const parts: Buffer[] = [];
  lines.forEach((line, i) => {
    parts.push(typeof line === 'string' ? Buffer.from(line) : line);
    if (i < lines.length - 1) parts.push(Buffer.from('\n'));
  });
  return {
    bytes: Buffer.concat(parts),
    validLines: valid,
    defects,
    notes,
    blankLines: 2,
    records: valid.length + bad.length,
    maxLineBytes,
  };
}
