// Collecting a round's comparisons from the world's simulated crowd (§2.3: the paper's crowdworkers compared
// responses of the deployed snapshots). For each comparison: a prompt from the world's RL prompts, one
// response from each of two different deployed snapshots (src/nn/generate.ts, sampled as the server does),
// a simulated worker's pick (world labelResponses: helpful workers pick the better, red-teamers the more
// harmful), and the step and pick written through the interface's own store path (store/dialogue.ts), so a
// simulated comparison is stored exactly like one from a person.
import { join } from 'node:path';
import { noGrad } from '../engine/index.ts';
import { loadCheckpoint } from '../nn/checkpoint.ts';
import { generate } from '../nn/generate.ts';
import type { CausalLM } from '../nn/causal-lm.ts';
import { saveChoice, saveStep } from '../store/dialogue.ts';
import type { Store, StoreTask } from '../store/store.ts';
import { ASSISTANT_TURN, HUMAN_TURN } from '../tokenizer/special.ts';
import { Tokenizer } from '../tokenizer/tokenizer.ts';
import { Progress } from '../util/progress.ts';
import { type CrowdPool, labelResponses, Rng } from '../world/index.ts';
import type { Snapshot } from './state.ts';

/** The `source` of comparisons made by the simulated crowd (the web page's are 'interface'). */
export const SIMULATED_SOURCE = 'simulated';

/** A prompt of the world's RL prompt set; harmful-family prompts go to red-teamers. */
export interface WorldPrompt {
  prompt: string;
  family: string;
}

export interface SamplingSettings {
  maxNewTokens: number;
  temperature: number;
  topP: number;
}

export interface CollectOptions {
  store: Store;
  round: number;
  deployed: readonly Snapshot[];
  /** The round is done when the store holds this many comparisons in it. */
  target: number;
  prompts: readonly WorldPrompt[];
  crowd: CrowdPool;
  sampling: SamplingSettings;
  /** Prompts per generation batch. */
  batch: number;
  seed: number;
  progress?: boolean;
}

/** Comparisons the store holds in round `round` (from any source). */
export function roundComparisons(store: Store, round: number): number {
  return (
    store.db.prepare('SELECT count(*) AS n FROM comparisons WHERE round_id = ?').get(round) as { n: number }
  ).n;
}

/** Text up to the next turn marker (the model's invented next turn is not part of its response). */
function cutAtTurn(text: string): string {
  let end = text.length;
  for (const marker of [HUMAN_TURN, ASSISTANT_TURN]) {
    const at = text.indexOf(marker);
    if (at >= 0) end = Math.min(end, at);
  }
  return text.slice(0, end);
}

interface Loaded {
  snapshot: Snapshot;
  model: CausalLM;
  tokenizer: Tokenizer;
}

/** Samples one response per prompt from a snapshot, as the server's model workers do. */
async function sample(
  m: Loaded,
  prompts: readonly string[],
  s: SamplingSettings,
  seed: number,
): Promise<string[]> {
  const room = m.model.lmConfig.maxPositions - s.maxNewTokens;
  if (room < 1)
    throw new RangeError(`${m.snapshot.name}: maxNewTokens ${s.maxNewTokens} leaves no room for a prompt`);
  // Keep the END of a long transcript: the model must see the last Human turn and the Assistant marker.
  const ids = (await m.tokenizer.encodeBatch(prompts, { allowSpecial: false })).map((p) =>
    p.slice(Math.max(0, p.length - room)),
  );
  const out = noGrad(() =>
    generate(m.model, ids, {
      maxNewTokens: s.maxNewTokens,
      temperature: s.temperature,
      topP: s.topP,
      seed,
      padId: m.tokenizer.padId,
      ...m.tokenizer.generationStops(),
    }),
  );
  return (await m.tokenizer.decodeReplies(out.tokens)).map(cutAtTurn);
}

/**
 * Collects comparisons until round `round` holds `target` of them; resumable (it counts what the store
 * already has, and batches are seeded by (seed, round, batch), so a resumed round draws the same pairs).
 * Returns how many it added.
 *
 * @example
 * const added = await collectSimulated({ store, round: 2, deployed, target: 200, prompts, crowd,
 *   sampling: { maxNewTokens: 24, temperature: 1, topP: 0.95 }, batch: 16, seed: 1 });
 */
export async function collectSimulated(o: CollectOptions): Promise<number> {
  const have = roundComparisons(o.store, o.round);
  if (have >= o.target) return 0;
  if (o.deployed.length < 2)
    throw new RangeError('collect: deploy at least two snapshots (Elo needs pairs of models)');
  if (o.prompts.length === 0) throw new RangeError('collect: no prompts');
  const loaded: Loaded[] = o.deployed.map((snapshot) => {
    const { model } = loadCheckpoint(snapshot.path);
    return {
      snapshot,
      model: model.eval(),
      tokenizer: Tokenizer.fromFile(join(snapshot.path, 'tokenizer.json')),
    };
  });
  const pairs: [number, number][] = [];
  for (let i = 0; i < loaded.length; i++) for (let j = i + 1; j < loaded.length; j++) pairs.push([i, j]);
  const bar = o.progress
    ? new Progress({ total: o.target, label: `collect r${o.round}`, unit: 'cmp' })
    : null;
  bar?.resumeAt(have);
  let added = 0;
  try {
    for (let b = Math.floor(have / o.batch); b * o.batch < o.target; b++) {
      const rng = new Rng(o.seed).fork(`collect/${o.round}/${b}`);
      const count = Math.min(o.batch, o.target - b * o.batch);
      // Always a full batch of prompts, so what a batch samples does not depend on the target (a round
      // cut short and resumed with a larger target draws exactly what an uninterrupted one does).
      const items = Array.from({ length: o.batch }, () => rng.pick(o.prompts));
      const seed = rng.nextU32() % 2 ** 31;
      // Every deployed snapshot answers the batch's prompts; each comparison then takes the next pair in
      // turn, so all pairs get comparisons evenly (the Elo graph stays connected) even in a short round.
      const texts: string[][] = [];
      for (const [m, model] of loaded.entries())
        texts.push(
          await sample(
            model,
            items.map((p) => p.prompt),
            o.sampling,
            seed + m,
          ),
        );
      for (let k = 0; k < count; k++) {
        const index = b * o.batch + k;
        // One generator per comparison: a resumed batch labels its remaining items as the first run would.
        const itemRng = rng.fork(String(k));
        // Which snapshot is shown first is random per comparison (workers have position biases).
        const [i, j] =
          itemRng.next() < 0.5 ? pairs[index % pairs.length]! : [...pairs[index % pairs.length]!].reverse();
        if (index < have) continue; // stored before a kill
        const { prompt, family } = items[k]!;
        const task: StoreTask = family === 'harmful' ? 'red-team' : 'helpful';
        const first = { text: texts[i!]![k]!, model: loaded[i!]!, index: i! };
        const second = { text: texts[j!]![k]!, model: loaded[j!]!, index: j! };
        const { record } = labelResponses(itemRng, o.crowd, task, prompt, first.text, second.text, {
          round: o.round,
        });
        // labelResponses stores red-team data HH-style (less harmful = chosen); the store wants the pick.
        const chosenIsFirst = record.chosen === prompt + first.text;
        const picksFirst = task === 'helpful' ? chosenIsFirst : !chosenIsFirst;
        const sampling = (m: number) => ({ ...o.sampling, seed: seed + m, row: k });
        o.store.transaction(() => {
          const workerId = o.store.workerId(record.worker ?? 'simulated');
          const { conversationId } = saveStep(o.store, {
            workerId,
            task,
            round: o.round,
            prompt,
            candidates: [
              { text: first.text, modelId: first.model.snapshot.id, sampling: sampling(first.index) },
              { text: second.text, modelId: second.model.snapshot.id, sampling: sampling(second.index) },
            ],
          });
          saveChoice(
            o.store,
            workerId,
            { conversationId, choice: picksFirst ? 'a' : 'b', strength: record.strength ?? 1 },
            { source: SIMULATED_SOURCE },
          );
        });
        added++;
        bar?.tick(1, { pair: `${first.model.snapshot.name}|${second.model.snapshot.name}` });
      }
    }
  } finally {
    bar?.done();
    for (const m of loaded) for (const p of m.model.parameters()) p.dispose();
  }
  return added;
}
