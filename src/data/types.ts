/**
 * The record types shared by everything that reads or writes comparisons: the data loaders here,
 * the assistant world (src/world/), the SQLite store (src/store/) and the preference model.
 */

/** Which HH-RLHF dataset a comparison belongs to (Bai et al. 2022, §2). */
export type ComparisonTask = 'helpful' | 'harmless';

/**
 * One human comparison: two transcripts with the same context, the preferred one as `chosen`.
 *
 * The HH-RLHF release has only `chosen` and `rejected`; the optional keys are hhkit's richer form.
 * For `task: 'harmless'` (red-team data) `chosen` is the LESS harmful response, as in the release,
 * even though the red-team worker picked the more harmful one.
 *
 * @example
 * const r: ComparisonRecord = {
 *   chosen: '\n\nHuman: 2+2?\n\nAssistant: 4',
 *   rejected: '\n\nHuman: 2+2?\n\nAssistant: 5',
 *   task: 'helpful',
 * };
 */
export interface ComparisonRecord {
  chosen: string;
  rejected: string;
  /** The shared context, ending with "\n\nAssistant:"; when given it is authoritative for the split. */
  prompt?: string;
  task?: 'helpful' | 'harmless';
  /** Where the record came from (a file, "world:seed=1", "interface"). */
  source?: string;
  /** Who labelled it (a worker name). */
  worker?: string;
  /** How strongly chosen was preferred, on the labeller's scale (the paper's interface used 1–8 style strengths). */
  strength?: number;
  /** The online-training round it was collected in (§4.5). */
  round?: number;
}

/** The keys of a ComparisonRecord in the order hhkit writes them (part of the file format). */
export const COMPARISON_KEYS = [
  'chosen',
  'rejected',
  'prompt',
  'task',
  'source',
  'worker',
  'strength',
  'round',
] as const satisfies readonly (keyof ComparisonRecord)[];
