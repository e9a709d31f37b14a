// Sign-in by invite token. The page sends the token as `Authorization: Bearer …` on each call (kept in
// sessionStorage), never in a cookie: a browser does not attach it to cross-site requests by itself,
// so forged form posts (CSRF) carry no credentials.
import { timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { hashToken, type Store, type WorkerRole } from '../store/store.ts';
import { sendRateLimited, type TokenGuessLimit } from './ratelimit.ts';

/** The worker a request acts for. */
export interface Principal {
  id: number;
  name: string;
  role: WorkerRole;
}

/** Invite tokens are 32 base64url characters (store.newToken); anything far longer is not one. */
export const MAX_TOKEN_LENGTH = 200;

/**
 * The worker holding `token`, or null. The lookup is by SHA-256 (the store keeps only hashes, indexed);
 * the final comparison is constant-time so response timing says nothing about how close a guess was.
 *
 * @example const who = findWorker(store, 'k3J…'); // { id: 4, name: 'ana', role: 'crowdworker' } | null
 */
export function findWorker(store: Store, token: string): Principal | null {
  if (token.length === 0 || token.length > MAX_TOKEN_LENGTH) return null;
  const hash = hashToken(token);
  const row = store.db
    .prepare('SELECT id, name, role, token_hash FROM workers WHERE token_hash = ?')
    .get(hash) as (Principal & { token_hash: string }) | undefined;
  if (!row || !timingSafeEqual(Buffer.from(row.token_hash, 'hex'), Buffer.from(hash, 'hex'))) return null;
  return { id: row.id, name: row.name, role: row.role };
}

/** The bearer token of a request, or null. */
export function bearerToken(req: FastifyRequest): string | null {
  const header = req.headers.authorization;
  if (typeof header !== 'string' || !header.startsWith('Bearer ')) return null;
  return header.slice('Bearer '.length).trim();
}

export interface RequireWorkerOptions {
  /** Only workers of this role ('admin' for the admin routes). */
  role?: WorkerRole;
  /** Counts wrong tokens against the client IP's guess limit, and refuses (429) once it is spent. */
  guesses?: TokenGuessLimit | null;
}

/**
 * A preHandler that admits signed-in workers (and, with `role: 'admin'`, only admins), setting
 * `req.principal`. Refusals are JSON: 401 without a valid token, 403 for a crowdworker on admin routes,
 * 429 when the client's IP has used up its token guesses (checked before the lookup: a right token is
 * refused too, so a guess that hits tells the guesser nothing during the wait).
 *
 * @example
 * app.get('/api/me', { preHandler: requireWorker(store, { guesses: limits.guesses }) }, handler);
 */
export function requireWorker(store: Store, opts: RequireWorkerOptions = {}) {
  return async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const token = bearerToken(req);
    // No token at all is not a guess: it costs nothing and is simply refused.
    if (token !== null) {
      const wait = opts.guesses?.wait(req) ?? 0;
      if (wait > 0) return sendRateLimited(reply, wait, 'requests with a wrong token');
    }
    const who = token === null ? null : findWorker(store, token);
    if (!who) {
      if (token !== null) opts.guesses?.miss(req);
      await reply.code(401).send({ error: 'unauthorized', message: 'sign in with your invite token' });
      return;
    }
    if (opts.role === 'admin' && who.role !== 'admin') {
      await reply.code(403).send({ error: 'forbidden', message: 'this page needs an admin token' });
      return;
    }
    req.principal = who;
  };
}

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
}
