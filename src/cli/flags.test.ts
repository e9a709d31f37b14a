// Every command refuses an option it does not know, before doing anything, with the list of the ones it
// knows (issue 14: `serve --signin-limt 0` used to start with the default). Walks the command registry, so a
// new command is covered without touching this file; commands with subcommands list their argv prefixes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UsageError } from './args.ts';
import { commands } from './commands.ts';
import { runHhkitSync } from './test-cli.ts';

/** The argv before the options, per command (default: none); launch's own options come before `--`. */
const invocations: Record<string, { before: string[]; after?: string[] }[]> = {
  pm: ['pretrain', 'train', 'eval', 'score', 'experiment'].map((sub) => ({ before: [sub] })),
  data: ['inspect', 'split', 'import', 'export'].map((sub) => ({ before: [sub] })),
  launch: [{ before: [], after: ['--', 'pretrain'] }],
};

for (const [name, load] of Object.entries(commands)) {
  for (const { before, after = [] } of invocations[name] ?? [{ before: [] }]) {
    const label = [name, ...before].join(' ');
    test(`hhkit ${label} refuses an unknown option with the known ones`, async () => {
      const { command } = await load();
      await assert.rejects(command.run([...before, '--no-such-option', '1', ...after]), (err: unknown) => {
        assert.ok(err instanceof UsageError, `got ${String(err)}`);
        assert.match(
          err.message,
          new RegExp(`^${label}: unknown option --no-such-option; known options: --`),
        );
        assert.match(err.message, /--json/);
        assert.doesNotMatch(err.message, /\n/);
        return true;
      });
    });
  }
}

test('a typo gets the nearest known option; through the CLI it is one line and exit 2', () => {
  const r = runHhkitSync(['serve', '--signin-limt', '0', '--db', 'x.db', '--models', 'm']);
  assert.equal(r.code, 2);
  assert.match(
    r.stderr,
    /^hhkit: serve: unknown option --signin-limt \(did you mean --signin-limit\?\); known/,
  );
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
});

test('a subcommand with help of its own shows it: hhkit pm experiment --help', () => {
  const r = runHhkitSync(['pm', 'experiment', '--help']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /^usage: hhkit pm experiment size\|pmp\|mix\|all/);
  // The other subcommands share the command's help, and so does a word that is not one.
  assert.match(runHhkitSync(['pm', 'train', '--help']).stdout, /^usage: hhkit pm pretrain/);
  assert.match(runHhkitSync(['pm', 'constructor', '--help']).stdout, /^usage: hhkit pm pretrain/);
});
