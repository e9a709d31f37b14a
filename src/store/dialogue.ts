// The feedback interface's writes to the store, shared by `hhkit serve` and the simulated crowd of
// `hhkit online` so both record comparisons the same way: one conversations row per step of a dialogue
// (its prompt is the whole transcript so far, ending in "\n\nAssistant:"), its two candidate responses, and the worker's
// comparison. A dialogue continues from the picked (or edited) response of its last comparison, so the
// server keeps no dialogue state in memory and a restart loses nothing.
import { ASSISTANT_TURN, HUMAN_TURN } from '../tokenizer/special.ts';
import type { Store, StoreTask } from './store.ts';
import { unstorableText } from './text.ts';

/** A request the worker can fix (HTTP 400/404/409). */
export class DialogueError extends Error {
  override name = 'DialogueError';
  constructor(
    readonly status: 400 | 404 | 409,
    message: string,
  ) {
    super(message);
  }
}

/** Transcripts longer than this end the dialogue (the models see only the tail anyway). */
export const MAX_PROMPT_CHARS = 20_000;

const MARKER = /\n\nHuman:|\n\nAssistant:/;

/**
 * Worker text as the transcript will hold it, or a 400 {@link DialogueError} when it would break the
 * transcript or could not be stored exactly:
 * - line breaks are normalised: CRLF and lone CR become "\n" (a Windows or old-Mac line break is
 *   still a line break, and "\r\n\r\nAssistant:" must not slip a turn marker past the check below,
 *   nor become one when some tool later converts CRLF);
 * - a turn marker ("\n\nHuman:" / "\n\nAssistant:", or the text opening with "Human:"/"Assistant:")
 *   is refused: it would split the turn in two;
 * - an unpaired UTF-16 surrogate is refused: the store would keep it as invalid UTF-8 (see text.ts);
 * - the result is trimmed and must not be empty.
 *
 * @example checkTurnText('  two\r\nlines ', 'your message') // 'two\nlines'
 */
export function checkTurnText(text: string, what: string): string {
  const unstorable = unstorableText(text, what);
  if (unstorable) throw new DialogueError(400, unstorable);
  const trimmed = text.replace(/\r\n?/g, '\n').trim();
  if (trimmed === '') throw new DialogueError(400, `${what} is empty`);
  if (MARKER.test(`\n\n${trimmed}`))
    throw new DialogueError(400, `${what} may not contain "Human:" or "Assistant:" turn markers`);
  return trimmed;
}

interface PickedRow {
  prompt: string;
  task: StoreTask | null;
  worker_id: number | null;
  edit: string | null;
  picked: string;
}

/**
 * The prompt for the next step: a new dialogue, or the one ending in comparison `after` (which must be
 * the worker's own) continued with the picked or edited response and the new Human turn.
 *
 * @example nextPrompt(store, 3, { task: 'helpful', text: 'hi' }) // { prompt: '\n\nHuman: hi\n\nAssistant:', task: 'helpful' }
 */
export function nextPrompt(
  store: Store,
  workerId: number,
  req: { task: StoreTask; text: string; after?: number },
): { prompt: string; task: StoreTask } {
  const human = `${HUMAN_TURN} ${checkTurnText(req.text, 'your message')}${ASSISTANT_TURN}`;
  if (req.after === undefined) return { prompt: human, task: req.task };
  const row = store.db
    .prepare(
      `SELECT v.prompt, v.task, c.worker_id, c.edit, r.text AS picked
         FROM comparisons c JOIN conversations v ON v.id = c.conversation_id
         JOIN responses r ON r.id = CASE c.choice WHEN 'a' THEN c.response_a ELSE c.response_b END
        WHERE c.id = ?`,
    )
    .get(req.after) as PickedRow | undefined;
  // Someone else's comparison reads as missing: ids say nothing about other workers' dialogues.
  if (!row || row.worker_id !== workerId) throw new DialogueError(404, `no comparison ${req.after} of yours`);
  const response = row.edit === null ? row.picked : ` ${row.edit}`;
  const prompt = row.prompt + response + human;
  if (prompt.length > MAX_PROMPT_CHARS)
    throw new DialogueError(400, 'this conversation is long enough; start a new one');
  return { prompt, task: row.task ?? req.task };
}

export interface Candidate {
  text: string;
  modelId: number;
  sampling: unknown;
}

/** Stores a step (conversation row + both candidates) in one transaction; returns the ids. */
export function saveStep(
  store: Store,
  step: {
    workerId: number;
    task: StoreTask;
    round: number;
    prompt: string;
    candidates: readonly [Candidate, Candidate];
  },
): { conversationId: number; responseIds: [number, number] } {
  return store.transaction(() => {
    const conversationId = store.addConversation({
      prompt: step.prompt,
      task: step.task,
      workerId: step.workerId,
      round: step.round,
    });
    const [a, b] = step.candidates.map((c) =>
      store.addResponse(conversationId, c.text, { modelId: c.modelId, sampling: c.sampling }),
    ) as [number, number];
    return { conversationId, responseIds: [a, b] };
  });
}

/**
 * Stores the worker's pick among a step's two candidates: task and round come from the step, so the
 * client cannot move a comparison into another round. Each step takes exactly one comparison.
 *
 * @example saveChoice(store, 3, { conversationId: 9, choice: 'b', strength: 2 }) // comparison id
 */
export function saveChoice(
  store: Store,
  workerId: number,
  req: { conversationId: number; choice: 'a' | 'b'; strength: number; edit?: string },
  // Where the pick came from: the web page, or hhkit online's simulated crowd ('simulated').
  opts: { source?: string } = {},
): number {
  const edit =
    req.edit === undefined || req.edit.trim() === '' ? undefined : checkTurnText(req.edit, 'the edit');
  return store.transaction(() => {
    const conv = store.db
      .prepare('SELECT worker_id, task, round_id FROM conversations WHERE id = ?')
      .get(req.conversationId) as
      | { worker_id: number | null; task: StoreTask | null; round_id: number | null }
      | undefined;
    if (!conv || conv.worker_id !== workerId)
      throw new DialogueError(404, `no conversation ${req.conversationId} of yours`);
    const taken = store.db
      .prepare('SELECT id FROM comparisons WHERE conversation_id = ?')
      .get(req.conversationId);
    if (taken) throw new DialogueError(409, 'this step already has your choice');
    const responses = store.db
      .prepare('SELECT id FROM responses WHERE conversation_id = ? ORDER BY id')
      .all(req.conversationId) as { id: number }[];
    if (responses.length !== 2) throw new DialogueError(409, 'this step has no pair of responses');
    return store.addComparison({
      conversationId: req.conversationId,
      responseA: responses[0]!.id,
      responseB: responses[1]!.id,
      choice: req.choice,
      task: conv.task ?? undefined,
      strength: req.strength,
      edit,
      round: conv.round_id ?? undefined,
      workerId,
      source: opts.source ?? 'interface',
    });
  });
}
