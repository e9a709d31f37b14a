import { readFileSync } from 'node:fs';

/** Thrown for bad command lines; the CLI prints the message and exits with status 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

export interface ParsedArgs {
  positionals: string[];
  /** `--key value` and `--flag` (true) options, with `--config FILE.json` merged underneath. */
  options: Record<string, string | boolean>;
}

/**
 * Parses `hhkit <cmd>` arguments: positionals, `--key value`, `--key=value`, boolean `--flag`
 * (`booleans` lists which keys take no value) and `--config file.json` whose keys are defaults
 * that the command line overrides.
 *
 * @example parseArgs(['data.jsonl', '--lr', '3e-4', '--json'], ['json'])
 */
export function parseArgs(argv: string[], booleans: string[] = []): ParsedArgs {
  const positionals: string[] = [];
  const cli: Record<string, string | boolean> = {};
  const flagSet = new Set(['help', 'json', ...booleans]);
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const key = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
      if (eq >= 0) cli[key] = arg.slice(eq + 1);
      else if (flagSet.has(key) || key.startsWith('no-')) cli[key] = true;
      else {
        const value = argv[i + 1];
        if (value === undefined) throw new UsageError(`option --${key} needs a value`);
        cli[key] = value;
        i++;
      }
    } else if (arg === '-h') cli['help'] = true;
    else positionals.push(arg);
  }
  let options: Record<string, string | boolean> = {};
  const configPath = cli['config'];
  if (typeof configPath === 'string') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(configPath, 'utf8'));
    } catch (err) {
      throw new UsageError(`cannot read config file ${configPath}: ${(err as Error).message}`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new UsageError(`config file ${configPath}: expected a JSON object of options`);
    }
    for (const [k, v] of Object.entries(parsed)) options[k] = typeof v === 'boolean' ? v : String(v);
  }
  options = { ...options, ...cli };
  return { positionals, options };
}

/** Reads a numeric option, with a default; throws a UsageError naming the option when it is not a number. */
export function numberOption(opts: ParsedArgs['options'], key: string, fallback: number): number {
  const v = opts[key];
  if (v === undefined) return fallback;
  const n = Number(v);
  if (typeof v !== 'string' || v.trim() === '' || !Number.isFinite(n)) {
    throw new UsageError(`--${key} expects a number, got ${JSON.stringify(v)}`);
  }
  return n;
}

/** Reads a string option, with a default. */
export function stringOption(opts: ParsedArgs['options'], key: string, fallback: string): string {
  const v = opts[key];
  if (v === undefined) return fallback;
  if (typeof v !== 'string') throw new UsageError(`--${key} expects a value`);
  return v;
}
