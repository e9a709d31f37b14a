import { mkdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import {
  type ComparisonWriter,
  LoadReport,
  openComparisonWriter,
  type ReadOptions,
  readComparisonEntries,
} from '../data/comparisons.ts';
import { LINE_STYLES, type LineStyle } from '../data/format.ts';
import { assignSplit } from '../data/split.ts';
import { exportComparisons, importComparisons } from '../store/io.ts';
import { Store, type StoreTask } from '../store/store.ts';
import { Progress } from '../util/progress.ts';
import {
  numberOption,
  type OptionSpec,
  outputFile,
  outputFolder,
  type ParsedArgs,
  parseArgs,
  stringOption,
  UsageError,
} from './args.ts';
import type { Command } from './main.ts';
import { warnLoad } from './warnings.ts';

const help = `usage: hhkit data <subcommand> [options]

  inspect FILE…                 load comparison files (.jsonl / .jsonl.gz) and print the load report:
                                records, valid, each defect with counts and file:line examples,
                                notes on kept records, turn-count and length statistics
      --examples N              locations listed per kind (default 5)
  split FILE --out DIR          deterministic train/test split by conversation hash; lines are
                                copied unchanged into DIR/NAME.train.jsonl and DIR/NAME.test.jsonl
      --test-frac F             fraction for test (default 0.1)
      --seed S                  hash seed (default 0)
  import FILE… --db PATH        add the valid records to a store, all files in one transaction
  export --db PATH --out FILE   write the store's comparisons (imported lines come out byte-for-byte)
      --round N  --task helpful|red-team  --style hh|hh-utf8|compact

common options:
  --strict                      stop at the first bad line or truncated file (exit 1, file:line on stderr);
                                without it bad lines are counted and skipped, and a file that stops
                                mid-way (truncated .gz) is a WARNING line on stderr naming where
  --json                        the last stdout line is the summary as one JSON object`;

/** Progress over the bytes of all files, in KiB (the record count is not known before reading). */
function byteProgress(
  paths: readonly string[],
  label: string,
): { bar: Progress; forFile: () => ReadOptions } {
  const total = Math.max(1, Math.ceil(paths.reduce((n, p) => n + statSync(p).size, 0) / 1024));
  const bar = new Progress({ total, label, unit: 'KiB' });
  // Each file reports its own running byte count; tick by the difference.
  const forFile = (): ReadOptions => {
    let seen = 0;
    return {
      onBytes: (n) => {
        const kib = Math.floor(n / 1024);
        // A smaller count than before means the next file started from 0.
        bar.tick(kib >= seen ? kib - seen : kib);
        seen = kib;
      },
    };
  };
  return { bar, forFile };
}

/** Fills the bar (byte counts are floored to KiB) and draws its last line. */
function finish(bar: Progress): void {
  if (bar.current < bar.total) bar.tick(bar.total - bar.current);
  bar.done();
}

function requireFiles(args: ParsedArgs, min = 1): string[] {
  if (args.positionals.length < min) throw new UsageError(`expected a comparison file\n\n${help}`);
  for (const p of args.positionals) {
    try {
      if (!statSync(p).isFile()) throw new UsageError(`${p} is not a file`);
    } catch (err) {
      if (err instanceof UsageError) throw err;
      throw new UsageError(
        `cannot read ${p}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      );
    }
  }
  return args.positionals;
}

async function inspect(args: ParsedArgs): Promise<number> {
  const files = requireFiles(args);
  const report = new LoadReport(numberOption(args.options, 'examples', 5));
  const { forFile, bar } = byteProgress(files, 'inspect');
  for (const path of files) {
    for await (const _ of readComparisonEntries(path, {
      ...forFile(),
      report,
      strict: args.options['strict'] === true,
    })) {
      // Counting is all inspect does; the report sees every record.
    }
  }
  finish(bar);
  warnLoad(report);
  if (args.options['json']) console.log(JSON.stringify(report));
  else console.log(report.format());
  return 0;
}

function splitNames(path: string, dir: string): { train: string; test: string } {
  const name = basename(path);
  const gz = name.endsWith('.gz') ? '.gz' : '';
  const stem = name.replace(/\.gz$/, '').replace(/\.jsonl?$/, '');
  return { train: join(dir, `${stem}.train.jsonl${gz}`), test: join(dir, `${stem}.test.jsonl${gz}`) };
}

async function split(args: ParsedArgs): Promise<number> {
  const [file] = requireFiles(args);
  const out = args.options['out'];
  if (typeof out !== 'string') throw new UsageError('split needs --out DIR');
  outputFolder(out, '--out');
  const testFrac = numberOption(args.options, 'test-frac', 0.1);
  if (testFrac < 0 || testFrac > 1) throw new UsageError(`--test-frac must be in [0, 1], got ${testFrac}`);
  const seed = numberOption(args.options, 'seed', 0);
  mkdirSync(out, { recursive: true });
  const names = splitNames(file!, out);
  const writers: Record<'train' | 'test', ComparisonWriter> = {
    train: await openComparisonWriter(names.train),
    test: await openComparisonWriter(names.test),
  };
  const report = new LoadReport();
  const { forFile, bar } = byteProgress([file!], 'split');
  try {
    for await (const entry of readComparisonEntries(file!, {
      ...forFile(),
      report,
      strict: args.options['strict'] === true,
    })) {
      await writers[assignSplit(entry.record, testFrac, seed)].writeLine(entry.raw);
    }
  } catch (err) {
    await Promise.all([writers.train.abort(), writers.test.abort()]);
    throw err;
  }
  const [train, test] = [await writers.train.close(), await writers.test.close()];
  finish(bar);
  warnLoad(report);
  const summary = { train, test, trainFile: names.train, testFile: names.test, testFrac, seed, report };
  if (args.options['json']) console.log(JSON.stringify(summary));
  else console.log(`${report.format()}\n\ntrain: ${train} → ${names.train}\ntest:  ${test} → ${names.test}`);
  return 0;
}

async function importCmd(args: ParsedArgs): Promise<number> {
  const files = requireFiles(args);
  const db = stringOption(args.options, 'db', '');
  if (!db) throw new UsageError('import needs --db PATH');
  using store = Store.open(db);
  const { forFile, bar } = byteProgress(files, 'import');
  const result = await importComparisons(store, files, {
    ...forFile(),
    strict: args.options['strict'] === true,
  });
  finish(bar);
  warnLoad(result.report);
  if (args.options['json']) console.log(JSON.stringify({ db, ...result }));
  else console.log(`${result.report.format()}\n\nimported ${result.imported} comparisons into ${db}`);
  return 0;
}

async function exportCmd(args: ParsedArgs): Promise<number> {
  const db = stringOption(args.options, 'db', '');
  const out = stringOption(args.options, 'out', '');
  if (!db || !out) throw new UsageError('export needs --db PATH and --out FILE');
  outputFile(out, '--out');
  const style = stringOption(args.options, 'style', 'hh') as LineStyle;
  if (!LINE_STYLES.includes(style)) throw new UsageError(`--style must be one of ${LINE_STYLES.join(', ')}`);
  const task = args.options['task'];
  if (task !== undefined && task !== 'helpful' && task !== 'red-team') {
    throw new UsageError('--task must be helpful or red-team');
  }
  const round = args.options['round'] === undefined ? undefined : numberOption(args.options, 'round', 0);
  using store = Store.open(db, { mustExist: true });
  const count = await exportComparisons(store, out, {
    style,
    filter: { round, task: task as StoreTask | undefined },
  });
  if (args.options['json']) console.log(JSON.stringify({ db, out, count }));
  else console.log(`exported ${count} comparisons to ${out}`);
  return 0;
}

const subcommands: Record<string, { run: (args: ParsedArgs) => Promise<number>; values: string[] }> = {
  inspect: { run: inspect, values: ['examples'] },
  split: { run: split, values: ['out', 'test-frac', 'seed'] },
  import: { run: importCmd, values: ['db'] },
  export: { run: exportCmd, values: ['db', 'out', 'round', 'task', 'style'] },
};

export const command: Command = {
  summary: 'inspect, split, import and export comparison files',
  help,
  async run(argv: string[]): Promise<number> {
    const [sub, ...rest] = argv;
    const found = sub === undefined ? undefined : subcommands[sub];
    if (!found) throw new UsageError(`unknown subcommand ${JSON.stringify(sub ?? '')}\n\n${help}`);
    const spec: OptionSpec = { command: `data ${sub}`, values: found.values, flags: ['strict'] };
    // A strict-mode stop (exit 1) or a bad store (exit 2) is one line from main, not a crash.
    return found.run(parseArgs(rest, spec));
  },
};
