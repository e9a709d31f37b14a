// The feedback interface in one call, what `hhkit serve` runs and what a program embedding it imports from
// 'hhkit/server': the checkpoints loaded into worker threads (ModelPool), the app built over the store
// (buildServer) and listening.
import type { FastifyInstance } from 'fastify';
import { buildServer, type ServerOptions } from './app.ts';
import { ModelPool, type ModelPoolOptions } from './models.ts';

/** What startServer takes: the app's options (store, round, sampling, rate limits) and what to serve where. */
export interface StartServerOptions extends Omit<ServerOptions, 'sampler'> {
  /**
   * Checkpoint folders to deploy (lm or policy of any supported family, each with tokenizer.json); with two
   * or more, each pair of responses comes from two different ones.
   */
  models: readonly string[];
  /** Model serving: queue length, deadline per sampling job, non-finite weights, chat template. */
  pool?: ModelPoolOptions;
  /** Default '127.0.0.1' (this machine only). */
  host?: string;
  /** Default 8080; 0 picks a free port (read it from `url`). */
  port?: number;
}

/** A feedback server that is listening. */
export interface RunningServer extends AsyncDisposable {
  /** Where it listens, e.g. 'http://127.0.0.1:8080': the page at `${url}/`, admin at `${url}/admin`. */
  url: string;
  app: FastifyInstance;
  /** The deployed models, with their ids in the store's models table. */
  pool: ModelPool;
  /** Stops listening and the model workers; the store stays open (it is the caller's to close). */
  close(): Promise<void>;
}

/**
 * Starts the feedback interface (Bai et al. 2022, §2.2): loads `models`, builds the app over `store` and
 * listens. Rejects with the reason when a model does not load (e.g. NaN weights) or the port is taken,
 * having stopped whatever it had started.
 *
 * @example
 * import { Store } from 'hhkit';
 * import { startServer } from 'hhkit/server';
 * const store = Store.open('feedback.db');
 * const server = await startServer({ store, models: ['runs/ppo/checkpoint'], port: 0 });
 * console.log(`open ${server.url}/`);
 * // … later
 * await server.close();
 * store.close();
 */
export async function startServer(opts: StartServerOptions): Promise<RunningServer> {
  const { models, pool: poolOptions, host = '127.0.0.1', port = 8080, ...appOptions } = opts;
  const pool = await ModelPool.start(opts.store, models, poolOptions);
  let app: FastifyInstance | null = null;
  try {
    app = await buildServer({ ...appOptions, sampler: pool });
    let url: string;
    try {
      url = await app.listen({ host, port });
    } catch (err) {
      throw new Error(`cannot listen on ${host}:${port}: ${(err as Error).message}`, { cause: err });
    }
    const listening = app;
    const close = async (): Promise<void> => {
      await listening.close();
      await pool.close();
    };
    return { url, app, pool, close, [Symbol.asyncDispose]: close };
  } catch (err) {
    await app?.close();
    await pool.close();
    throw err;
  }
}
