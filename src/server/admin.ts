// Admin routes: workers and invites, rounds, deployed models, data counts, the Elo table and export.
// Everything here needs a worker of role 'admin'.
import type { FastifyInstance } from 'fastify';
import { bootstrapElo } from '../eval/elo.ts';
import { type EloTask, storeEloComparisons } from '../eval/elo-data.ts';
import { storedComparisons } from '../store/records.ts';
import { newToken, type Store, type StoreTask } from '../store/store.ts';
import type { ServerState } from './app.ts';
import { requireWorker } from './auth.ts';
import type { Sampler } from './models.ts';

const NAME_PATTERN = '^[A-Za-z0-9_.-]{1,64}$';
// Elo intervals are recomputed per page view on the event loop: few resamples keep it fast.
const ELO_BOOTSTRAP_SAMPLES = 200;

const roundQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    round: { type: 'integer', minimum: 0 },
    task: { type: 'string', enum: ['helpful', 'red-team', 'all'] },
  },
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

export function registerAdminRoutes(
  app: FastifyInstance,
  ctx: { store: Store; sampler: Sampler; state: ServerState },
): void {
  const { store, sampler, state } = ctx;
  const admin = requireWorker(store, 'admin');

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
    const q = req.query as { task?: EloTask; round?: number };
    return { task: q.task ?? 'helpful', ...eloTable(store, q.task ?? 'helpful', q.round) };
  });

  // The comparison file (HH-RLHF JSON lines; red-team comparisons with the less harmful as "chosen").
  app.get(
    '/api/admin/export',
    { preHandler: admin, schema: { querystring: roundQuery } },
    async (req, reply) => {
      const q = req.query as { task?: StoreTask | 'all'; round?: number };
      const task = q.task === 'all' ? undefined : q.task;
      const lines: string[] = [];
      for (const { line } of storedComparisons(store, { round: q.round, task })) lines.push(line);
      const name = `comparisons${q.round === undefined ? '' : `-round${q.round}`}${task ? `-${task}` : ''}.jsonl`;
      return reply
        .header('content-type', 'application/jsonl; charset=utf-8')
        .header('content-disposition', `attachment; filename="${name}"`)
        .send(lines.map((l) => `${l}\n`).join(''));
    },
  );
}
