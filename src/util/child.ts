// Child processes for multi-process runs, tests and benchmarks: run one to completion with its output
// collected (and a kill timer), pick a free port for a rendezvous, and the env:// variables of one rank.
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';

export interface ChildRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface ChildOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Written to the child's stdin, which is then closed. */
  stdin?: string;
  /** SIGKILL after this long (a hung peer must not hang the caller); none by default. */
  timeoutMs?: number;
  /** Sees each stderr line as it arrives (and may kill the child). */
  onStderrLine?: (line: string, child: ChildProcess) => void;
  /** Sees each stdout line as it arrives. */
  onStdoutLine?: (line: string) => void;
  /** Called once the child has started (e.g. to stop its peers when it fails). */
  onSpawn?: (child: ChildProcess) => void;
}

/**
 * Runs `cmd args` to completion and returns its status and output.
 *
 * @example const r = await runChild(process.execPath, ['-e', 'console.log(1)']); // r.stdout === '1\n'
 */
export function runChild(cmd: string, args: readonly string[], opts: ChildOptions = {}): Promise<ChildRun> {
  return new Promise((done, fail) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env });
    opts.onSpawn?.(child);
    let stdout = '';
    let stderr = '';
    let partial = '';
    let partialOut = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (!opts.onStdoutLine) return;
      partialOut += chunk.toString();
      const lines = partialOut.split('\n');
      partialOut = lines.pop()!;
      for (const line of lines) opts.onStdoutLine(line);
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      if (!opts.onStderrLine) return;
      partial += chunk.toString();
      const lines = partial.split('\n');
      partial = lines.pop()!;
      for (const line of lines) opts.onStderrLine(line, child);
    });
    const timer =
      opts.timeoutMs === undefined ? null : setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
    child.on('error', fail);
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      done({ code, signal, stdout, stderr });
    });
    child.stdin.end(opts.stdin ?? '');
  });
}

/** A TCP port nobody listens on now (for a one-machine rendezvous). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((done, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(0, host, () => {
      const { port } = s.address() as { port: number };
      s.close(() => done(port));
    });
  });
}

/** torchrun's variables for one rank of a one-machine group on loopback. */
export function rankEnv(rank: number, worldSize: number, port: number): Record<string, string> {
  return {
    RANK: String(rank),
    LOCAL_RANK: String(rank),
    WORLD_SIZE: String(worldSize),
    MASTER_ADDR: '127.0.0.1',
    MASTER_PORT: String(port),
  };
}
