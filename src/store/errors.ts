/**
 * A store problem a user can act on (a database from a newer hhkit, a failed migration, a missing
 * row). `path` names the database file.
 *
 * @example throw new StoreError('runs/a.db', 'schema version 7 is newer than this hhkit knows (1)');
 */
export class StoreError extends Error {
  override name = 'StoreError';
  /** The CLI's exit status: a database that cannot be used is the user's to fix, like a wrong path. */
  readonly exitCode = 2;
  constructor(
    readonly path: string,
    readonly reason: string,
  ) {
    super(`${path}: ${reason}`);
  }
}
