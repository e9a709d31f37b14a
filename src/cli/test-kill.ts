// kill -9 tests of the resumable commands (issue 14): run `hhkit …` as a child process, SIGKILL it at a
// planned moment — between steps, inside a checkpoint write, between stages — then run the same command
// again to resume, as often as the plan says, and compare the end with an uninterrupted run's.
// Test helper, not part of the library.
import type { ChildProcess } from 'node:child_process';
import { existsSync, type FSWatcher, readdirSync, readFileSync, statSync, watch } from 'node:fs';
import { join } from 'node:path';
import type { CheckpointPausePhase } from '../util/step-folders.ts';
import type { WorldCounts } from '../world/index.ts';
import { type CliRun, runHhkit } from './test-cli.ts';

/** The tiny world of the kill tests (tinyWorldLM's counts): every command runs in a second or two. */
export const KILL_WORLD: Partial<WorldCounts> = {
  pretrainDialogues: 300,
  pretrainForum: 10,
  forumThreads: 10,
  helpfulTrain: 48,
  helpfulTest: 16,
  harmlessTrain: 24,
  harmlessTest: 8,
  rlPrompts: 100,
  rlHeldOut: 64,
  oodHarmful: 2,
  oodBenign: 2,
  calibrationPairs: 60,
};

/** A moment to kill a run at. */
export type KillPoint =
  /**
   * `file` (a metrics.jsonl), once this run has rewritten it (a resume cuts it back to the checkpoint's
   * step), holds ≥ `lines` lines matching `match` — the run reached that step — then `delayMs` later.
   */
  | { at: 'lines'; file: string; match: RegExp; lines: number; delayMs: number }
  /** A stderr line matches `line`, then `delayMs` later (a stage starting, a phase reported). */
  | { at: 'stderr'; line: RegExp; delayMs: number }
  /** The checkpoint write of `step` is held at `phase` (util/step-folders.ts's test hook): exactly there. */
  | { at: 'pause'; phase: CheckpointPausePhase; step: number }
  /**
   * The `nth` entry named `prefix…` appears in `dir` (a `.step-…` temp folder of saveCheckpoint, a
   * `.state.json.tmp-…` file of writeFileAtomicSync), killed as soon as it is seen: inside that write
   * (the outcome's leftovers show the temp entry) unless a loaded machine delays the kill past its last
   * fsync — then just after it, still a kill at a moment the plan chose. 'pause' is the exact one.
   */
  | { at: 'created'; dir: string; prefix: string; nth: number };

export interface KillOutcome {
  point: KillPoint;
  run: CliRun;
  /** `.step-*` / temp entries of the watched folder left by the kill (for 'created': proof it hit a write). */
  leftovers: string[];
}

const describe = (p: KillPoint): string => JSON.stringify(p, (_, v) => (v instanceof RegExp ? String(v) : v));

/**
 * Runs `hhkit <args>` and SIGKILLs it at `point`. Rejects when the run ends by itself before the kill (the
 * plan did not fit the run), naming the point and the run's stderr.
 */
export async function runAndKill(args: string[], point: KillPoint, timeoutMs = 60_000): Promise<KillOutcome> {
  let armed = true;
  // Under `hhkit launch` the ranks are the launcher's children: all of them die together, as when the
  // machine goes down (a launcher killed alone would leave its ranks running on).
  const ranks: number[] = [];
  const kill = (child: ChildProcess, delayMs = 0): void => {
    if (!armed) return;
    armed = false;
    const now = () => {
      for (const pid of ranks) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone already
        }
      }
      child.kill('SIGKILL');
    };
    if (delayMs > 0) setTimeout(now, delayMs);
    else now();
  };
  const timers: NodeJS.Timeout[] = [];
  let watcher: FSWatcher | null = null;
  const onSpawn = (child: ChildProcess): void => {
    if (point.at === 'lines') {
      // The metrics file grows a line per step; a short poll (it is a few kB) sees each one. Until this
      // run has rewritten it, it holds what the killed run before it logged.
      const spawnedAt = Date.now();
      timers.push(
        setInterval(() => {
          if (!armed || !existsSync(point.file) || statSync(point.file).mtimeMs < spawnedAt) return;
          const n = readFileSync(point.file, 'utf8')
            .split('\n')
            .filter((l) => point.match.test(l)).length;
          if (n >= point.lines) kill(child, point.delayMs);
        }, 3),
      );
    } else if (point.at === 'created') {
      // inotify through fs.watch: the kill follows the entry's creation within a fraction of a millisecond,
      // while saveCheckpoint still writes and fsyncs the folder's files.
      const seen = new Set<string>();
      const start = (): void => {
        watcher = watch(point.dir, (_, name) => {
          if (!name?.startsWith(point.prefix) || seen.has(name)) return;
          seen.add(name);
          if (seen.size >= point.nth) kill(child);
        });
      };
      if (existsSync(point.dir)) start();
      else {
        const poll = setInterval(() => {
          if (!existsSync(point.dir)) return;
          clearInterval(poll);
          start();
        }, 2);
        timers.push(poll);
      }
    }
  };
  const onStderrLine = (line: string, child: ChildProcess): void => {
    const rank = /^launch: rank \d+ of \d+ started \(pid (\d+)\)/.exec(line);
    if (rank) ranks.push(Number(rank[1]));
    if (point.at === 'stderr' && point.line.test(line)) kill(child, point.delayMs);
    if (point.at === 'pause' && line.startsWith(`hhkit test: checkpoint write of step ${point.step} held`))
      kill(child);
  };
  const env: Record<string, string> =
    point.at === 'pause' ? { HHKIT_TEST_CHECKPOINT_PAUSE: `${point.phase}@${point.step}` } : {};
  const run = await runHhkit(args, { env, onSpawn, onStderrLine, timeoutMs });
  for (const t of timers) clearInterval(t);
  (watcher as FSWatcher | null)?.close();
  if (run.signal !== 'SIGKILL' || armed) {
    throw new Error(
      `the run was not killed at ${describe(point)} (exit ${run.code}, signal ${run.signal}):\n${run.stderr}`,
    );
  }
  const dir = point.at === 'created' ? point.dir : null;
  const prefix = point.at === 'created' ? point.prefix : '';
  const leftovers = dir && existsSync(dir) ? readdirSync(dir).filter((n) => n.startsWith(prefix)) : [];
  return { point, run, leftovers };
}

/**
 * Runs `first` and kills it at `kills[0]`, then `again` (the same command, with --resume where the command
 * needs it) killed at each further point, then `again` to the end. Returns each kill and the final run,
 * which must exit 0 (rejects with its stderr otherwise).
 *
 * @example const { final } = await killAndResume(args, [...args, '--resume'], [{ at: 'pause', phase: 'link', step: 4 }]);
 */
export async function killAndResume(
  first: string[],
  again: string[],
  kills: readonly KillPoint[],
  timeoutMs = 60_000,
): Promise<{ kills: KillOutcome[]; final: CliRun }> {
  const outcomes: KillOutcome[] = [];
  for (const [i, point] of kills.entries())
    outcomes.push(await runAndKill(i === 0 ? first : again, point, timeoutMs));
  const final = await runHhkit(again, { timeoutMs });
  if (final.code !== 0) throw new Error(`the resumed run failed (exit ${final.code}):\n${final.stderr}`);
  return { kills: outcomes, final };
}

/** What a kill plan did, for assertion messages. */
export const killReport = (kills: readonly KillOutcome[]): string =>
  kills.map((k) => `${describe(k.point)} → leftovers [${k.leftovers.join(', ')}]`).join('\n');

/**
 * The files of `dir` (recursively, relative paths) whose bytes differ from those in `other`, or that only
 * one of them has; `only` picks the files compared by name.
 *
 * @example assert.deepEqual(differingFiles(a, b, (n) => n.endsWith('.safetensors')), []);
 */
export function differingFiles(dir: string, other: string, only: (name: string) => boolean): string[] {
  const list = (root: string, sub = ''): string[] =>
    readdirSync(join(root, sub), { withFileTypes: true }).flatMap((e) => {
      const rel = join(sub, e.name);
      if (e.isDirectory()) return list(root, rel);
      return only(e.name) ? [rel] : [];
    });
  const a = list(dir);
  const b = new Set(list(other));
  const differ = a.filter(
    (rel) => !b.has(rel) || !readFileSync(join(dir, rel)).equals(readFileSync(join(other, rel))),
  );
  return [...differ, ...[...b].filter((rel) => !a.includes(rel))];
}

/**
 * The lines of a metrics.jsonl as objects without the wall-clock fields (time, seconds, rates), which no
 * two runs share: what a resumed run's log must equal.
 */
export function metricsWithoutTimes(path: string): Record<string, unknown>[] {
  const CLOCK = new Set(['time', 'seconds', 'tokensPerSec']);
  return readFileSync(path, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .map((m) => Object.fromEntries(Object.entries(m).filter(([k]) => !CLOCK.has(k))));
}
