import type Database from 'better-sqlite3';
import { StoreError } from './errors.ts';

/** One schema step. `version` n moves the database from user_version n-1 to n. */
export interface Migration {
  version: number;
  name: string;
  up: string | ((db: Database.Database) => void);
}

// Times are unix milliseconds; JSON columns hold JSON text. STRICT tables so a wrong type is an
// error at insert, not a surprise at read.
const SCHEMA_V1 = `
CREATE TABLE workers (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  role TEXT NOT NULL CHECK (role IN ('crowdworker', 'admin')),
  -- SHA-256 of the worker's API token: tokens are random, so no salt is needed, and a leaked
  -- database does not leak logins.
  token_hash TEXT UNIQUE,
  created_at INTEGER NOT NULL
) STRICT;

-- Online iterated training (§4.5): one row per round; 0 is the static data.
CREATE TABLE rounds (
  id INTEGER PRIMARY KEY,
  started_at INTEGER NOT NULL,
  finished_at INTEGER,
  notes TEXT
) STRICT;

CREATE TABLE models (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  kind TEXT NOT NULL CHECK (kind IN ('lm', 'pmp', 'pm', 'policy')),
  path TEXT,
  -- Lineage: the model this one was trained or distilled from.
  parent_id INTEGER REFERENCES models(id),
  round_id INTEGER REFERENCES rounds(id),
  config TEXT,
  created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE conversations (
  id INTEGER PRIMARY KEY,
  task TEXT CHECK (task IN ('helpful', 'red-team')),
  worker_id INTEGER REFERENCES workers(id),
  round_id INTEGER REFERENCES rounds(id),
  -- The exact transcript text before the candidate responses (ends with "\\n\\nAssistant:", or ''
  -- for imported pairs with no shared prompt). The turns below are parsed from it for queries.
  prompt TEXT NOT NULL,
  created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE turns (
  conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
  idx INTEGER NOT NULL,
  role TEXT NOT NULL CHECK (role IN ('human', 'assistant')),
  text TEXT NOT NULL,
  PRIMARY KEY (conversation_id, idx)
) STRICT, WITHOUT ROWID;

-- A candidate response: the text after the conversation's prompt, and which model sampled it how.
CREATE TABLE responses (
  id INTEGER PRIMARY KEY,
  conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
  text TEXT NOT NULL,
  model_id INTEGER REFERENCES models(id),
  sampling TEXT,
  created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX responses_conversation ON responses(conversation_id);

-- A worker saw responses A and B and picked one. Helpful workers pick the better one; red-team
-- workers the more harmful one, so for red-team the HH "chosen" is the one NOT picked.
CREATE TABLE comparisons (
  id INTEGER PRIMARY KEY,
  conversation_id INTEGER NOT NULL REFERENCES conversations(id),
  response_a INTEGER NOT NULL REFERENCES responses(id),
  response_b INTEGER NOT NULL REFERENCES responses(id),
  choice TEXT NOT NULL CHECK (choice IN ('a', 'b')),
  task TEXT CHECK (task IN ('helpful', 'red-team')),
  strength REAL,
  -- The worker's edited version of the picked response, when they wrote one.
  edit TEXT,
  round_id INTEGER REFERENCES rounds(id),
  worker_id INTEGER REFERENCES workers(id),
  source TEXT,
  -- Export fidelity: whether the record carried "prompt", and how its line was written
  -- (a LineStyle), or the line itself when no style reproduces it.
  explicit_prompt INTEGER NOT NULL DEFAULT 0 CHECK (explicit_prompt IN (0, 1)),
  line_style TEXT CHECK (line_style IN ('hh', 'hh-utf8', 'compact')),
  line TEXT,
  created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX comparisons_round ON comparisons(round_id);
CREATE INDEX comparisons_worker ON comparisons(worker_id);
`;

/** The schema history. Append new steps; never edit a released one (databases in the field ran it). */
export const MIGRATIONS: readonly Migration[] = [{ version: 1, name: 'initial schema', up: SCHEMA_V1 }];

/**
 * Brings a database to the latest schema: each pending migration runs in its own transaction
 * together with the `user_version` bump, so a failure leaves the previous version intact.
 *
 * @example const { from, to } = migrate(db); // { from: 0, to: 1 } on a new file
 */
export function migrate(
  db: Database.Database,
  migrations: readonly Migration[] = MIGRATIONS,
  path = db.name,
): { from: number; to: number } {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new StoreError(path, `migration list out of order at "${m.name}"`);
  });
  const from = db.pragma('user_version', { simple: true }) as number;
  const latest = migrations.length;
  if (from > latest) {
    throw new StoreError(
      path,
      `schema version ${from} is newer than this hhkit knows (${latest}); upgrade hhkit`,
    );
  }
  for (const m of migrations.slice(from)) {
    const step = db.transaction(() => {
      if (typeof m.up === 'string') db.exec(m.up);
      else m.up(db);
      db.pragma(`user_version = ${m.version}`);
    });
    try {
      step.immediate();
    } catch (err) {
      throw new StoreError(path, `migration ${m.version} (${m.name}) failed: ${(err as Error).message}`);
    }
  }
  return { from, to: Math.max(from, latest) };
}
