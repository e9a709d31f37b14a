import assert from 'node:assert/strict';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readlinkSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { commitStepFolder, latestStepFolder, pruneStepFolders } from './step-folders.ts';

const folder = (dir: string): void => {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'state.json'), '{}');
};

// What kills at every point of earlier writes leave: a step folder never linked (step 6, newer than the
// linked 4), saveCheckpoint's half-written temp folder and its backup of a folder it was replacing, and a
// temporary link of a process that died before its rename.
function killedRun(): string {
  const out = mkdtempSync(join(tmpdir(), 'hhkit-steps-'));
  for (const step of ['step-000002', 'step-000004', 'step-000006']) folder(join(out, 'checkpoints', step));
  mkdirSync(join(out, 'checkpoints', '.step-000008.tmp-4242-abc'));
  folder(join(out, 'checkpoints', '.step-000006.old-4242-abd'));
  symlinkSync(join('checkpoints', 'step-000004'), join(out, 'checkpoint'));
  symlinkSync(join('checkpoints', 'step-000006'), join(out, '.checkpoint.tmp-4242'));
  return out;
}

test('a resume prunes what killed writes left, never the folder OUT/checkpoint points at', () => {
  const out = killedRun();
  assert.equal(latestStepFolder(out, 'state.json'), join(out, 'checkpoints', 'step-000004'));
  pruneStepFolders(out, 1);
  // keep 1: step 6 is the newest; step 4 stays as OUT/checkpoint's target (a resume goes on from it)
  assert.deepEqual(readdirSync(join(out, 'checkpoints')), ['step-000004', 'step-000006']);
  assert.deepEqual(readdirSync(out).sort(), ['checkpoint', 'checkpoints']);
  assert.equal(readlinkSync(join(out, 'checkpoint')), join('checkpoints', 'step-000004'));
});

test('the next write replaces a stale step folder, moves OUT/checkpoint and keeps the newest `keep`', () => {
  const out = killedRun();
  const dir = commitStepFolder(
    out,
    6,
    (d) => {
      assert.ok(existsSync(d), 'the stale, never-linked step-6 folder is there to be replaced');
      writeFileSync(join(d, 'state.json'), '{"step":6}');
    },
    2,
  );
  assert.equal(latestStepFolder(out, 'state.json'), dir);
  assert.deepEqual(readdirSync(join(out, 'checkpoints')), ['step-000004', 'step-000006']);
  assert.deepEqual(readdirSync(out).sort(), ['checkpoint', 'checkpoints']);
});
