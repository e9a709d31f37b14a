// Issue 15, "bring your own model": every command takes `--init DIR` for its model folder, beside its own
// option (best-of-n, collect and robustness --policy, ood --model, eval and serve --models). Either names the model; both naming
// different folders is a usage error before anything loads.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { modelOption, UsageError } from './args.ts';
import { commands } from './commands.ts';
import { runHhkitSync } from './test-cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'hhkit-init-alias-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const notAModel = join(dir, 'not-a-model');
mkdirSync(notAModel);
const prompts = join(dir, 'prompts.jsonl');
writeFileSync(prompts, `${JSON.stringify({ prompt: '\n\nHuman: hi\n\nAssistant:' })}\n`);

test('modelOption: either option names the model; the same folder twice is fine; two folders are not', () => {
  assert.deepEqual(modelOption({ policy: 'a' }, 'best-of-n', 'policy'), { value: 'a', option: '--policy' });
  assert.deepEqual(modelOption({ init: 'a' }, 'best-of-n', 'policy'), { value: 'a', option: '--init' });
  assert.deepEqual(modelOption({ init: 'a/', policy: './a' }, 'best-of-n', 'policy'), {
    value: './a',
    option: '--policy',
  });
  assert.deepEqual(modelOption({}, 'ood', 'model'), { value: '', option: '--init' });
  assert.throws(
    () => modelOption({ init: 'a', model: 'b' }, 'ood', 'model'),
    (err: unknown) =>
      err instanceof UsageError &&
      err.message === 'ood: --init a and --model b name different models; give one of them',
  );
});

// Each command with only --init for its model gets as far as loading it: the folder is not a checkpoint.
const cases: { name: string; own: string; args: string[]; message: RegExp }[] = [
  {
    name: 'best-of-n',
    own: 'policy',
    args: ['--world', dir, '--reward', 'gold', '--device', 'cpu'],
    message: /not-a-model: not a checkpoint folder/,
  },
  {
    name: 'collect',
    own: 'policy',
    args: ['--world', dir, '--out', join(dir, 'collect')],
    message: /not-a-model: not a checkpoint folder/,
  },
  {
    name: 'robustness',
    own: 'policy',
    args: ['--world', dir, '--out', join(dir, 'robustness')],
    message: /not-a-model: not a checkpoint folder/,
  },
  { name: 'ood', own: 'model', args: ['--in', prompts, '--out-of', prompts], message: /not-a-model/ },
  {
    name: 'eval',
    own: 'models',
    args: ['--prompts', prompts, '--out', join(dir, 'eval.json')],
    message: /not-a-model/,
  },
  {
    name: 'serve',
    own: 'models',
    args: ['--db', join(dir, 'x.db')],
    message: /^--init: .*not-a-model is not a checkpoint folder/,
  },
];

for (const c of cases) {
  test(`hhkit ${c.name} takes --init for its model, and refuses --init and --${c.own} naming two`, async () => {
    const load = commands[c.name];
    assert.ok(load, c.name);
    const { command } = await load();
    assert.match(command.help, /--init /);
    await assert.rejects(command.run(['--init', notAModel, ...c.args]), (err: unknown) => {
      assert.ok(err instanceof Error, String(err));
      assert.doesNotMatch(err.message, /required/);
      assert.match(err.message, c.message);
      return true;
    });
    await assert.rejects(
      command.run(['--init', notAModel, `--${c.own}`, join(dir, 'other'), ...c.args]),
      (err: unknown) => {
        assert.ok(err instanceof UsageError, String(err));
        assert.match(
          err.message,
          new RegExp(`^${c.name}: --init .* and --${c.own} .* name different models`),
        );
        return true;
      },
    );
  });
}

test('through the CLI, --init and --policy naming two folders is one line and exit 2', () => {
  // biome-ignore format: option/value pairs
  const r = runHhkitSync(['best-of-n', '--init', notAModel, '--policy', join(dir, 'other'), '--world', dir,
    '--reward', 'gold']);
  assert.equal(r.code, 2, r.stderr);
  assert.match(
    r.stderr,
    /^hhkit: best-of-n: --init .*not-a-model and --policy .*other name different models/,
  );
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
});
