import { HhkitError } from '../util/errors.ts';

/**
 * A store problem a user can act on (a database from a newer hhkit, a failed migration, a missing
 * row). `path` names the database file.
 *
 * @example throw new StoreError('runs/a.db', 'schema version 7 is newer than this hhkit knows (1)');
 */
export class StoreError extends HhkitError {
  override name = 'StoreError';
  /** Exit status 2: a database that cannot be used is the user's to fix, like a wrong path. */
  constructor(
    readonly path: string,
    readonly reason: string,
  ) {
    super(`${path}: ${reason}`, { exitCode: 2 });
  }
}
