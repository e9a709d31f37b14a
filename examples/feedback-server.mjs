// The feedback interface against your own model: `hhkit serve` deploys a checkpoint folder, a crowdworker
// writes a Human turn, gets two sampled Assistant responses and picks one, and the comparison lands in the
// SQLite store at once. This script does a worker's part through the HTTP API (what the web page at / does)
// and reads the comparison back from the store. The model is a fresh, untrained tiny GPT (its responses are
// noise) to stay self-contained: pass your own folder (an hhkit checkpoint or a Hugging Face folder of a supported family) as --init.
//   node examples/feedback-server.mjs
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { GPT, saveCheckpoint, Store, storedComparisons, Tokenizer } from 'hhkit';

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

// 2. Start `hhkit serve` on a free port (--port 0) with a new admin; it prints the admin's token and its URL.
const bin = join(dirname(createRequire(import.meta.url).resolve('hhkit/package.json')), 'bin', 'hhkit.js');
const db = join(dir, 'feedback.db');
const serveArgs = ['--db', db, '--init', modelDir, '--port', '0', '--new-admin', 'owner'];
const server = spawn(process.execPath, [bin, 'serve', ...serveArgs, '--max-new-tokens', '8'], {
  stdio: ['ignore', 'pipe', 'inherit'],
});
const exited = new Promise((resolve) => server.once('exit', (code, signal) => resolve(code ?? signal)));
let adminToken = '';
let url = '';
for await (const line of createInterface({ input: server.stdout })) {
  adminToken = /^admin 'owner' token .*: (\S+)$/.exec(line)?.[1] ?? adminToken;
  url = /^hhkit serve: (http:\/\/\S+?)\/ /.exec(line)?.[1] ?? url;
  if (url) break;
}
if (!url || !adminToken) throw new Error(`hhkit serve did not start (exit: ${await exited})`);

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
  // 4. Shut down: serve stops on SIGTERM (or Ctrl-C), closing the store.
  server.kill('SIGTERM');
  await exited;
}

// 5. Read it back from the SQLite store: the comparison as an HH-RLHF record (chosen / rejected transcripts).
const store = Store.open(db, { mustExist: true });
const stored = [...storedComparisons(store)];
store.close();
console.log(
  JSON.stringify({ responses, comparisonId, stored: stored.map(({ id, record }) => ({ id, ...record })) }),
);
