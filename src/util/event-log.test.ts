import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { OnlineEvent } from '../online/rounds.ts';
import type { PMTrainEvent } from '../pm/train.ts';
import type { DistillEvent } from '../rl/distill.ts';
import type { PPOEvent } from '../rl/ppo.ts';
import { type TrainEvent, trainLM } from '../train/loop.ts';
import { tinyConfig, tinyCorpus } from '../train/test-fixtures.ts';
import { EventLog, eventScalars, type LoggedEvent } from './event-log.ts';
import { crc32cBitwise, mask, readEventDirFiles, readEventFile } from './test-tfevents.ts';
import { crc32c, maskedCrc32c } from './tfevents.ts';

// Every trainer's event union goes to log.write as it is (checked by tsc: a false here does not compile).
type Accepts<E> = E extends LoggedEvent ? true : false;
export const accepted: [
  Accepts<TrainEvent>,
  Accepts<PMTrainEvent>,
  Accepts<DistillEvent>,
  Accepts<PPOEvent>,
  Accepts<OnlineEvent>,
] = [true, true, true, true, true];

const tempDir = (): string => mkdtempSync(join(tmpdir(), 'hhkit-eventlog-'));

test('CRC-32C matches the standard check values, and the masked CRC is TensorFlow mask()', () => {
  assert.equal(crc32c(new TextEncoder().encode('123456789')), 0xe3069283);
  assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa); // RFC 3720 B.4: 32 bytes of zeros
  assert.equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43); // … of 0xff
  const bytes = Uint8Array.from({ length: 300 }, (_, i) => (i * 37) % 256);
  assert.equal(crc32c(bytes), crc32cBitwise(bytes));
  assert.equal(maskedCrc32c(bytes), mask(crc32cBitwise(bytes)));
});

test('EventLog writes every event as a JSON line and the stepped ones as TensorBoard scalars', () => {
  const dir = tempDir();
  try {
    const log = new EventLog({
      jsonl: join(dir, 'events.jsonl'),
      tensorboard: join(dir, 'tb'),
      tagPrefix: 'ppo/',
    });
    const started = Date.now() / 1000;
    log.write({ type: 'data', train: 90, eval: 10, tokens: new Int32Array(5000) });
    log.write({ type: 'step', step: 1, loss: 2.5, lr: 1e-3, gradNorm: Number.NaN });
    log.write({
      type: 'step',
      metrics: { step: 2, reward: -0.25, kl: 0.0123, time: { rollout: 1.5 } },
    });
    log.write({ type: 'eval', step: 2, evaluation: { gold: 0.6, rewards: [1, 2, 3] } });
    log.write({ type: 'stage', round: 3, stage: 'pm', status: 'done', seconds: 12 });
    log.write({ type: 'checkpoint', step: 2, dir: '/x' });
    log.close();

    const lines = readFileSync(join(dir, 'events.jsonl'), 'utf8').trim().split('\n');
    assert.equal(lines.length, 6);
    const data = JSON.parse(lines[0]!) as { time: number; type: string; tokens: unknown };
    assert.equal(data.type, 'data');
    assert.deepEqual(data.tokens, { Int32Array: 5000 }, 'a typed array is its kind and length');
    assert.ok(data.time >= started - 1 && data.time <= Date.now() / 1000 + 1);

    const [file, ...others] = readdirSync(join(dir, 'tb'));
    assert.equal(others.length, 0);
    assert.match(file!, /^events\.out\.tfevents\.\d+\./, 'TensorBoard finds files by this name');
    const events = readEventFile(join(dir, 'tb', file!));
    assert.equal(events[0]!.fileVersion, 'brain.Event:2');
    assert.deepEqual(
      events.slice(1).map((e) => ({ step: e.step, values: e.values })),
      [
        // NaN is left out; float32 values; the data and checkpoint events have no scalar to show.
        {
          step: 1,
          values: [
            { tag: 'ppo/step/loss', value: 2.5 },
            { tag: 'ppo/step/lr', value: Math.fround(1e-3) },
          ],
        },
        {
          step: 2,
          values: [
            { tag: 'ppo/step/metrics/reward', value: -0.25 },
            { tag: 'ppo/step/metrics/kl', value: Math.fround(0.0123) },
            { tag: 'ppo/step/metrics/time/rollout', value: 1.5 },
          ],
        },
        { step: 2, values: [{ tag: 'ppo/eval/evaluation/gold', value: Math.fround(0.6) }] },
        { step: 3, values: [{ tag: 'ppo/stage/pm/seconds', value: 12 }] },
      ],
    );
    for (const e of events) assert.ok(Math.abs(e.wallTime - started) < 60, `wall time ${e.wallTime}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the reader sees a flipped byte in an event file (the CRCs are checked, not decoration)', () => {
  const dir = tempDir();
  try {
    const log = new EventLog({ tensorboard: dir });
    log.write({ type: 'step', step: 7, loss: 1.25 });
    log.close();
    const path = log.tensorboardFile!;
    assert.equal(readEventFile(path).length, 2);
    const bytes = readFileSync(path);
    bytes[bytes.length - 6]! ^= 0x01; // inside the last record's payload (its float)
    writeFileSync(path, bytes);
    assert.throws(() => readEventFile(path), /record 1: payload CRC mismatch/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("trainLM's events through onEvent: log.write give one loss scalar per step, equal to the events'", async () => {
  const dir = tempDir();
  try {
    const corpus = tinyCorpus(200);
    const losses: number[] = [];
    const log = new EventLog({ jsonl: join(dir, 'events.jsonl'), tensorboard: join(dir, 'tb') });
    await trainLM(tinyConfig(corpus, { out: join(dir, 'run'), steps: 6, evalEvery: 3 }), {
      tokenizer: corpus.tokenizer,
      onEvent: (e: TrainEvent) => {
        if (e.type === 'step') losses.push(e.loss);
        log.write(e);
      },
    });
    log.close();
    const events = readEventFile(log.tensorboardFile!);
    const lossAt = events.flatMap((e) =>
      e.values.filter((v) => v.tag === 'step/loss').map((v) => [e.step, v.value] as const),
    );
    assert.deepEqual(
      lossAt,
      losses.map((l, i) => [i + 1, Math.fround(l)] as const),
    );
    const evalSteps = events.filter((e) => e.values.some((v) => v.tag === 'eval/loss')).map((e) => e.step);
    assert.deepEqual(evalSteps, [3, 6]);
    const types = readFileSync(join(dir, 'events.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { type: string }).type);
    assert.equal(types.filter((t) => t === 'step').length, 6);
    assert.ok(types.includes('data') && types.includes('checkpoint'), types.join(','));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('eventScalars: no step, no scalars; a step of 0 counts', () => {
  assert.equal(eventScalars({ type: 'warning', message: 'x' }), null);
  assert.deepEqual(eventScalars({ type: 'step', step: 0, loss: 3 }), {
    step: 0,
    scalars: { 'step/loss': 3 },
  });
});

/** Every (tag, step, value) of the event files in `dir`, in TensorBoard's file order, sorted by tag and step. */
function folderValues(dir: string): [string, number, number][] {
  return readEventDirFiles(dir)
    .flatMap((events) =>
      events.flatMap((e) => e.values.map((v): [string, number, number] => [v.tag, e.step, v.value])),
    )
    .sort((a, b) => a[0].localeCompare(b[0]) || a[1] - b[1]);
}

test('a resumed log cuts the killed run back to its checkpoint and replaces what it logs again: each step once', () => {
  const dir = tempDir();
  try {
    // The killed run: steps 1–6 logged, an eval at 3 and 6, its last checkpoint at step 4, and a record
    // torn by the kill at the end of its file.
    const killed = new EventLog({ tensorboard: dir });
    for (let step = 1; step <= 6; step++) {
      killed.write({ type: 'step', step, loss: 10 + step });
      if (step % 3 === 0) killed.write({ type: 'eval', step, loss: 20 + step });
    }
    killed.close();
    appendFileSync(killed.tensorboardFile!, new Uint8Array([40, 0, 0, 0, 0, 0, 0, 0, 1, 2]));
    assert.throws(() => readEventFile(killed.tensorboardFile!), 'the torn tail is there to be cut');

    // The resumed run: from the step-4 checkpoint, steps 5–7 with other values, the closing eval at 6.
    const resumed = new EventLog({ tensorboard: dir, resume: true });
    resumed.write({ type: 'resume', step: 4, dir: 'ckpt' });
    for (let step = 5; step <= 7; step++) {
      resumed.write({ type: 'step', step, loss: 100 + step });
      if (step === 6) resumed.write({ type: 'eval', step, loss: 200 + step });
    }
    resumed.close();
    assert.equal(readdirSync(dir).length, 2, 'the killed run keeps its file, cut back');
    assert.deepEqual(folderValues(dir), [
      ['eval/loss', 3, 23],
      ['eval/loss', 6, 206],
      ['step/loss', 1, 11],
      ['step/loss', 2, 12],
      ['step/loss', 3, 13],
      ['step/loss', 4, 14],
      ['step/loss', 5, 105],
      ['step/loss', 6, 106],
      ['step/loss', 7, 107],
    ]);

    // A run that starts over (resumed with no checkpoint to resume from) replaces everything it logs
    // again; a file left with no scalar goes.
    const restarted = new EventLog({ tensorboard: dir, resume: true });
    restarted.write({ type: 'step', step: 1, loss: 1 });
    restarted.write({ type: 'eval', step: 1, loss: 2 });
    restarted.close();
    assert.deepEqual(folderValues(dir), [
      ['eval/loss', 1, 2],
      ['step/loss', 1, 1],
    ]);
    assert.equal(readdirSync(dir).length, 1, 'the two earlier files are empty of scalars and removed');

    // Without resume, files already in the folder are left as they are (TensorBoard merges them).
    const again = new EventLog({ tensorboard: dir });
    again.write({ type: 'step', step: 1, loss: 3 });
    again.close();
    assert.deepEqual(
      folderValues(dir).filter(([tag]) => tag === 'step/loss'),
      [
        ['step/loss', 1, 1],
        ['step/loss', 1, 3],
      ],
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('eventScalars: a nested event (online passing on a PPO step) is not flattened into its parent', () => {
  const nested = { type: 'ppo', round: 2, event: { type: 'step', metrics: { step: 7, reward: 0.5 } } };
  assert.deepEqual(eventScalars(nested), { step: 2, scalars: {} });
});
