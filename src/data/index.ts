/** Transcripts, comparison files, load reports and splits (see README.md in this folder). */
export * from './comparisons.ts';
export { detectLineStyle, LINE_STYLES } from './format.ts';
export { type ParsedLine, parseComparisonLine } from './record.ts';
export {
  DEFECT_KINDS,
  type DefectKind,
  Histogram,
  type Location,
  NOTE_KINDS,
  type NoteKind,
  type Tally,
} from './report.ts';
export { assignSplit, hashUnit, type SplitName, splitKey } from './split.ts';
export * from './transcript.ts';
export { COMPARISON_KEYS } from './types.ts';
