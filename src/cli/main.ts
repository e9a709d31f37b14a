import { HhkitError } from '../util/errors.ts';
import { commands } from './commands.ts';

export type { Command } from './commands.ts';

async function usage(): Promise<string> {
  const lines = ['usage: hhkit <command> [options]   (hhkit <command> --help for details)', '', 'commands:'];
  for (const [name, load] of Object.entries(commands)) {
    try {
      const { command } = await load();
      lines.push(`  ${name.padEnd(12)} ${command.summary}`);
    } catch {
      // A command whose module is not present yet is simply not listed.
    }
  }
  return lines.join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(await usage());
    return name ? 0 : 2;
  }
  const load = commands[name];
  if (!load) {
    console.error(`hhkit: unknown command '${name}'\n\n${await usage()}`);
    return 2;
  }
  const { command } = await load();
  // Options after `--` belong to an inner command (hhkit launch -- pretrain --help).
  const own = rest.includes('--') ? rest.slice(0, rest.indexOf('--')) : rest;
  if (own.includes('--help') || own.includes('-h')) {
    const sub = command.subcommandHelp ?? {};
    console.log(Object.hasOwn(sub, own[0] ?? '') ? sub[own[0]!] : command.help);
    return 0;
  }
  return command.run(rest);
}

// ---- user-facing errors: one line `hhkit: message`, no stack, a meaningful exit status ----
//
// An error is the user's to fix, and its message the whole story (file:line, expected vs got), when it
// is an HhkitError (src/util/errors.ts: UsageError, DataFileError, StoreError, CheckpointError,
// TrainingDivergenceError, …, each with its exit status) or one of the library's older typed errors below,
// matched by name so that `hhkit --help` need not load the modules that define them. A wrong path from
// node:fs (ENOENT, EISDIR, …) is one line too. Anything else is a bug and keeps its stack; HHKIT_DEBUG=1
// shows the stack of every error.

/** Typed library errors that are not HhkitErrors (yet): bad input files and configs, exit 2. */
const USER_ERRORS: Record<string, number> = {
  ConfigError: 2, // src/train/config.ts: a config key with a wrong value
  GPTConfigError: 2, // src/nn/gpt.ts: a checkpoint's config.json
  SafetensorsError: 2, // src/engine/safetensors.ts: a damaged .safetensors file
  StateDictError: 2, // src/nn/module.ts: a checkpoint's tensors do not fit the model
  TokenizerError: 2, // src/tokenizer/tokenizer.ts: a bad tokenizer.json
  OnlineConfigError: 2, // src/online/config.ts
  PPOConfigError: 2, // src/rl/ppo-config.ts
  NativeBuildError: 1, // src/engine/native.ts: the addon is not built (the message names `npx hhkit setup`)
};
const PATH_CODES = new Set(['ENOENT', 'EISDIR', 'ENOTDIR', 'EACCES', 'EPERM', 'EEXIST', 'ENOTEMPTY']);

/**
 * The exit status and one-line message for an error a user can act on, or null for a bug.
 *
 * @example userFacing(new UsageError('--steps expects a number')) // { code: 2, message: '--steps expects a number' }
 */
function userFacing(err: unknown): { code: number; message: string } | null {
  if (!(err instanceof Error)) return null;
  if (err instanceof HhkitError) return { code: err.exitCode, message: err.message };
  const known = USER_ERRORS[err.name];
  if (known !== undefined) return { code: known, message: err.message };
  const fsError = err as NodeJS.ErrnoException;
  if (fsError.code && PATH_CODES.has(fsError.code) && fsError.path)
    return {
      code: 2,
      message: `${fsError.path}: ${fsError.code} (${fsError.syscall ?? 'fs'}): ${err.message}`,
    };
  return null;
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (err) {
  const user = userFacing(err);
  if (!user) throw err;
  console.error(`hhkit: ${user.message}`);
  if (process.env['HHKIT_DEBUG']) console.error((err as Error).stack);
  process.exitCode = user.code;
}
