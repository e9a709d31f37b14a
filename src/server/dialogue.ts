// The interface's store writes live in src/store/dialogue.ts, so that the online rounds' simulated crowd
// (src/online, below the server in the layering) records comparisons through the very same code.
export * from '../store/dialogue.ts';
