// One model-serving worker thread: loads one checkpoint and its tokenizer once, then answers sampling
// jobs one at a time. The native addon's tensor table is per thread, so each worker holds its own copy
// of the weights, and a long generation never blocks the server's event loop.
import { parentPort, workerData } from 'node:worker_threads';
import { generate } from '../nn/generate.ts';
import { loadCheckpoint } from '../nn/checkpoint.ts';
import { Tokenizer } from '../tokenizer/tokenizer.ts';
import { cutAtTurnMarker, type WorkerReply, type WorkerRequest } from './protocol.ts';

const port = parentPort;
if (!port) throw new Error('gen-worker.ts runs only as a worker thread');
const { dir, allowNonFinite, chatTemplate } = workerData as {
  dir: string;
  allowNonFinite?: boolean;
  chatTemplate?: boolean;
};

// A checkpoint with NaN/±Inf weights fails here (the pool's start() reports it) unless allowed.
const loaded = loadCheckpoint(dir, { allowNonFinite: allowNonFinite ?? false });
const model = loaded.model.eval();
if (!loaded.tokenizerPath) throw new Error(`${dir}: no tokenizer.json in the checkpoint folder`);
const loadedTokenizer = Tokenizer.fromFile(loaded.tokenizerPath);
const tokenizer =
  chatTemplate && loadedTokenizer.format.name === 'hh' ? loadedTokenizer.withChatTemplate() : loadedTokenizer;
const stops = tokenizer.generationStops();

async function run(req: Extract<WorkerRequest, { type: 'generate' }>): Promise<WorkerReply> {
  const { maxNewTokens, temperature, topP, seed } = req.sampling;
  let prompt = await tokenizer.encode(req.prompt, { allowSpecial: false });
  // Keep the END of a long transcript: the model must see the last Human turn and the Assistant marker.
  const room = model.lmConfig.maxPositions - maxNewTokens;
  if (room < 1)
    throw new Error(
      `maxNewTokens ${maxNewTokens} leaves no room for a prompt in the model's context length (maxPositions ${model.lmConfig.maxPositions})`,
    );
  if (prompt.length > room) prompt = prompt.slice(prompt.length - room);
  const prompts = Array.from({ length: req.count }, () => prompt);
  const out = generate(model, prompts, {
    maxNewTokens,
    temperature,
    topP,
    seed,
    padId: tokenizer.padId,
    ...stops,
  });
  // The stop token (or stop string) belongs to the next turn or ends the text, not to the response.
  const texts = (await tokenizer.decodeReplies(out.tokens)).map(cutAtTurnMarker);
  return { type: 'result', id: req.id, texts };
}

port.on('message', (req: WorkerRequest) => {
  if (req.type !== 'generate') return;
  run(req).then(
    (reply) => port.postMessage(reply),
    (err: unknown) =>
      port.postMessage({ type: 'error', id: req.id, message: (err as Error).message } satisfies WorkerReply),
  );
});
const ready: WorkerReply = {
  type: 'ready',
  info: {
    maxPositions: model.lmConfig.maxPositions,
    kind: loaded.meta?.kind ?? 'lm',
    meta: loaded.meta ?? null,
  },
};
port.postMessage(ready);
