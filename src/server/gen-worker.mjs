// Entry of a model-serving worker thread. Registers tsx first so the worker can load TypeScript however
// the parent was started (`node --import tsx`, or bin/hhkit.js which registers tsx through its API, which
// worker threads do not inherit).
import { register } from 'tsx/esm/api';

register();
await import('./gen-worker.ts');
