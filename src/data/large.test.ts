import assert from 'node:assert/strict';
import { createWriteStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { LoadReport, readComparisons } from './comparisons.ts';
import { formatComparison } from './format.ts';

// 200k comparisons of HH-like size (~600 bytes a line): the size of the full HH-RLHF training set.
const N = 200_000;
// A real gc() so the memory check measures what is retained, not garbage awaiting collection.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const dir = mkdtempSync(join(tmpdir(), 'hhkit-large-'));
after(() => rmSync(dir, { recursive: true, force: true }));

async function writeBigFile(path: string): Promise<void> {
  const out = createWriteStream(path);
  const filler = 'The capital of the country is a city with a long history and many museums. ';
  for (let start = 0; start < N; start += 10_000) {
    const lines: string[] = [];
    for (let i = start; i < start + 10_000; i++) {
      const prompt = `\n\nHuman: Question ${i}: tell me about place ${i % 977}?\n\nAssistant: Sure.\n\nHuman: More?\n\nAssistant:`;
      lines.push(
        formatComparison({
          chosen: `${prompt} ${filler.repeat(3)}${i}`,
          rejected: `${prompt} ${filler.repeat(2)}no`,
        }),
      );
    }
    if (!out.write(`${lines.join('\n')}\n`)) await new Promise<void>((r) => out.once('drain', () => r()));
  }
  await new Promise<void>((resolve, reject) =>
    out.end((err?: Error | null) => (err ? reject(err) : resolve())),
  );
}

test(`streams ${N} comparisons in seconds with bounded memory`, async () => {
  const path = join(dir, 'big.jsonl');
  await writeBigFile(path);
  const fileBytes = statSync(path).size;
  gc();
  const heapBefore = process.memoryUsage().heapUsed;
  let retainedPeak = 0;
  const report = new LoadReport();
  const started = performance.now();
  let count = 0;
  let chars = 0;
  let gcMs = 0;
  for await (const record of readComparisons(path, { report })) {
    count++;
    chars += record.chosen.length;
    if (count % 40_000 === 0) {
      const t = performance.now();
      gc();
      gcMs += performance.now() - t;
      retainedPeak = Math.max(retainedPeak, process.memoryUsage().heapUsed - heapBefore);
    }
  }
  const seconds = (performance.now() - started - gcMs) / 1000;
  const growthMiB = retainedPeak / 2 ** 20;
  console.log(
    `# ${count} records, ${(fileBytes / 2 ** 20).toFixed(0)} MiB in ${seconds.toFixed(2)} s ` +
      `(${Math.round(count / seconds)} rec/s); retained heap growth ${growthMiB.toFixed(1)} MiB; ` +
      `rss ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB`,
  );
  assert.equal(count, N);
  assert.equal(report.valid, N);
  assert.equal(report.bytes, fileBytes);
  assert.ok(chars > 0);
  assert.equal(report.stats.promptTurns.toJSON().p50, 4);
  // Bounded: the heap never holds more than a fraction of the file (it would be > fileBytes if it did).
  assert.ok(
    growthMiB < fileBytes / 2 ** 20 / 2,
    `heap grew ${growthMiB.toFixed(0)} MiB for a ${fileBytes} byte file`,
  );
  assert.ok(seconds < 30, `took ${seconds} s`);
});
