// The base of hhkit's errors whose message is the whole story for a user (what went wrong, where, and what
// to do next). The CLI prints such an error as one line, `hhkit: <message>`, without a stack trace, and
// exits with its `exitCode`; anything else is a bug and keeps its stack.

/** Exit status of a run stopped because training diverged (a non-finite loss, gradient or weight). */
export const EXIT_DIVERGED = 3;

/**
 * An error a user can act on from its message alone; `exitCode` is the CLI's exit status for it.
 *
 * @example
 * class CorruptThing extends HhkitError { override name = 'CorruptThing'; }
 * throw new CorruptThing('data/x.bin: header says 12 rows, found 11', { exitCode: 2 });
 */
export class HhkitError extends Error {
  override name = 'HhkitError';
  readonly exitCode: number;

  constructor(message: string, options: { exitCode?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.exitCode = options.exitCode ?? 1;
  }
}
