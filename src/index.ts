/**
 * The hhkit library: `import { … } from 'hhkit'`. The feedback server is the subpath export `hhkit/server`.
 *
 * @module hhkit
 */
export * from './data/index.ts';
export * from './engine/index.ts';
export * from './eval/index.ts';
export * from './nn/index.ts';
export * from './online/index.ts';
export * from './pm/index.ts';
export * from './rl/index.ts';
export * from './store/index.ts';
export * from './tokenizer/index.ts';
export * from './train/index.ts';
export * from './world/index.ts';
// Progress events of any trainer to JSON lines and TensorBoard.
export { EventLog, type EventLogOptions, eventScalars, type LoggedEvent } from './util/event-log.ts';
export { TFEventWriter, type TFEventWriterOptions } from './util/tfevents.ts';
// Both eval and world name a `humanTurns`: the world's returns the turns, eval's counts them.
export { humanTurns as countHumanTurns } from './eval/index.ts';
export { humanTurns } from './world/index.ts';
