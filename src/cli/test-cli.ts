// Runs `hhkit` as a child process for the CLI tests (one helper instead of a copy per test file).
import assert from 'node:assert/strict';
import { type ChildProcess, spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runChild } from '../util/child.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const bin = join(root, 'bin', 'hhkit.js');
// One torch thread per child: tests run two files at a time on 2 cores.
const env = { ...process.env, HHKIT_NUM_THREADS: '1' };

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `hhkit <args>` asynchronously; `stdin` is written to its input; `onStderrLine` sees each stderr
 * line as it arrives (and may kill the child); `env` adds variables (test hooks); `onSpawn` sees the child
 * once started; `timeoutMs` kills it (SIGKILL) if it runs longer.
 *
 * @example const run = await runHhkit(['pretrain', '--help']);
 */
export function runHhkit(
  args: string[],
  opts: {
    stdin?: string;
    onStderrLine?: (line: string, child: ChildProcess) => void;
    onSpawn?: (child: ChildProcess) => void;
    env?: Record<string, string>;
    timeoutMs?: number;
  } = {},
): Promise<CliRun> {
  const { env: extra, ...rest } = opts;
  return runChild(process.execPath, [bin, ...args], { cwd: root, env: { ...env, ...extra }, ...rest });
}

/** Runs `hhkit <args>` to completion. */
export function runHhkitSync(args: string[]): CliRun {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: root, env, encoding: 'utf8' });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** The last stdout line as JSON: what a command prints with --json (typed by the caller). */
export function lastJson<T = Record<string, unknown>>(stdout: string): T {
  return JSON.parse(stdout.trim().split('\n').at(-1) ?? '') as T;
}

/** Runs `hhkit <args> --json`, asserts it exited 0 (showing its stderr's end if not) and returns its summary. */
export async function hhkitJson(args: string[]): Promise<Record<string, unknown>> {
  const run = await runHhkit([...args, '--json']);
  assert.equal(run.code, 0, `hhkit ${args.slice(0, 2).join(' ')} failed:\n${run.stderr.slice(-3000)}`);
  return lastJson(run.stdout);
}

/**
 * config.json keys of a tiny SmolLM-like Llama folder (4 query heads sharing 2 KV heads, tied head) for the
 * end-to-end tests of users' models; spread it and override model_type and the family's keys.
 */
export const TINY_LLAMA_HF = {
  model_type: 'llama',
  hidden_size: 32,
  intermediate_size: 64,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  max_position_embeddings: 256,
  tie_word_embeddings: true,
} as const;
