/**
 * The feedback interface as a library: `import { startServer } from 'hhkit/server'` (the package's subpath
 * export; `hhkit` itself does not load the web server).
 *
 * @module hhkit/server
 */
export { buildServer, MAX_TURN_CHARS, type ServerOptions } from './app.ts';
export {
  type DeployedModel,
  ModelPool,
  type ModelPoolOptions,
  type ModelStatus,
  type Sampler,
} from './models.ts';
export type { SamplingParams } from './protocol.ts';
export { DEFAULT_RATE_LIMITS, type RateLimitOptions } from './ratelimit.ts';
export { type RunningServer, type StartServerOptions, startServer } from './start.ts';
