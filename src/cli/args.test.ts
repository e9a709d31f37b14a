// The one option mechanism (parseArgs with an OptionSpec): unknown options are refused with the nearest
// known one and the list, from the command line and from a --config file; both spellings of a key read as one.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { nearestOption, type OptionSpec, parseArgs, UsageError } from './args.ts';

const dir = mkdtempSync(join(tmpdir(), 'hhkit-args-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const spec: OptionSpec = { command: 'serve', values: ['db', 'signin-limit', 'batch-size'], flags: ['log'] };

test('a known option parses, in either spelling, and flags take no value', () => {
  const { options, positionals } = parseArgs(
    ['x.jsonl', '--signin-limit', '0', '--batchSize=8', '--log'],
    spec,
  );
  assert.deepEqual(options, { 'signin-limit': '0', 'batch-size': '8', log: true });
  assert.deepEqual(positionals, ['x.jsonl']);
});

test('an unknown option is a UsageError with the nearest known option and the full list', () => {
  assert.throws(
    () => parseArgs(['--signin-limt', '0'], spec),
    (err: unknown) =>
      err instanceof UsageError &&
      err.message ===
        'serve: unknown option --signin-limt (did you mean --signin-limit?); known options: --db, ' +
          '--signin-limit, --batch-size, --log, --help, --json, --config',
  );
  // Nothing near: no suggestion, still the list.
  assert.throws(() => parseArgs(['--zzzzzzzz'], spec), /unknown option --zzzzzzzz; known options: --db/);
});

test('an unknown key in a --config file is refused too, naming the file', () => {
  const config = join(dir, 'c.json');
  writeFileSync(config, JSON.stringify({ db: 'a.db', signinLimt: 3 }));
  assert.throws(
    () => parseArgs(['--config', config], spec),
    new RegExp(`unknown option --signin-limt in config file ${config} \\(did you mean --signin-limit\\?\\)`),
  );
});

test('prefixes admit a family of keys another layer validates', () => {
  const { options } = parseArgs(['--ppo-anything', '1'], { command: 'online', prefixes: ['ppo-'] });
  assert.equal(options['ppo-anything'], '1');
});

test('nearestOption ignores dashes and case, and suggests nothing far away', () => {
  assert.equal(nearestOption('batchsize', ['batch-size', 'steps']), 'batch-size');
  assert.equal(nearestOption('stpes', ['batch-size', 'steps']), 'steps');
  assert.equal(nearestOption('tokenizer', ['db', 'port']), null);
});
