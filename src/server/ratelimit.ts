// Per-key token buckets for the feedback server: token guesses per client IP — every sign-in attempt, and
// every wrong token on the other routes, from one bucket — (slows token guessing and floods from one
// machine) and writes (turns, choices) per signed-in worker (one runaway tab or script cannot monopolise
// the models or the store). In memory: limits reset on restart, which is fine for abuse
// control. Behind a reverse proxy every client shares the proxy's IP; fastify's trustProxy would fix that.
import type { FastifyReply, FastifyRequest } from 'fastify';

/** Limits for `buildServer`; a rate of 0 turns that limit off. */
export interface RateLimitOptions {
  /**
   * Token guesses per minute per client IP (default 10, burst the same): each sign-in attempt, right or
   * wrong, and each request to another route with a wrong (unknown or revoked) bearer token.
   */
  signinPerMinute?: number;
  /** Turn and choice submissions per minute per worker (default 60). */
  writesPerMinute?: number;
  /** How many writes a worker may make at once before the per-minute rate applies (default 20). */
  writeBurst?: number;
  /** Clock in ms, for tests. Default `performance.now`. */
  now?: () => number;
}

export const DEFAULT_RATE_LIMITS = { signinPerMinute: 10, writesPerMinute: 60, writeBurst: 20 } as const;

// Buckets that have refilled completely carry no information; past this many keys they are dropped.
const PRUNE_ABOVE = 10_000;

/**
 * Token buckets keyed by string: each key holds up to `burst` tokens, refilled at `perMinute` per minute;
 * a request takes one token or is refused with the seconds until one is back.
 *
 * @example
 * const b = new TokenBuckets({ perMinute: 60, burst: 2 });
 * b.take('ip:1.2.3.4'); // 0 (allowed)
 * b.take('ip:1.2.3.4'); // 0
 * b.take('ip:1.2.3.4'); // 1 (refused: retry after 1 s)
 */
export class TokenBuckets {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly perMs: number;
  private readonly burst: number;
  private readonly now: () => number;

  constructor(opts: { perMinute: number; burst: number; now?: () => number }) {
    if (!(opts.perMinute > 0) || !(opts.burst >= 1)) throw new RangeError('rate and burst must be positive');
    this.perMs = opts.perMinute / 60_000;
    this.burst = opts.burst;
    this.now = opts.now ?? (() => performance.now());
  }

  /**
   * Whole seconds (≥ 1) until `key` has a token, or 0 when it has one now; takes nothing.
   *
   * @example b.wait('ip:1.2.3.4') // 0 while the bucket is not empty
   */
  wait(key: string): number {
    const b = this.buckets.get(key);
    if (!b) return 0;
    const tokens = Math.min(this.burst, b.tokens + (this.now() - b.at) * this.perMs);
    return tokens >= 1 ? 0 : Math.max(1, Math.ceil((1 - tokens) / this.perMs / 1000));
  }

  /** Takes a token for `key`: 0 when allowed, else whole seconds (≥ 1) until a token is available. */
  take(key: string): number {
    const now = this.now();
    const b = this.buckets.get(key) ?? { tokens: this.burst, at: now };
    b.tokens = Math.min(this.burst, b.tokens + (now - b.at) * this.perMs);
    b.at = now;
    if (b.tokens >= 1) {
      b.tokens -= 1;
      if (!this.buckets.has(key) && this.buckets.size >= PRUNE_ABOVE) this.prune(now);
      this.buckets.set(key, b);
      return 0;
    }
    this.buckets.set(key, b);
    return Math.max(1, Math.ceil((1 - b.tokens) / this.perMs / 1000));
  }

  private prune(now: number): void {
    for (const [key, b] of this.buckets) {
      if (b.tokens + (now - b.at) * this.perMs >= this.burst) this.buckets.delete(key);
    }
  }
}

type Hook = (req: FastifyRequest, reply: FastifyReply) => Promise<void>;

/** Sends the 429 of a limit, with Retry-After. */
export async function sendRateLimited(reply: FastifyReply, wait: number, what: string): Promise<void> {
  await reply
    .code(429)
    .header('retry-after', String(wait))
    .send({ error: 'rate-limited', message: `Too many ${what}; try again in ${wait} s.`, retryAfter: wait });
}

/** A preHandler that refuses with 429 + Retry-After once `key(req)`'s bucket is empty; no-op when off. */
function limitHook(buckets: TokenBuckets | null, key: (req: FastifyRequest) => string, what: string): Hook {
  return async (req, reply) => {
    if (!buckets) return;
    const wait = buckets.take(key(req));
    if (wait !== 0) await sendRateLimited(reply, wait, what);
  };
}

/**
 * Token guesses on the routes behind sign-in, counted in the sign-in bucket of the client's IP:
 * `wait` is checked before a presented token is looked up (so once the IP is over its limit even a
 * right token is refused, as at sign-in), `miss` takes a token for each wrong one. Right tokens take
 * nothing: a signed-in worker's own calls never use up the limit.
 */
export interface TokenGuessLimit {
  wait(req: FastifyRequest): number;
  miss(req: FastifyRequest): void;
}

/**
 * The server's limit hooks. `signin` keys by client IP and runs before the token is checked; `guesses`
 * shares its buckets, for requireWorker on every other route (null when the limit is off); `writes`
 * keys by the signed-in worker (so it goes after `requireWorker`), falling back to the IP.
 *
 * @example
 * const limits = rateLimitHooks({ writesPerMinute: 30 });
 * app.post('/api/turns', { preHandler: [requireWorker(store, { guesses: limits.guesses }), limits.writes] }, handler);
 */
export function rateLimitHooks(opts: RateLimitOptions = {}): {
  signin: Hook;
  writes: Hook;
  guesses: TokenGuessLimit | null;
} {
  const { signinPerMinute, writesPerMinute, writeBurst } = { ...DEFAULT_RATE_LIMITS, ...opts };
  const make = (perMinute: number, burst: number) =>
    perMinute > 0 ? new TokenBuckets({ perMinute, burst: Math.max(1, burst), now: opts.now }) : null;
  const signins = make(signinPerMinute, signinPerMinute);
  const byIp = (req: FastifyRequest) => `ip:${req.ip}`;
  return {
    signin: limitHook(signins, byIp, 'sign-in attempts'),
    guesses: signins && {
      wait: (req) => signins.wait(byIp(req)),
      miss: (req) => {
        signins.take(byIp(req));
      },
    },
    writes: limitHook(
      make(writesPerMinute, writeBurst),
      (req) => (req.principal ? `worker:${req.principal.id}` : `ip:${req.ip}`),
      'submissions',
    ),
  };
}
