// The feedback interface's HTTP side (Bai et al. 2022, §2.2 and Fig. 6): a crowdworker signs in, writes a
// Human turn, gets two Assistant responses sampled server-side, picks one on a strength scale, optionally
// edits it, and the dialogue goes on from the pick. Every comparison is written to the store at once.
import { randomInt } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Store, StoreTask } from '../store/store.ts';
import { registerAdminRoutes } from './admin.ts';
import { MAX_TOKEN_LENGTH, findWorker, requireWorker } from './auth.ts';
import { type Candidate, DialogueError, nextPrompt, saveChoice, saveStep } from './dialogue.ts';
import type { DeployedModel, Sampler } from './models.ts';
import type { SamplingParams } from './protocol.ts';
import { BusyError, TimeoutError } from './queue.ts';
import { type RateLimitOptions, rateLimitHooks } from './ratelimit.ts';

export interface ServerOptions {
  store: Store;
  sampler: Sampler;
  /** The online round new comparisons belong to (§4.5); admins can move to the next one. Default 1. */
  round?: number;
  sampling?: Partial<Omit<SamplingParams, 'seed'>>;
  /**
   * Token-guess and write rate limits (defaults: 10 sign-ins or wrong tokens/min per IP, 60 writes/min
   * per worker, burst 20).
   */
  rateLimit?: RateLimitOptions;
  /** Log requests (fastify's pino logger). Default false. */
  logger?: boolean;
}

/** Mutable server state shared with the admin routes. */
export interface ServerState {
  round: number;
}

/** The longest Human turn and edit the interface accepts, in characters. */
export const MAX_TURN_CHARS = 2000;
const PUBLIC_DIR = fileURLToPath(new URL('./public/', import.meta.url));

// Content-Security-Policy: only our own scripts and styles, no inline code, no framing; with every
// dynamic string rendered through textContent in the page, injected HTML has nowhere to run.
const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

const turnSchema = {
  body: {
    type: 'object',
    required: ['text'],
    additionalProperties: false,
    properties: {
      task: { type: 'string', enum: ['helpful', 'red-team'] },
      text: { type: 'string', minLength: 1, maxLength: MAX_TURN_CHARS },
      after: { type: 'integer', minimum: 1 },
    },
  },
} as const;

const choiceSchema = {
  body: {
    type: 'object',
    required: ['conversationId', 'choice', 'strength'],
    additionalProperties: false,
    properties: {
      conversationId: { type: 'integer', minimum: 1 },
      choice: { type: 'string', enum: ['a', 'b'] },
      // 1 = slightly better … 4 = much better: the paper's 8-point A…B scale, folded by side.
      strength: { type: 'integer', minimum: 1, maximum: 4 },
      edit: { type: 'string', maxLength: MAX_TURN_CHARS },
    },
  },
} as const;

/** Two models for a step: two different snapshots when several are deployed (Elo needs pairs), else one twice. */
function pickPair(deployed: readonly DeployedModel[]): [DeployedModel, DeployedModel] {
  if (deployed.length === 0) throw new BusyError('no model is deployed');
  const first = deployed[randomInt(deployed.length)]!;
  if (deployed.length === 1) return [first, first];
  const rest = deployed.filter((m) => m !== first);
  return [first, rest[randomInt(rest.length)]!];
}

/** Samples the two candidates: one batch of 2 from one model, or one from each of two models. */
async function sampleCandidates(
  sampler: Sampler,
  prompt: string,
  base: Omit<SamplingParams, 'seed'>,
): Promise<[Candidate, Candidate]> {
  const [ma, mb] = pickPair(sampler.deployed);
  const seed = randomInt(2 ** 31);
  const sampling = { ...base, seed };
  // Admit both jobs or neither, so a refused turn does not leave half its work queued.
  if (ma === mb ? sampler.free(ma.name) < 1 : sampler.free(ma.name) < 1 || sampler.free(mb.name) < 1) {
    throw new BusyError('the models are busy');
  }
  if (ma === mb) {
    const [a, b] = await sampler.sample(ma.name, prompt, 2, sampling);
    return [
      { text: a ?? '', modelId: ma.id, sampling: { ...sampling, row: 0 } },
      { text: b ?? '', modelId: mb.id, sampling: { ...sampling, row: 1 } },
    ];
  }
  const [[a], [b]] = await Promise.all([
    sampler.sample(ma.name, prompt, 1, sampling),
    sampler.sample(mb.name, prompt, 1, sampling),
  ]);
  return [
    { text: a ?? '', modelId: ma.id, sampling: { ...sampling, row: 0 } },
    { text: b ?? '', modelId: mb.id, sampling: { ...sampling, row: 0 } },
  ];
}

/**
 * Builds the interface: the static page under /, the worker API under /api, admin under /api/admin.
 *
 * @example
 * const app = await buildServer({ store, sampler: await ModelPool.start(store, ['runs/ppo']) });
 * await app.listen({ host: '127.0.0.1', port: 8080 });
 */
export async function buildServer(opts: ServerOptions): Promise<FastifyInstance> {
  const { store, sampler } = opts;
  const state: ServerState = { round: store.ensureRound(opts.round ?? 1) };
  const sampling = { maxNewTokens: 64, temperature: 1, topP: 0.95, ...opts.sampling };
  // 64 KiB bodies are plenty for a 2000-character turn; larger ones are refused with 413 before parsing.
  const app = Fastify({
    logger: opts.logger ?? false,
    bodyLimit: 64 * 1024,
    // Unknown keys are an error, not silently dropped (fastify's default strips them), and a value of
    // the wrong JSON type is an error, not converted ({"text": 123} is not the text "123"; fastify's
    // default coerces). Query strings are text: their schemas say so (admin.ts) and convert themselves.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false } },
  });

  app.addHook('onSend', async (req, reply) => {
    reply.headers(SECURITY_HEADERS);
    if (req.url.startsWith('/api/')) reply.header('cache-control', 'no-store');
  });
  app.setErrorHandler(async (err: Error & { statusCode?: number; validation?: unknown }, _req, reply) => {
    if (err instanceof DialogueError)
      return reply.code(err.status).send({ error: 'bad-request', message: err.message });
    if (err instanceof BusyError) {
      return reply
        .code(503)
        .header('retry-after', '5')
        .send({ error: 'busy', message: 'All model workers are busy; try again in a few seconds.' });
    }
    if (err instanceof TimeoutError) {
      return reply
        .code(504)
        .send({ error: 'timeout', message: 'The model took too long to answer; try again.' });
    }
    const status = err.statusCode ?? 500;
    if (status >= 500) reply.log.error(err);
    return reply.code(status).send({
      error: status === 413 ? 'too-large' : status < 500 ? 'bad-request' : 'internal',
      message: status < 500 ? err.message : 'internal error',
    });
  });
  app.setNotFoundHandler(async (_req, reply) =>
    reply.code(404).send({ error: 'not-found', message: 'no such page' }),
  );

  await app.register(fastifyStatic, { root: PUBLIC_DIR, prefix: '/' });
  app.get('/admin', async (_req, reply) => reply.sendFile('admin.html'));

  const limits = rateLimitHooks(opts.rateLimit);
  // Every route behind sign-in counts wrong tokens in the sign-in bucket of the client's IP, so a
  // token cannot be guessed faster on /api/me or an admin route than on /api/signin.
  const signedIn = requireWorker(store, { guesses: limits.guesses });
  const admin = requireWorker(store, { role: 'admin', guesses: limits.guesses });
  app.post(
    '/api/signin',
    {
      // Counted before the token is looked up, so guesses are limited whether they hit or miss.
      preHandler: limits.signin,
      schema: {
        body: {
          type: 'object',
          required: ['token'],
          additionalProperties: false,
          properties: { token: { type: 'string', minLength: 1, maxLength: MAX_TOKEN_LENGTH } },
        },
      },
    },
    async (req, reply) => {
      const who = findWorker(store, (req.body as { token: string }).token);
      if (!who)
        return reply.code(401).send({ error: 'unauthorized', message: 'unknown or revoked invite token' });
      return { name: who.name, role: who.role };
    },
  );

  // Limited after sign-in (keyed by worker) and before the handler: a refused write stores nothing.
  const signedInWrite = [signedIn, limits.writes];
  app.get('/api/me', { preHandler: signedIn }, async (req) => {
    const who = req.principal!;
    const { n } = store.db
      .prepare('SELECT count(*) AS n FROM comparisons WHERE worker_id = ?')
      .get(who.id) as {
      n: number;
    };
    return { name: who.name, role: who.role, round: state.round, comparisons: n };
  });

  app.post('/api/turns', { preHandler: signedInWrite, schema: turnSchema }, async (req) => {
    const body = req.body as { task?: StoreTask; text: string; after?: number };
    const workerId = req.principal!.id;
    const { prompt, task } = nextPrompt(store, workerId, {
      task: body.task ?? 'helpful',
      text: body.text,
      after: body.after,
    });
    const candidates = await sampleCandidates(sampler, prompt, sampling);
    // Written only once both responses exist: a busy or timed-out turn leaves nothing behind.
    const { conversationId } = saveStep(store, { workerId, task, round: state.round, prompt, candidates });
    return { conversationId, task, responses: candidates.map((c) => c.text) };
  });

  app.post('/api/comparisons', { preHandler: signedInWrite, schema: choiceSchema }, async (req) => {
    const body = req.body as { conversationId: number; choice: 'a' | 'b'; strength: number; edit?: string };
    return { comparisonId: saveChoice(store, req.principal!.id, body) };
  });

  registerAdminRoutes(app, { store, sampler, state, admin });
  return app;
}
