import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  type CrowdMode,
  CrowdPool,
  CrowdWorker,
  calibrateScale,
  defaultCrowdConfig,
  drawWorkerProfiles,
  type JudgedResponse,
  type WorkerProfile,
} from './crowd.ts';
import { helpfulFamilyWeights } from './generate.ts';
import { candidatePair, goldValue, labelComparison } from './labels.ts';
import { sampleRequest } from './requests.ts';
import { Rng } from './rng.ts';

type Pair = [JudgedResponse, JudgedResponse];

function pairs(seed: number, mode: CrowdMode, n: number): Pair[] {
  const rng = new Rng(seed);
  const families = mode === 'helpful' ? helpfulFamilyWeights : { harmful: 1 };
  return Array.from({ length: n }, () => {
    const [a, b] = candidatePair(rng, sampleRequest(rng, families));
    return [a.judged, b.judged];
  });
}

/** Two different workers (by workload share) label each pair; the fraction of pairs they agree on. */
function measuredAgreement(rng: Rng, pool: CrowdPool, mode: CrowdMode, evalPairs: Pair[]): number {
  let agree = 0;
  for (const [a, b] of evalPairs) {
    const first = pool.pickWorker(rng, mode);
    let second = pool.pickWorker(rng, mode);
    while (second === first) second = pool.pickWorker(rng, mode);
    agree += first.choose(rng, mode, a, b).picksA === second.choose(rng, mode, a, b).picksA ? 1 : 0;
  }
  return agree / evalPairs.length;
}

/** Fraction of a worker's picks that match the gold ordering, over pairs whose gold values differ. */
function accuracyVsGold(rng: Rng, pool: CrowdPool, mode: CrowdMode, evalPairs: Pair[]): number {
  let right = 0;
  let decided = 0;
  for (const [a, b] of evalPairs) {
    const gap = goldValue(mode, a) - goldValue(mode, b);
    if (Math.abs(gap) < 1e-9) continue;
    const { picksA } = pool.pickWorker(rng, mode).choose(rng, mode, a, b);
    right += picksA === gap > 0 ? 1 : 0;
    decided++;
  }
  return right / decided;
}

function calibratedPool(target: number): CrowdPool {
  const profiles = drawWorkerProfiles(new Rng(11), defaultCrowdConfig);
  return new CrowdPool(profiles, {
    helpful: calibrateScale(profiles, 'helpful', pairs(12, 'helpful', 600), target),
    'red-team': calibrateScale(profiles, 'red-team', pairs(13, 'red-team', 600), target),
  });
}

describe('simulated crowdworkers', () => {
  const pool = calibratedPool(defaultCrowdConfig.targetAgreement);
  // Held-out pairs: calibration and measurement use different requests.
  const helpfulPairs = pairs(21, 'helpful', 4000);
  const harmfulPairs = pairs(22, 'red-team', 3000);

  test('two workers agree within the paper-like band (63–70%) by default', (t) => {
    const helpful = measuredAgreement(new Rng(31), pool, 'helpful', helpfulPairs);
    const redTeam = measuredAgreement(new Rng(32), pool, 'red-team', harmfulPairs);
    t.diagnostic(`measured agreement: helpful ${helpful.toFixed(3)}, red-team ${redTeam.toFixed(3)}`);
    for (const agreement of [helpful, redTeam])
      assert.ok(agreement >= 0.63 && agreement <= 0.7, `agreement ${agreement}`);
  });

  test('agreement is tunable', (t) => {
    for (const target of [0.6, 0.75]) {
      const measured = measuredAgreement(new Rng(33), calibratedPool(target), 'helpful', helpfulPairs);
      t.diagnostic(`target ${target}: measured ${measured.toFixed(3)}`);
      assert.ok(Math.abs(measured - target) < 0.03, `target ${target}, measured ${measured}`);
    }
  });

  test('a single worker agrees with the gold ordering most of the time, not always', (t) => {
    const helpful = accuracyVsGold(new Rng(41), pool, 'helpful', helpfulPairs);
    const redTeam = accuracyVsGold(new Rng(42), pool, 'red-team', harmfulPairs);
    t.diagnostic(
      `single-worker accuracy vs gold: helpful ${helpful.toFixed(3)}, red-team ${redTeam.toFixed(3)}`,
    );
    for (const accuracy of [helpful, redTeam])
      assert.ok(accuracy > 0.7 && accuracy < 0.9, `accuracy ${accuracy}`);
  });

  test('red-team data stores the less harmful response as chosen', () => {
    const rng = new Rng(51);
    let refusalChosen = 0;
    let decisive = 0;
    for (let i = 0; i < 1500; i++) {
      const c = labelComparison(rng, pool, 'red-team', sampleRequest(rng, 'harmful'));
      assert.equal(c.record.task, 'harmless');
      const [chosen, rejected] = c.kinds;
      // Pairs of compliance against anything else: the compliance should be stored as rejected.
      if ((chosen === 'harmful') === (rejected === 'harmful')) continue;
      decisive++;
      refusalChosen += rejected === 'harmful' ? 1 : 0;
    }
    assert.ok(decisive > 100);
    assert.ok(refusalChosen / decisive > 0.9, `compliance rejected in ${refusalChosen}/${decisive}`);
  });

  test('a length-biased worker prefers the longer of two equally good responses', () => {
    const profile: WorkerProfile = { id: 'w', tau: 1, lengthBias: 0.15, positionBias: 0, weight: 1 };
    const gold = { helpfulness: 0.5, harmlessness: 1, hh: 0.75, outcome: 'correct' as const };
    const worker = new CrowdWorker(profile, 0.2);
    const long = { gold, words: 80 };
    const short = { gold, words: 10 };
    assert.ok(worker.probabilityA('helpful', long, short) > 0.6);
    assert.ok(worker.probabilityA('helpful', short, long) < 0.4);
    const neutral = new CrowdWorker({ ...profile, lengthBias: 0 }, 0.2);
    assert.equal(neutral.probabilityA('helpful', long, short), 0.5);
  });
});
