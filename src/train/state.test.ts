import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { AdamW, manualSeed, rand, type Tensor, tensor } from '../engine/index.ts';
import {
  initialTrainerState,
  readTrainingCheckpoint,
  generatorStates,
  startTrainingRun,
  writeTrainingCheckpoint,
} from './state.ts';

// A checkpoint of step 3 holding `generators`, written as the trainers do (the model files left out).
function checkpointWith(generators: Record<string, Tensor>): string {
  const out = mkdtempSync(join(tmpdir(), 'hhkit-state-'));
  const p = tensor([1, 2, 3]).requiresGrad_();
  const optimizer = new AdamW([p], { lr: 0.1 });
  p.sum().backward();
  optimizer.step();
  const trainer = { ...initialTrainerState({}), step: 3 };
  writeTrainingCheckpoint(
    out,
    trainer,
    optimizer.state(),
    generators,
    (dir, files) => {
      mkdirSync(dir, { recursive: true });
      for (const [name, data] of Object.entries(files)) writeFileSync(join(dir, name), data);
    },
    2,
  );
  return out;
}

// The first draws of the CPU generator after a resume of rank `rank` from `out`.
function drawsAfterResume(out: string, rank: number): number[] {
  manualSeed(999); // whatever the process drew before
  const ckpt = readTrainingCheckpoint(out);
  assert.ok(ckpt);
  const p = tensor([0, 0, 0]).requiresGrad_();
  const optimizer = new AdamW([p], { lr: 0.1 });
  const reducer = startTrainingRun({
    ckpt,
    optimizer,
    params: [p],
    metricsPath: join(out, 'metrics.jsonl'),
    seed: 1,
    rank,
    device: 'cpu',
    out,
    keepCheckpoints: 2,
  });
  reducer.dispose();
  return rand([6]).toArray() as number[];
}

test('the generator state at a checkpoint is where each rank goes on: rank 0 from rng.cpu.0, an old single "rng" tensor too, rank 1 from rng.cpu.1', () => {
  manualSeed(123);
  rand([5]);
  const saved = generatorStates('cpu');
  assert.deepEqual(Object.keys(saved), ['rng.cpu.0'], 'one process: its CPU generator alone');
  const expected = rand([6]).toArray() as number[];
  assert.deepEqual(drawsAfterResume(checkpointWith(saved), 0), expected);
  // Checkpoints from before per-rank states hold rank 0's CPU state as 'rng'.
  assert.deepEqual(drawsAfterResume(checkpointWith({ rng: saved['rng.cpu.0']! }), 0), expected);
  // A second rank's own state (here another stream) is rank 1's on resume, not rank 0's.
  manualSeed(77);
  const other = generatorStates('cpu')['rng.cpu.0']!;
  const otherDraws = rand([6]).toArray() as number[];
  const both = checkpointWith({ 'rng.cpu.0': saved['rng.cpu.0']!, 'rng.cpu.1': other });
  assert.deepEqual(drawsAfterResume(both, 1), otherDraws);
  assert.deepEqual(drawsAfterResume(both, 0), expected);
});

test('a rank with no saved generator state (a checkpoint of fewer processes) takes a fresh stream seeded by (seed, rank, step)', () => {
  manualSeed(123);
  const out = checkpointWith(generatorStates('cpu'));
  manualSeed(1 + 1 + 7919 * 3);
  const fresh = rand([6]).toArray() as number[];
  assert.deepEqual(drawsAfterResume(out, 1), fresh);
});
