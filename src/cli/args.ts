import type { Tokenizer } from '../tokenizer/index.ts';
import { readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { HhkitError } from '../util/errors.ts';

/** Thrown for bad command lines and wrong paths; the CLI prints the message as one line and exits 2. */
export class UsageError extends HhkitError {
  override name = 'UsageError';
  constructor(message: string) {
    super(message, { exitCode: 2 });
  }
}

export interface ParsedArgs {
  positionals: string[];
  /**
   * `--key value` and `--flag` (true) options, with `--config FILE.json` merged underneath. Keys are
   * kebab-case whichever spelling was given (`--batchSize` and `batchSize` in a config file read as `batch-size`).
   */
  options: Record<string, string | boolean>;
}

/** The options a command knows; anything else on its command line or in its config file is refused. */
export interface OptionSpec {
  /** The command as the user types it ('serve', 'pm eval'), for messages. */
  command: string;
  /** Options that take a value, kebab-case (their camelCase spelling is accepted too). */
  values?: readonly string[];
  /** Options that take no value (`--resume`). `--help`, `--json` and `--config FILE` are always known. */
  flags?: readonly string[];
  /** Families `--PREFIX…` whose keys a config further down validates (online's `--ppo-KEY`). */
  prefixes?: readonly string[];
}

const ALWAYS_FLAGS = ['help', 'json'];

/** `batchSize` → `batch-size`; kebab-case stays as it is. */
export const kebabKey = (key: string): string => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/**
 * A typed config's keys as options, kebab-case: booleans are flags, the rest take values.
 *
 * @example configOptions({ steps: 10, whitenRewards: false }) // { values: ['steps'], flags: ['whiten-rewards'] }
 */
export function configOptions(
  config: object,
  except: readonly string[] = [],
): { values: string[]; flags: string[] } {
  const entries = Object.entries(config).filter(([k]) => !except.includes(k));
  return {
    values: entries.filter(([, v]) => typeof v !== 'boolean').map(([k]) => kebabKey(k)),
    flags: entries.filter(([, v]) => typeof v === 'boolean').map(([k]) => kebabKey(k)),
  };
}

/** Edit distance, for "did you mean": insertions, deletions, substitutions and swaps of neighbours. */
function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * The known option nearest to a mistyped one, or null when none is close (within a third of its length,
 * at least 2 edits; dashes ignored, so `--batchsize` finds `--batch-size`).
 *
 * @example nearestOption('signin-limt', ['db', 'signin-limit']) // 'signin-limit'
 */
export function nearestOption(key: string, known: readonly string[]): string | null {
  const bare = (k: string) => k.replace(/-/g, '').toLowerCase();
  let best: string | null = null;
  let bestDistance = Math.max(2, Math.floor(key.length / 3)) + 1;
  for (const k of known) {
    const d = distance(bare(key), bare(k));
    if (d < bestDistance) [best, bestDistance] = [k, d];
  }
  return best;
}

/** Throws the one "unknown option" UsageError every command gives: the nearest known option and the list. */
function refuseUnknown(key: string, spec: OptionSpec, known: readonly string[], where: string): never {
  const near = nearestOption(key, known);
  const hint = near ? ` (did you mean --${near}?)` : '';
  const families = (spec.prefixes ?? []).map((p) => ` --${p}KEY`).join(',');
  throw new UsageError(
    `${spec.command}: unknown option --${key}${where}${hint}; known options: ${known.map((k) => `--${k}`).join(', ')}${families ? `,${families}` : ''}`,
  );
}

/**
 * Parses `hhkit <cmd>` arguments: positionals, `--key value`, `--key=value`, boolean `--flag` and
 * `--config file.json` whose keys are defaults that the command line overrides. Every key, from the
 * command line or the config file, must be one the spec names (in kebab- or camelCase): anything else is
 * a UsageError with the nearest known option and the full list, so a typo never runs with a default.
 *
 * @example parseArgs(['data.jsonl', '--lr', '3e-4', '--json'], { command: 'x', values: ['lr'] })
 */
export function parseArgs(argv: string[], spec: OptionSpec): ParsedArgs;
/**
 * @deprecated Accepts any option; pass an OptionSpec instead (`booleans` are the keys that take no value).
 */
export function parseArgs(argv: string[], booleans?: string[]): ParsedArgs;
export function parseArgs(argv: string[], specOrBooleans: OptionSpec | string[] = []): ParsedArgs {
  const spec = Array.isArray(specOrBooleans) ? null : specOrBooleans;
  const flags = spec ? (spec.flags ?? []) : (specOrBooleans as string[]);
  const flagSet = new Set([...ALWAYS_FLAGS, ...flags].map(normalKey));
  const known = [...(spec?.values ?? []), ...flags, ...ALWAYS_FLAGS, 'config'].map(normalKey);
  const knownSet = new Set(known);
  const isKnown = (k: string) =>
    !spec || knownSet.has(k) || (spec.prefixes ?? []).some((p) => k.startsWith(p));
  const positionals: string[] = [];
  const cli: Record<string, string | boolean> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const key = normalKey(eq >= 0 ? arg.slice(2, eq) : arg.slice(2));
      // Refused before its value is looked for: a mistyped last option is "unknown", not "needs a value".
      if (spec && !isKnown(key)) refuseUnknown(key, spec, known, '');
      if (eq >= 0) cli[key] = arg.slice(eq + 1);
      else if (flagSet.has(key) || (!spec && key.startsWith('no-'))) cli[key] = true;
      else {
        const value = argv[i + 1];
        if (value === undefined) throw new UsageError(`option --${key} needs a value`);
        cli[key] = value;
        i++;
      }
    } else if (arg === '-h') cli['help'] = true;
    else positionals.push(arg);
  }
  const configPath = cli['config'];
  const fromFile = typeof configPath === 'string' ? readConfigFile(configPath) : {};
  if (spec) {
    for (const key of Object.keys(fromFile))
      if (!isKnown(key)) refuseUnknown(key, spec, known, ` in config file ${configPath}`);
  }
  return { positionals, options: { ...fromFile, ...cli } };
}

// Both spellings of a key read as one: `batchSize` and `batch-size` are `batch-size`.
const normalKey = (key: string): string =>
  kebabKey(key.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase()));

function readConfigFile(configPath: string): Record<string, string | boolean> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(configPath, 'utf8'));
  } catch (err) {
    throw new UsageError(`cannot read config file ${configPath}: ${(err as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new UsageError(`config file ${configPath}: expected a JSON object of options`);
  }
  const options: Record<string, string | boolean> = {};
  for (const [k, v] of Object.entries(parsed)) options[normalKey(k)] = typeof v === 'boolean' ? v : String(v);
  return options;
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

/**
 * The model a command runs on, from its own option (`--policy`, `--model`, `--models`) or from `--init`,
 * which every command accepts for a model folder of any family (issue 15). Returns the value and the
 * option it came from (for messages), or an empty value when neither is given; both given and naming
 * different folders is a UsageError.
 *
 * @example modelOption(options, 'best-of-n', 'policy') // { value: 'runs/ppo', option: '--init' }
 */
export function modelOption(
  opts: ParsedArgs['options'],
  command: string,
  key: string,
): { value: string; option: string } {
  const named = stringOption(opts, key, '');
  const init = stringOption(opts, 'init', '');
  if (named && init && resolve(named) !== resolve(init))
    throw new UsageError(
      `${command}: --init ${init} and --${key} ${named} name different models; give one of them`,
    );
  return named ? { value: named, option: `--${key}` } : { value: init, option: '--init' };
}

// ---- paths: the wrong kind of path is one clear line (exit 2) before anything runs ----

function kindOf(path: string): 'file' | 'folder' | 'missing' | 'other' {
  try {
    const s = statSync(path);
    return s.isFile() ? 'file' : s.isDirectory() ? 'folder' : 'other';
  } catch {
    return 'missing';
  }
}

/**
 * An input that must be an existing file (a data file, a config); a UsageError naming the option otherwise.
 *
 * @example requireFile(config.data, '--data') // throws '--data runs/: is a folder, expected a file'
 */
export function requireFile(path: string, option: string): string {
  const kind = kindOf(path);
  if (kind === 'file') return path;
  if (kind === 'missing') throw new UsageError(`${option} ${path}: file not found`);
  throw new UsageError(
    `${option} ${path}: is a ${kind === 'folder' ? 'folder' : 'special file'}, expected a file`,
  );
}

/** An input that must be an existing folder (a world, a checkpoint). */
export function requireFolder(path: string, option: string): string {
  const kind = kindOf(path);
  if (kind === 'folder') return path;
  if (kind === 'missing') throw new UsageError(`${option} ${path}: folder not found`);
  throw new UsageError(`${option} ${path}: is a file, expected a folder`);
}

/** An output folder: it may not exist yet, but it must not be a file. */
export function outputFolder(path: string, option: string): string {
  const kind = kindOf(path);
  if (kind === 'folder' || kind === 'missing') return path;
  throw new UsageError(`${option} ${path}: is a file, expected a folder (or a path that does not exist yet)`);
}

/** An output file: it may not exist yet, but it must not be a folder. */
export function outputFile(path: string, option: string): string {
  const kind = kindOf(path);
  if (kind === 'file' || kind === 'missing') return path;
  throw new UsageError(`${option} ${path}: is a folder, expected a file name`);
}

/** The --chat-template line of the help texts that take it. */
export const CHAT_TEMPLATE_HELP =
  "  --chat-template           write dialogues in the model folder's chat template (tokenizer_config.json\n" +
  '                            chat_template; ChatML: Qwen2/2.5/3, SmolLM2-Instruct) instead of HH text; replies\n' +
  '                            stop at <|im_end|>; Qwen3 in non-thinking mode. Checkpoints written remember it';

/**
 * A tokenizer as --chat-template asks: rendering HH transcripts in its folder's chat template
 * (Tokenizer.withChatTemplate; a TokenizerError naming tokenizer_config.json when there is none or it is
 * not ChatML, exit 2). Without the flag the tokenizer as loaded (a folder a --chat-template stage wrote
 * already applies it).
 *
 * @example const tok = chatTemplateOption(options, checkpointTokenizer(dir));
 */
export function chatTemplateOption(opts: ParsedArgs['options'], tokenizer: Tokenizer): Tokenizer {
  return opts['chat-template'] === true && tokenizer.format.name === 'hh'
    ? tokenizer.withChatTemplate()
    : tokenizer;
}
