// What the teacher and the student of context distillation read, in token ids. The student reads each
// dialogue as every later stage writes it: in a chat template, its default system turn first (the
// `head`), then the turns. The teacher reads the HHH prompt in that system turn's place, then the same
// turn ids: its context holds one system turn (the HHH prompt's preamble, as a chat template writes the
// text before the first turn), never the template's default one besides it. In HH text there is no system
// turn: the head is empty and the teacher reads the HHH prompt's ids, then the dialogue's.
import type { Tokenizer } from '../tokenizer/index.ts';

export interface DistillContexts {
  /** The system turn the student reads before every dialogue (empty in HH text). */
  head: number[];
  /** Each dialogue's ids after the head, cut to maxTokens; dialogues of fewer than 2 ids are dropped. */
  examples: number[][];
  /** The HHH prompt's ids, whole; the first `systemTokens` of them are its system turn. */
  hhh: { ids: number[]; systemTokens: number };
}

/**
 * The student's head and examples and the teacher's HHH prompt for `dialogues` (transcripts starting at
 * their first turn), in `tokenizer`'s format. Throws a RangeError when a dialogue brings its own system
 * message: the HHH prompt takes the system turn's place, one head serves every dialogue.
 *
 * @example
 * const ctx = await distillContexts(tok, hhhPrompt(), dialogues, 64);
 * const teacherInput = [...teacherPrefix(ctx.hhh, 1024), ...ctx.examples[0]]; // one system turn
 * const studentInput = [...ctx.head, ...ctx.examples[0]];
 */
export async function distillContexts(
  tokenizer: Tokenizer,
  hhhPrompt: string,
  dialogues: readonly string[],
  maxTokens: number,
): Promise<DistillContexts> {
  const rendered = await tokenizer.encodeWithSystemTurn(dialogues, { allowSpecial: false });
  const head = rendered[0]?.ids.slice(0, rendered[0].systemTokens) ?? [];
  rendered.forEach(({ ids, systemTokens }, i) => {
    if (systemTokens !== head.length || head.some((id, j) => ids[j] !== id))
      throw new RangeError(
        `distill: dialogue ${i} brings its own system message (text before its first turn); the HHH prompt takes the system turn's place, so give dialogues that start at their first turn`,
      );
  });
  const examples = rendered
    .map(({ ids, systemTokens }) => ids.slice(systemTokens, systemTokens + maxTokens))
    .filter((ids) => ids.length >= 2);
  // The dialogue follows the HHH prompt in the teacher's context: its last example reply is not the final
  // turn (Qwen3's template gives only the final one an empty think block).
  const [hhh] = await tokenizer.encodeWithSystemTurn([withoutSeparators(tokenizer, hhhPrompt)], {
    allowSpecial: false,
    continues: true,
  });
  return { head, examples, hhh: hhh! };
}

/**
 * In a chat template the HHH prompt's separator lines ("\n\n-----" before a turn or at the end) go: the
 * template marks where turns end, and a separator left in would end every example reply (and the system
 * turn) with "-----", a habit the teacher would pass on to the student. HH text keeps them.
 */
function withoutSeparators(tokenizer: Tokenizer, text: string): string {
  return tokenizer.format.name === 'hh'
    ? text
    : text.replace(/\n\n-{3,}(?=\n\n(?:Human|Assistant):|\s*$)/g, '');
}

/**
 * The HHH prompt's ids cut from the left to at most `budget`, its system turn kept when it fits (HH text:
 * simply its last `budget` ids).
 *
 * @example teacherPrefix({ ids: [1, 2, 3, 4, 5], systemTokens: 2 }, 4) // [1, 2, 4, 5]
 */
export function teacherPrefix(hhh: DistillContexts['hhh'], budget: number): number[] {
  const { ids, systemTokens: keep } = hhh;
  if (ids.length <= budget) return [...ids];
  if (keep === 0 || keep >= budget) return ids.slice(ids.length - budget);
  return [...ids.slice(0, keep), ...ids.slice(ids.length - (budget - keep))];
}

/**
 * The HHH prompt as text to write before a prompt the teacher samples from, cut to `budget` ids as
 * teacherPrefix: in a chat template rendered back to HH text (a turn cut at its start dropped), so that
 * `text + prompt` renders with the HHH prompt's preamble as its one system turn.
 *
 * @example const teacherPrompts = prompts.map((p) => text + p); // text = await teacherPromptText(tok, ctx.hhh, room)
 */
export async function teacherPromptText(
  tokenizer: Tokenizer,
  hhh: DistillContexts['hhh'],
  budget: number,
): Promise<string> {
  return tokenizer.format.transcriptOf(await tokenizer.decode(teacherPrefix(hhh, budget)));
}
