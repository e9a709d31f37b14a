// The feedback interface against your own model: the app `hhkit serve` runs, started in this process
// through the library (`startServer` from 'hhkit/server'). A crowdworker writes a Human turn, gets two
// sampled Assistant responses and picks one, and the comparison lands in the SQLite store at once. This
// script does a worker's part through the HTTP API (what the web page at / does) and reads the comparison
// back from the store. The model is a fresh, untrained tiny GPT (its responses are noise) to stay
// self-contained: deploy your own folder (an hhkit checkpoint or a Hugging Face folder of a supported
// family) instead. The command line does the same: `npx hhkit serve --db feedback.db --init DIR`.
//   node examples/feedback-server.mjs
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GPT, newToken, saveCheckpoint, Store, storedComparisons, Tokenizer } from 'hhkit';
import { startServer } from 'hhkit/server';

const dir = mkdtempSync(join(tmpdir(), 'hhkit-example-serve-'));

// 1. A model folder to deploy: tokenizer.json, config.json, model.safetensors, hhkit.json.
const tokenizer = Tokenizer.train(
  Array.from({ length: 50 }, (_, i) => `\n\nHuman: What is ${i} plus 2?\n\nAssistant: It is ${i + 2}.`),
  { vocabSize: 300 },
);
tokenizer.save(join(dir, 'tokenizer.json'));
const model = new GPT(
  { nLayer: 1, nHead: 2, nEmbd: 32, nPositions: 64, vocabSize: tokenizer.vocabSize, dropout: 0 },
  { seed: 1 },
);
const modelDir = join(dir, 'model');
saveCheckpoint(modelDir, {
  model,
  meta: { kind: 'lm', lineage: [] },
  tokenizerPath: join(dir, 'tokenizer.json'),
});

// 2. The store with an admin, and the server on a free port (port 0): the model loads in a worker thread.
const store = Store.open(join(dir, 'feedback.db'));
const adminToken = newToken();
store.addWorker({ name: 'owner', role: 'admin', token: adminToken });
const server = await startServer({ store, models: [modelDir], port: 0, sampling: { maxNewTokens: 8 } });
const { url } = server;

/** One JSON call to the server's API; a non-2xx reply is an error with the server's message. */
async function api(path, token, body) {
  const res = await fetch(url + path, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const reply = await res.json();
  if (!res.ok) throw new Error(`${path}: ${res.status} ${reply.message}`);
  return reply;
}

let responses;
let comparisonId;
try {
  // 3. The admin invites a crowdworker; the worker writes a turn and prefers response A (strength 1–4).
  const worker = await api('/api/admin/invites', adminToken, { name: 'ana' });
  const turn = await api('/api/turns', worker.token, { task: 'helpful', text: 'What is 3 plus 2?' });
  responses = turn.responses; // [A, B], sampled by the deployed model
  ({ comparisonId } = await api('/api/comparisons', worker.token, {
    conversationId: turn.conversationId,
    choice: 'a',
    strength: 3,
  }));
} finally {
  // 4. Shut down: the server stops listening and its model workers end; the store stays open.
  await server.close();
}

// 5. Read it back from the SQLite store: the comparison as an HH-RLHF record (chosen / rejected transcripts).
const stored = [...storedComparisons(store)];
store.close();
console.log(
  JSON.stringify({ responses, comparisonId, stored: stored.map(({ id, record }) => ({ id, ...record })) }),
);
