// Runs `hhkit` as a child process for the CLI tests (one helper instead of a copy per test file).
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

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
 * line as it arrives (and may kill the child).
 *
 * @example const run = await runHhkit(['pretrain', '--help']);
 */
export function runHhkit(
  args: string[],
  opts: { stdin?: string; onStderrLine?: (line: string, child: ChildProcess) => void } = {},
): Promise<CliRun> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [bin, ...args], { cwd: root, env });
    let stdout = '';
    let stderr = '';
    let partial = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      if (!opts.onStderrLine) return;
      partial += chunk.toString();
      const lines = partial.split('\n');
      partial = lines.pop()!;
      for (const line of lines) opts.onStderrLine(line, child);
    });
    child.on('error', fail);
    child.on('close', (code, signal) => done({ code, signal, stdout, stderr }));
    child.stdin.end(opts.stdin ?? '');
  });
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
