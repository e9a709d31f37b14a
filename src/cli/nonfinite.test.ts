// Issue 14 at the command line: a diverging run is one line naming the step and the last good checkpoint,
// exit 3, no stack trace; a checkpoint with NaN weights is refused by the commands that load one (one
// line naming the file and the tensor) unless --allow-nonfinite, and `serve` will not start on it.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { tinyCorpus } from '../train/test-fixtures.ts';
import { runHhkit } from './test-cli.ts';

// biome-ignore format: option/value pairs read best on few lines
const tiny = [
  '--vocab-size', '300', '--block-size', '32', '--n-layer', '1', '--n-head', '2', '--n-embd', '32',
  '--batch-size', '4', '--eval-every', '0', '--warmup-steps', '0',
];

/** The last line of stderr (where the one-line error is). */
const lastLine = (stderr: string): string => stderr.trim().split('\n').at(-1) ?? '';

/** Writes NaN over the first `floats` values of `tensor` in a checkpoint folder's model.safetensors. */
function poison(dir: string, tensor: string, floats: number): string {
  const path = join(dir, 'model.safetensors');
  const bytes = readFileSync(path);
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8')) as Record<
    string,
    { data_offsets: [number, number] }
  >;
  const start = 8 + headerLength + header[tensor]!.data_offsets[0];
  bytes.fill(0xff, start, start + 4 * floats);
  writeFileSync(path, bytes);
  return path;
}

test('pretrain --lr 1e6: one line naming step 2 and the last good checkpoint, exit 3; a NaN --init is refused unless --allow-nonfinite; serve refuses it', async () => {
  const corpus = tinyCorpus(100);
  const out = join(corpus.dir, 'lm');
  // biome-ignore format: a command line
  const diverged = await runHhkit(['pretrain', '--data', corpus.path, '--out', out, ...tiny, '--steps', '4',
    '--lr', '1e6', '--checkpoint-every', '1']);
  assert.equal(diverged.code, 3, diverged.stderr);
  assert.doesNotMatch(diverged.stderr, /^\s+at /m, 'no stack trace');
  const good = join(out, 'checkpoints', 'step-000001');
  assert.ok(
    lastLine(diverged.stderr).startsWith(
      `hhkit: pretrain step 2: the loss is NaN; training stopped before the update. The last good checkpoint is ${good} `,
    ),
    diverged.stderr,
  );

  // The good checkpoint with NaN written over 3 values: refused at load, naming the file and the tensor.
  const weights = poison(good, 'transformer.h.0.attn.c_proj.weight', 3);
  // biome-ignore format: a command line
  const sft = (extra: string[]) => runHhkit(['pretrain', '--data', corpus.path, '--out', join(corpus.dir, `sft${extra.length}`),
    ...tiny, '--steps', '2', '--lr', '1e-3', '--init', good, ...extra]);
  const refused = await sft([]);
  assert.equal(refused.code, 2, refused.stderr);
  assert.doesNotMatch(refused.stderr, /^\s+at /m, 'no stack trace');
  assert.ok(
    lastLine(refused.stderr).startsWith(
      `hhkit: ${weights}: tensor 'transformer.h.0.attn.c_proj.weight' holds 3 NaN/±Inf value(s) of 1024;`,
    ),
    refused.stderr,
  );
  // Allowed, it loads — and the first step's loss is NaN, so the run stops there, from the init.
  const allowed = await sft(['--allow-nonfinite']);
  assert.equal(allowed.code, 3, allowed.stderr);
  assert.match(
    lastLine(allowed.stderr),
    new RegExp(`^hhkit: pretrain step 1: the loss is NaN; .*the init ${good}`),
  );

  const served = await runHhkit([
    'serve',
    '--db',
    join(corpus.dir, 'db.sqlite'),
    '--models',
    good,
    '--port',
    '0',
  ]);
  assert.equal(served.code, 1, served.stderr);
  assert.ok(
    served.stderr.includes(
      `${weights}: tensor 'transformer.h.0.attn.c_proj.weight' holds 3 NaN/±Inf value(s)`,
    ),
    served.stderr,
  );
});
