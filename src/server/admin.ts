// Admin routes: workers, invites and token revocation, rounds, deployed models, data counts, the Elo table and export.
// Everything here needs a worker of role 'admin'.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { bootstrapElo } from '../eval/elo.ts';
import { type EloTask, storeEloComparisons } from '../eval/elo-data.ts';
import { storedComparisons } from '../store/records.ts';
import { newToken, type Store, type StoreTask } from '../store/store.ts';
import type { ServerState } from './app.ts';
import type { Sampler } from './models.ts';

const NAME_PATTERN = '^[A-Za-z0-9_.-]{1,64}$';
// Elo intervals are recomputed per page view on the event loop: few resamples keep it fast.
const ELO_BOOTSTRAP_SAMPLES = 200;

// Query strings are text and the server does not coerce types (app.ts): a round is digits, read by roundOf.
const roundQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    round: { type: 'string', pattern: '^[0-9]{1,9}$' },
    task: { type: 'string', enum: ['helpful', 'red-team', 'all'] },
  },
} as const;

const roundOf = (q: { round?: string }): number | undefined =>
  q.round === undefined ? undefined : Number(q.round);

const workerParams = {
  type: 'object',
  required: ['name'],
  additionalProperties: false,
  properties: { name: { type: 'string', pattern: NAME_PATTERN } },
} as const;

/** Elo rows for the admin table (crowdworker Elo with bootstrap intervals). */
export function eloTable(store: Store, task: EloTask, round?: number) {
  const { comparisons, skipped } = storeEloComparisons(store, { task, round });
  const models = new Set(comparisons.flatMap((c) => [c.a, c.b]));
  if (models.size < 2) return { rows: [], comparisons: comparisons.length, skipped: skipped.length };
  const { fit, interval } = bootstrapElo(comparisons, { samples: ELO_BOOTSTRAP_SAMPLES, seed: 0 });
  const rows = fit.models
    .map((model) => ({
      model,
      elo: fit.elo[model]!,
      lower: interval[model]!.lower,
      upper: interval[model]!.upper,
      comparisons: fit.comparisons[model]!,
      wins: fit.wins[model]!,
    }))
    .sort((x, y) => y.elo - x.elo);
  return { rows, comparisons: comparisons.length, skipped: skipped.length, anchor: fit.anchor };
}

/**
 * Adds the admin API under /api/admin to `app` (workers, invites, token revocation and new tokens,
 * rounds, models, counts, Elo, export), each route behind `ctx.admin`. buildServer calls it.
 *
 * @example registerAdminRoutes(app, { store, sampler, state, admin: requireWorker(store, { role: 'admin' }) });
 */
export function registerAdminRoutes(
  app: FastifyInstance,
  ctx: {
    store: Store;
    sampler: Sampler;
    state: ServerState;
    /** The preHandler that admits admins only (requireWorker with role 'admin'). */
    admin: (req: FastifyRequest, reply: FastifyReply) => Promise<void>;
  },
): void {
  const { store, sampler, state, admin } = ctx;

  app.get('/api/admin/workers', { preHandler: admin }, async () =>
    store.db
      .prepare(
        `SELECT w.id, w.name, w.role, w.created_at AS createdAt, w.token_hash IS NOT NULL AS canSignIn,
                (SELECT count(*) FROM comparisons c WHERE c.worker_id = w.id) AS comparisons
           FROM workers w ORDER BY w.id`,
      )
      .all(),
  );

  // An invite is a new worker with a fresh token; the token is in this reply only (the store keeps its hash).
  app.post(
    '/api/admin/invites',
    {
      preHandler: admin,
      schema: {
        body: {
          type: 'object',
          required: ['name'],
          additionalProperties: false,
          properties: {
            name: { type: 'string', pattern: NAME_PATTERN },
            role: { type: 'string', enum: ['crowdworker', 'admin'] },
          },
        },
      },
    },
    async (req, reply) => {
      const { name, role = 'crowdworker' } = req.body as { name: string; role?: 'crowdworker' | 'admin' };
      if (store.worker(name))
        return reply.code(409).send({ error: 'conflict', message: `worker '${name}' exists` });
      const token = newToken();
      store.addWorker({ name, role, token });
      return reply.code(201).send({ name, role, token });
    },
  );

  // Revoking a token ends every session that holds it at once (the token is checked on each call); the
  // worker and their comparisons stay. A new token revokes the old one the same way (a lost or leaked
  // token). The last admin who can sign in is not revoked: nobody could invite anyone afterwards.
  app.post(
    '/api/admin/workers/:name/revoke',
    { preHandler: admin, schema: { params: workerParams } },
    async (req, reply) => {
      const { name } = req.params as { name: string };
      const worker = store.worker(name);
      if (!worker) return reply.code(404).send({ error: 'not-found', message: `no worker '${name}'` });
      const signInAdmins = store.db
        .prepare("SELECT count(*) AS n FROM workers WHERE role = 'admin' AND token_hash IS NOT NULL")
        .get() as { n: number };
      if (worker.role === 'admin' && store.canSignIn(name) && signInAdmins.n === 1) {
        return reply.code(409).send({
          error: 'conflict',
          message: `'${name}' is the last admin who can sign in; invite another admin first`,
        });
      }
      store.setWorkerToken(name, null);
      return { name, canSignIn: false };
    },
  );

  app.post(
    '/api/admin/workers/:name/token',
    { preHandler: admin, schema: { params: workerParams } },
    async (req, reply) => {
      const { name } = req.params as { name: string };
      const worker = store.worker(name);
      if (!worker) return reply.code(404).send({ error: 'not-found', message: `no worker '${name}'` });
      const token = newToken();
      store.setWorkerToken(name, token);
      return reply.code(201).send({ name, role: worker.role, token });
    },
  );

  app.get('/api/admin/rounds', { preHandler: admin }, async () => ({
    current: state.round,
    rounds: store.db
      .prepare(
        `SELECT r.id, r.started_at AS startedAt, r.finished_at AS finishedAt,
                (SELECT count(*) FROM comparisons c WHERE c.round_id = r.id) AS comparisons
           FROM rounds r ORDER BY r.id`,
      )
      .all(),
  }));

  // Closes the current round and collects into the next one from now on (§4.5's weekly cadence).
  app.post('/api/admin/rounds/next', { preHandler: admin }, async () => {
    store.transaction(() => {
      store.finishRound(state.round);
      store.ensureRound(state.round + 1);
    });
    state.round += 1;
    return { current: state.round };
  });

  app.get('/api/admin/models', { preHandler: admin }, async () => {
    const status = new Map(sampler.status().map((s) => [s.name, s]));
    const count = store.db.prepare('SELECT count(*) AS n FROM responses WHERE model_id = ?');
    return sampler.deployed.map((m) => ({
      ...m,
      responses: (count.get(m.id) as { n: number }).n,
      ...(status.get(m.name) ?? {}),
    }));
  });

  app.get('/api/admin/counts', { preHandler: admin }, async () =>
    store.db
      .prepare(
        `SELECT round_id AS round, coalesce(task, 'unknown') AS task, count(*) AS comparisons,
                count(DISTINCT worker_id) AS workers, sum(edit IS NOT NULL) AS edits
           FROM comparisons GROUP BY round_id, task ORDER BY round_id, task`,
      )
      .all(),
  );

  app.get('/api/admin/elo', { preHandler: admin, schema: { querystring: roundQuery } }, async (req) => {
    const q = req.query as { task?: EloTask; round?: string };
    return { task: q.task ?? 'helpful', ...eloTable(store, q.task ?? 'helpful', roundOf(q)) };
  });

  // The comparison file (HH-RLHF JSON lines; red-team comparisons with the less harmful as "chosen").
  app.get(
    '/api/admin/export',
    { preHandler: admin, schema: { querystring: roundQuery } },
    async (req, reply) => {
      const q = req.query as { task?: StoreTask | 'all'; round?: string };
      const task = q.task === 'all' ? undefined : q.task;
      const round = roundOf(q);
      const lines: string[] = [];
      for (const { line } of storedComparisons(store, { round, task })) lines.push(line);
      const name = `comparisons${round === undefined ? '' : `-round${round}`}${task ? `-${task}` : ''}.jsonl`;
      return reply
        .header('content-type', 'application/jsonl; charset=utf-8')
        .header('content-disposition', `attachment; filename="${name}"`)
        .send(lines.map((l) => `${l}\n`).join(''));
    },
  );
}
