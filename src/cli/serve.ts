import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_RATE_LIMITS } from '../server/ratelimit.ts';
import { type RunningServer, startServer } from '../server/start.ts';
import { StoreError } from '../store/errors.ts';
import { newToken, Store } from '../store/store.ts';
import { modelOption, numberOption, type OptionSpec, parseArgs, stringOption, UsageError } from './args.ts';
import type { Command } from './main.ts';

const OPTIONS: OptionSpec = {
  command: 'serve',
  // biome-ignore format: one list of the command's options
  values: ['db', 'models', 'init', 'port', 'host', 'round', 'max-new-tokens', 'temperature', 'top-p', 'timeout-ms', 'queue',
    'rate-limit', 'rate-burst', 'signin-limit', 'new-admin'],
  flags: ['log', 'allow-nonfinite', 'chat-template'],
};

const help = `usage: hhkit serve --db PATH --models DIR[,DIR…] (or --init DIR) [options]

The human-feedback interface (Bai et al. 2022, §2.2): crowdworkers sign in with an invite token, write
Human turns, and compare two Assistant responses sampled from the deployed checkpoints; every comparison
is stored in the SQLite store at once. Admin pages at /admin: invites, token revocation and new tokens,
rounds, models, counts, Elo, export. Worker text is checked before it is stored: a value of the wrong JSON
type, a turn marker (CR/CRLF line breaks count as "\\n"; they are stored as "\\n") or an unpaired UTF-16
surrogate is a 400 naming the field.

options:
  --db PATH              the project store (created if missing)
  --models DIR,DIR…      checkpoint folders to deploy (lm or policy of any supported family, each with
                         tokenizer.json); with two or more, each pair of responses comes from two
                         different snapshots
  --init DIR             one folder to deploy: the same as --models DIR (the option every command takes)
  --chat-template        prompt each model in its folder's chat template (tokenizer_config.json; ChatML:
                         Qwen2/2.5/3, SmolLM2-Instruct) instead of HH text; a folder a --chat-template
                         stage wrote uses it without the flag
  --port N               default 8080 (0: any free port)
  --host H               default 127.0.0.1 (this machine only)
  --round N              the online round to collect into (default: the open round, else a new one)
  --max-new-tokens N     response length limit (default 64)
  --temperature T        default 1
  --top-p P              default 0.95
  --timeout-ms N         deadline per sampling job, queueing included (default 30000)
  --queue N              sampling jobs that may wait per model (default 4; more get 503 "busy")
  --rate-limit N[/min]   turn and choice submissions per minute per worker (default 60; 0: off); more
                         get 429 with Retry-After and nothing is stored
  --rate-burst N         submissions a worker may make at once before the rate applies (default 20)
  --signin-limit N[/min] token guesses per minute per client IP: sign-in attempts, and requests to any
                         other route with a wrong or revoked token (default 10; 0: off); over it, every
                         token from that IP, right or wrong, gets 429 with Retry-After
  --new-admin NAME       add an admin named NAME and print its token once
  --allow-nonfinite      serve checkpoints whose weights hold NaN/±Inf; by default serve refuses to start
                         on one, naming the file and the tensor (exit 1)
  --log                  log each request

With no admin in the store, one named "admin" is created and its token printed once.`;

function openRound(store: Store): number {
  const open = store.db
    .prepare('SELECT max(id) AS id FROM rounds WHERE finished_at IS NULL AND id > 0')
    .get() as {
    id: number | null;
  };
  if (open.id !== null) return open.id;
  const last = store.db.prepare('SELECT max(id) AS id FROM rounds').get() as { id: number | null };
  return (last.id ?? 0) + 1;
}

function positiveInt(opts: Record<string, string | boolean>, key: string, fallback: number, min = 1): number {
  const v = numberOption(opts, key, fallback);
  if (!Number.isInteger(v) || v < min) throw new UsageError(`--${key} must be an integer ≥ ${min}, got ${v}`);
  return v;
}

/** A per-minute rate: 'N' or 'N/min', a whole number ≥ 0 (0 turns the limit off). */
function perMinute(opts: Record<string, string | boolean>, key: string, fallback: number): number {
  const raw = stringOption(opts, key, String(fallback)).trim();
  const m = /^(\d+)(?:\s*\/\s*min)?$/.exec(raw);
  if (!m) throw new UsageError(`--${key} must be N or N/min (a whole number, 0: off), got '${raw}'`);
  return Number(m[1]);
}

export const command: Command = {
  summary: 'the human-feedback web interface with model serving',
  help,
  async run(argv) {
    const { options } = parseArgs(argv, OPTIONS);
    const dbPath = stringOption(options, 'db', '');
    const models = modelOption(options, 'serve', 'models');
    const modelDirs = models.value
      .split(',')
      .map((d) => d.trim())
      .filter(Boolean);
    if (!dbPath) throw new UsageError('--db PATH is required');
    if (modelDirs.length === 0) throw new UsageError('--models DIR[,DIR…] (or --init DIR) is required');
    const port = positiveInt(options, 'port', 8080, 0);
    const host = stringOption(options, 'host', '127.0.0.1');
    const sampling = {
      maxNewTokens: positiveInt(options, 'max-new-tokens', 64),
      temperature: numberOption(options, 'temperature', 1),
      topP: numberOption(options, 'top-p', 0.95),
    };
    if (!(sampling.temperature > 0)) throw new UsageError('--temperature must be > 0');
    if (!(sampling.topP > 0 && sampling.topP <= 1)) throw new UsageError('--top-p must be in (0, 1]');

    const rateLimit = {
      writesPerMinute: perMinute(options, 'rate-limit', DEFAULT_RATE_LIMITS.writesPerMinute),
      writeBurst: positiveInt(options, 'rate-burst', DEFAULT_RATE_LIMITS.writeBurst),
      signinPerMinute: perMinute(options, 'signin-limit', DEFAULT_RATE_LIMITS.signinPerMinute),
    };

    for (const dir of modelDirs) {
      if (!existsSync(join(dir, 'config.json')))
        throw new UsageError(`${models.option}: ${dir} is not a checkpoint folder (no config.json)`);
    }
    let store: Store;
    try {
      store = Store.open(dbPath);
    } catch (err) {
      if (err instanceof StoreError) throw new UsageError(err.message);
      throw err;
    }
    const newAdmin = stringOption(options, 'new-admin', '');
    if (newAdmin && store.worker(newAdmin)) {
      store.close();
      throw new UsageError(`a worker named '${newAdmin}' exists; pick another --new-admin`);
    }
    const round = positiveInt(options, 'round', openRound(store), 0);
    const pool = {
      timeoutMs: positiveInt(options, 'timeout-ms', 30_000),
      allowNonFinite: options['allow-nonfinite'] === true,
      chatTemplate: options['chat-template'] === true,
      maxWaiting: positiveInt(options, 'queue', 4, 0),
    };
    console.error(`loading ${modelDirs.length} model(s)…`);
    let server: RunningServer;
    try {
      server = await startServer({
        store,
        models: modelDirs,
        pool,
        round,
        sampling,
        rateLimit,
        logger: options['log'] === true,
        host,
        port,
      });
    } catch (err) {
      // A model that does not load (non-finite weights, not a checkpoint) or a port that is taken.
      store.close();
      console.error(`hhkit serve: ${(err as Error).message}`);
      return 1;
    }
    const hasAdmin = store.db
      .prepare("SELECT 1 FROM workers WHERE role = 'admin' AND token_hash IS NOT NULL")
      .get();
    let adminName = newAdmin || (hasAdmin ? '' : 'admin');
    for (let n = 2; !newAdmin && adminName && store.worker(adminName); n++) adminName = `admin-${n}`;
    if (adminName) {
      const token = newToken();
      store.addWorker({ name: adminName, role: 'admin', token });
      console.log(`admin '${adminName}' token (shown once, keep it): ${token}`);
    }
    const { url } = server;
    console.log(
      `hhkit serve: ${url}/ (admin: ${url}/admin) · round ${round} · models ${server.pool.deployed.map((m) => m.name).join(', ')}`,
    );

    await new Promise<void>((resolve) => {
      const stop = () => resolve();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    await server.close();
    store.close();
    return 0;
  },
};
