import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { claimStatus, demoClaims, formatClaims } from './demo-claims.ts';
import { runHhkitSync } from './test-cli.ts';

/** A run folder holding only a best-of-N result whose best-of-16 beats best-of-1 by `gain` on every prompt. */
function bestOfNRun(gain: number, at4: number): string {
  const out = mkdtempSync(join(tmpdir(), 'hhkit-claims-'));
  mkdirSync(join(out, 'best-of-n'));
  const prompts = 64;
  const golds = (g: number) => Array.from({ length: prompts }, (_, i) => g + ((i % 8) - 3.5) / 100);
  const rows = [
    { n: 1, gold: 0.6, golds: golds(0.6) },
    { n: 4, gold: 0.6 + at4, golds: golds(0.6 + at4) },
    { n: 16, gold: 0.6 + gain, golds: golds(0.6 + gain) },
  ];
  writeFileSync(join(out, 'best-of-n', 'best-of-n.json'), JSON.stringify({ rows }));
  return out;
}

const options = { seed: 1, seconds: 100, timing: 'no-setup' as const, full: false, scale: 'full' as const };
const bon = (out: string) => demoClaims(out, options).find((c) => c.stage === 'best-of-n')!;

test('a claim is HELD at its target, SHORT in the right direction below it, FAILED the wrong way', () => {
  const held = bon(bestOfNRun(0.12, 0.08));
  assert.equal(claimStatus(held), 'HELD');
  // Rising and clearly above zero, but below the full scale's 0.08: short, not a failure of the stage.
  const short = bon(bestOfNRun(0.05, 0.03));
  assert.equal(claimStatus(short), 'SHORT');
  assert.ok(short.value && short.value.lower > 0);
  // Best-of-16 below best-of-1: the PM picks worse than chance — the wrong way.
  const wrong = bon(bestOfNRun(-0.03, -0.01));
  assert.equal(claimStatus(wrong), 'FAILED');
  assert.match(
    formatClaims([held, short, wrong]),
    /HELD {3}best-of-n[\s\S]*SHORT {2}best-of-n[\s\S]*FAILED best-of-n/,
  );
});

test('a stage that left no results is FAILED; the time budget and a resumed run never fail the run', () => {
  const claims = demoClaims(bestOfNRun(0.12, 0.08), { ...options, seconds: 5000 });
  const ppo = claims.find((c) => c.stage === 'ppo')!;
  assert.equal(ppo.value, null);
  assert.equal(claimStatus(ppo), 'FAILED');
  const time = claims.find((c) => c.stage === 'demo')!;
  assert.equal(claimStatus(time), 'SHORT');
  const resumed = demoClaims(bestOfNRun(0.12, 0.08), { ...options, seconds: 5000, timing: 'resumed' });
  assert.equal(claimStatus(resumed.find((c) => c.stage === 'demo')!), 'HELD');
});

test('demo refuses to resume a run folder of another seed (exit 2), naming both seeds', () => {
  const out = mkdtempSync(join(tmpdir(), 'hhkit-demo-seed-'));
  mkdirSync(join(out, 'world'));
  writeFileSync(join(out, 'world', 'manifest.json'), JSON.stringify({ format: 'hhkit-world/1', seed: 1 }));
  const run = runHhkitSync(['demo', '--seed', '2', '--out', out]);
  assert.equal(run.code, 2, run.stderr);
  assert.match(run.stderr, /holds a demo run of seed 1, not 2/);
});

test('the early linear fit of the robustness curve counts only over at least 4 snapshots', () => {
  const out = mkdtempSync(join(tmpdir(), 'hhkit-claims-'));
  mkdirSync(join(out, 'robustness'));
  const fit = (n: number) =>
    writeFileSync(
      join(out, 'robustness', 'robustness.json'),
      JSON.stringify({ fits: { trainPM: { r2: 1, xMax: 0.4, n } }, atLargestKL: null }),
    );
  const r2 = () => demoClaims(out, options).find((c) => c.stage === 'robustness' && /R²/.test(c.figure))!;
  fit(2); // a line through two points always has R² 1
  assert.equal(r2().held, false);
  assert.match(r2().note ?? '', /only 2 snapshots/);
  fit(5);
  assert.equal(claimStatus(r2()), 'HELD');
});

test('over-optimisation the wrong way is SHORT, never FAILED, and its note says it was not shown', () => {
  const claim = (
    trainGain: number,
    testGain: number,
    gainFraction?: { early: number; atLargestKL: number },
  ) => {
    const out = mkdtempSync(join(tmpdir(), 'hhkit-claims-over-'));
    mkdirSync(join(out, 'robustness'));
    writeFileSync(
      join(out, 'robustness', 'robustness.json'),
      JSON.stringify({
        fits: null,
        atLargestKL: { sqrtKL: 1.1, trainGain, testGain, goldGain: 0.2 },
        ...(gainFraction ? { gainFraction } : {}),
      }),
    );
    return demoClaims(out, options).find((c) => c.stage === 'robustness' && /train PM gain/.test(c.figure))!;
  };
  const shown = claim(0.35, 0.3);
  assert.equal(claimStatus(shown), 'HELD');
  assert.equal(shown.note, undefined);
  const notShown = claim(0.35, 0.43);
  assert.equal(claimStatus(notShown), 'SHORT');
  assert.match(notShown.note!, /not shown: the test PM gained as much as the train PM/);
  // The fraction in each PM's own units rides along in the note, whatever the verdict.
  const both = claim(0.35, 0.43, { early: 0.934, atLargestKL: 0.918 });
  assert.match(
    both.note!,
    /not shown: .*; in each PM's own units the test PM's gain is 0\.93 of the train PM's early and 0\.92 at this KL/,
  );
  assert.match(
    claim(0.35, 0.3, { early: 0.96, atLargestKL: 0.79 }).note!,
    /^in each PM's own units .* 0\.96 .* 0\.79 at this KL$/,
  );
  // A fraction written with a null field (JSON has no NaN) leaves no note rather than a crash.
  assert.equal(claim(0.35, 0.3, { early: null, atLargestKL: 0.79 } as never).note, undefined);
});

test('PMP at small data: HELD when its interval is above 0, SHORT the right way without, FAILED the wrong way', () => {
  const run = (value: number, lower: number, upper: number, holds: boolean) => {
    const out = mkdtempSync(join(tmpdir(), 'hhkit-claims-'));
    mkdirSync(join(out, 'pm-size'));
    const exp = { experiment: 'pmp', holds, verdict: 'v', value: { value, lower, upper, level: 0.95, n: 5 } };
    writeFileSync(join(out, 'pm-size', 'pmp.json'), JSON.stringify(exp));
    return demoClaims(out, { ...options, full: true }).find((c) => c.figure.startsWith('PMP'))!;
  };
  assert.equal(claimStatus(run(0.04, 0.01, 0.07, true)), 'HELD');
  const short = run(0.017, -0.025, 0.055, false);
  assert.equal(claimStatus(short), 'SHORT');
  assert.equal(short.value?.value, 0.017);
  assert.equal(claimStatus(run(-0.02, -0.05, 0.01, false)), 'FAILED');
  // A file from before experiments carried their effect: its verdict alone decides.
  const out = mkdtempSync(join(tmpdir(), 'hhkit-claims-'));
  mkdirSync(join(out, 'pm-size'));
  writeFileSync(join(out, 'pm-size', 'pmp.json'), JSON.stringify({ holds: false, verdict: 'not shown' }));
  const old = demoClaims(out, { ...options, full: true }).find((c) => c.figure.startsWith('PMP'))!;
  assert.equal(old.value, null);
  assert.equal(claimStatus(old), 'FAILED');
});
