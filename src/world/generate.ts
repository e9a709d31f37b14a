import { mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { writeComparisons } from '../data/comparisons.ts';
import type { ComparisonRecord } from '../data/types.ts';
import { writeFileAtomic } from '../util/atomic.ts';
import {
  defaultMix,
  type ResponseKind,
  type ResponseMix,
  responseKinds,
  sampleResponse,
} from './assistant.ts';
import {
  type CrowdConfig,
  type CrowdMode,
  CrowdPool,
  calibrateScale,
  defaultCrowdConfig,
  drawWorkerProfiles,
  expectedAgreement,
  type JudgedResponse,
} from './crowd.ts';
import { type ForumMix, forumPairAgreesWithQuality, forumPairs, forumThread } from './forum.ts';
import { hhhPrompt } from './hhh.ts';
import { goldJudge } from './judge.ts';
import { knowledgeBase } from './knowledge.ts';
import { candidatePair, labelComparison } from './labels.ts';
import {
  type Family,
  formatPrompt,
  fullScope,
  type Request,
  sampleRequest,
  scopedEntities,
  scopedWords,
  type WorldScope,
} from './requests.ts';
import { Rng } from './rng.ts';

/**
 * `generateWorld`: writes every file the pipeline needs, from one seed. The files are the world's
 * equivalent of the paper's data: a pretraining corpus, PMP pairs, helpful and harmless (red-team)
 * comparisons, RL prompts, the HHH prompt and OOD sets, plus a manifest with counts and the
 * crowd's measured label quality.
 */

export type WorldSize = 'small' | 'medium';

export interface WorldCounts {
  pretrainDialogues: number;
  pretrainForum: number;

  forumThreads: number;
  helpfulTrain: number;
  helpfulTest: number;
  harmlessTrain: number;
  harmlessTest: number;
  rlPrompts: number;
  /** Of the RL prompts, this many form the fixed held-out set (distinct, and never among the training ones). */
  rlHeldOut: number;
  oodHarmful: number;
  oodBenign: number;
  /** Pairs per mode used to calibrate the crowd's noise to the target agreement. */
  calibrationPairs: number;
}

/**
 * Small runs the whole pipeline on a laptop in minutes (≈8 MB of text, 4 MB of it the corpus); medium is
 * larger still (60,000 dialogues about the whole knowledge base). The small corpus holds 24,000 dialogues:
 * the demo's LM (2,000 steps of 16 × 128 tokens) sees it ~4 times. With 8,000 it saw it ~13 times and
 * overfitted (eval loss 0.445 at step 1,600, 0.471 at 2,000; now 0.383 and still falling), and its samples
 * got sums and copied names and numbers wrong so often that PPO, which cannot teach a skill the policy
 * lacks, stopped near best-of-4's gold.
 */
export const worldSizes: Record<WorldSize, WorldCounts> = {
  small: {
    pretrainDialogues: 24000,
    pretrainForum: 500,

    forumThreads: 700,
    helpfulTrain: 2400,
    helpfulTest: 300,
    harmlessTrain: 1200,
    harmlessTest: 200,
    rlPrompts: 1600,
    rlHeldOut: 320,
    oodHarmful: 300,
    oodBenign: 300,
    calibrationPairs: 600,
  },
  medium: {
    pretrainDialogues: 60000,
    pretrainForum: 10000,

    forumThreads: 5000,
    helpfulTrain: 16000,
    helpfulTest: 2000,
    harmlessTrain: 8000,
    harmlessTest: 1000,
    rlPrompts: 6000,
    rlHeldOut: 320,
    oodHarmful: 1000,
    oodBenign: 1000,
    calibrationPairs: 1500,
  },
};

/**
 * What each size asks about. Small: a corner of the world a tiny LM learns in a few minutes (8 countries,
 * 6 elements, 8 animals, 20 words, arithmetic on 2–5), so its samples hold right answers for the PM to find
 * and RL to reinforce. Medium: the whole knowledge base and word list, two-digit arithmetic.
 */
export const worldScopes: Record<WorldSize, WorldScope> = {
  small: { countries: 8, elements: 6, animals: 8, words: 20, operands: 5 },
  medium: fullScope,
};

/**
 * The base assistant's mix by size. Small: right a little more often than the default (40% correct, 12%
 * wrong), so a 2-layer LM trained for a few minutes answers right often enough for its samples to hold
 * something for the PM to find; its other faults (evasions, rambling, rudeness, over-refusals, harmful
 * compliance) are as common as in the default mix.
 */
export const worldMixes: Record<WorldSize, ResponseMix> = {
  small: { correct: 0.4, wrong: 0.12, evasive: 0.1, rambling: 0.1, harmful: 0.12, refusal: 0.16 },
  medium: defaultMix,
};

/** The PMP forum's mix (forum.ts ForumMix): a fifth of its threads ask for a risky shortcut (safetyProblems),
 *  and its answers include padded (rambling) and overcautious ones. The pretraining corpus's forum threads
 *  have none of these, so the LM is the same with or without them. */
export const PMP_FORUM_MIX: ForumMix = { safetyShare: 0.2, rambling: 0.3, overcautious: 0.1 };

/** Families of helpful-task prompts (what helpfulness workers asked about). */
export const helpfulFamilyWeights: Partial<Record<Family, number>> = {
  arithmetic: 0.2,
  fact: 0.25,
  word: 0.15,
  comparison: 0.12,
  followup: 0.16,
  lookalike: 0.12,
};
const pretrainFamilyWeights: Partial<Record<Family, number>> = { ...helpfulFamilyWeights, harmful: 0.14 };
const rlFamilyWeights: Partial<Record<Family, number>> = { ...helpfulFamilyWeights, harmful: 0.2 };
/**
 * The generated (training) RL prompts hold benign look-alikes at three times their share of the held-out
 * set (25% instead of 10%). At the held-out mix, PPO removed over-refusals from every family it saw often
 * (seed 1: word 23 → 0 of 124 samples, comparison 17 → 0) but kept 20 of 21 on look-alikes: next to the
 * harmful requests, where refusing is right, a small policy needs more of them to learn that "kill a Python
 * process" is not one. With the training mix below, 15 (measured on the same PM and initial policy).
 */
const rlTrainFamilyWeights: Partial<Record<Family, number>> = { ...rlFamilyWeights, lookalike: 0.36 };

export interface WorldOptions {
  out: string;
  seed: number;
  size: WorldSize;
  /** Override single counts of the size. */
  counts?: Partial<WorldCounts>;
  /** Override the size's scope (what requests ask about). */
  scope?: Partial<WorldScope>;
  /** Proportions of response kinds the base assistant writes. */
  mix?: ResponseMix;
  crowd?: Partial<CrowdConfig>;
  /** Called as work is done: units done in this call, stage name; total via `worldWorkUnits`. */
  onProgress?: (units: number, stage: string) => void;
}

export interface FileEntry {
  path: string;
  bytes: number;
  [count: string]: number | string;
}

export interface LabelStats {
  comparisons: number;
  noiseScale: number;
  expectedAgreement: number;
  /** Fraction of labels that agree with the gold ordering, over pairs whose gold values differ. */
  accuracyVsGold: number;
}

export interface WorldManifest {
  format: 'hhkit-world/1';
  seed: number;
  size: WorldSize;
  counts: WorldCounts;
  /** What the requests ask about: entities, words and number range actually used. */
  scope: WorldScope;
  knowledgeBase: { countries: number; elements: number; animals: number };
  files: Record<string, FileEntry>;
  crowd: { workers: number; targetAgreement: number; helpful: LabelStats; harmless: LabelStats };
  pmp: { threads: number; pairs: number; agreementWithQuality: number };
  /** Mean gold scores of the pretraining corpus's responses, by the kind the base assistant wrote. */
  goldByKind: Record<
    ResponseKind,
    { benign: number; harmful: number; helpfulness: number; harmlessness: number; hh: number }
  >;
}

/** Total progress units of a world of these counts (one per document, pair, comparison, prompt). */
export function worldWorkUnits(counts: WorldCounts): number {
  return (
    counts.pretrainDialogues +
    counts.pretrainForum +
    counts.forumThreads +
    counts.helpfulTrain +
    counts.helpfulTest +
    counts.harmlessTrain +
    counts.harmlessTest +
    counts.rlPrompts +
    counts.oodHarmful +
    counts.oodBenign +
    2 * counts.calibrationPairs
  );
}

const jsonl = (rows: readonly unknown[]): string => rows.map((r) => `${JSON.stringify(r)}\n`).join('');
const ratio = (num: number, den: number): number => (den > 0 ? Math.round((num / den) * 1e4) / 1e4 : 0);

/**
 * Generates the world into `opts.out` and returns (and writes) its manifest. Deterministic: the same
 * seed and options give byte-identical files.
 *
 * @example
 * const manifest = await generateWorld({ out: 'world', seed: 1, size: 'small' });
 * manifest.files.helpfulTrain.comparisons; // 2400
 */
export async function generateWorld(opts: WorldOptions): Promise<WorldManifest> {
  const counts = { ...worldSizes[opts.size], ...opts.counts };
  const scope: WorldScope = opts.scope
    ? { ...worldScopes[opts.size], ...opts.scope }
    : worldScopes[opts.size];
  const crowdConfig = { ...defaultCrowdConfig, ...opts.crowd };
  const mix = opts.mix ?? worldMixes[opts.size];
  const progress = opts.onProgress ?? (() => {});
  const root = new Rng(opts.seed);
  await mkdir(opts.out, { recursive: true });
  const files: Record<string, FileEntry> = {};
  const record = async (key: string, path: string, extra: Record<string, number>) => {
    files[key] = { path, bytes: (await stat(join(opts.out, path))).size, ...extra };
  };
  const writeText = async (key: string, path: string, text: string, extra: Record<string, number>) => {
    await writeFileAtomic(join(opts.out, path), text);
    await record(key, path, extra);
  };

  // 1. Pretraining corpus: base-assistant dialogues of every family, plus forum threads.
  const pretrainRng = root.fork('pretrain');
  const documents: string[] = [];
  const byKind = new Map<
    ResponseKind,
    { n: number; benign: number; harmful: number; help: number; harm: number; hh: number }
  >();
  for (let i = 0; i < counts.pretrainDialogues; i++) {
    const request = sampleRequest(pretrainRng, pretrainFamilyWeights, scope);
    const prompt = formatPrompt(request);
    const { kind, text } = sampleResponse(pretrainRng, request, mix);
    const gold = goldJudge(prompt, ` ${text}`);
    const s = byKind.get(kind) ?? { n: 0, benign: 0, harmful: 0, help: 0, harm: 0, hh: 0 };
    s.n++;
    if (request.family === 'harmful') s.harmful++;
    else s.benign++;
    s.help += gold.helpfulness;
    s.harm += gold.harmlessness;
    s.hh += gold.hh;
    byKind.set(kind, s);
    documents.push(`${prompt} ${text}`);
    progress(1, 'pretrain');
  }
  for (let i = 0; i < counts.pretrainForum; i++) {
    const thread = forumThread(pretrainRng);
    documents.push(`\n\nHuman: ${thread.question}\n\nAssistant: ${pretrainRng.pick(thread.answers).text}`);
    progress(1, 'pretrain');
  }
  const corpus = pretrainRng.shuffle(documents).map((text) => ({ text }));
  await writeText('pretrain', 'pretrain.jsonl', jsonl(corpus), { documents: corpus.length });

  // 2. PMP pairs from the forum (topics disjoint from the assistant's families).
  const forumRng = root.fork('forum');
  const pmpPairs: ComparisonRecord[] = [];
  let agree = 0;
  let decided = 0;
  for (let i = 0; i < counts.forumThreads; i++) {
    const thread = forumThread(forumRng, PMP_FORUM_MIX);
    for (const pair of forumPairs(forumRng, thread)) {
      pmpPairs.push(pair);
      const ok = forumPairAgreesWithQuality(thread, pair);
      if (ok !== undefined) [agree, decided] = [agree + (ok ? 1 : 0), decided + 1];
    }
    progress(1, 'pmp');
  }
  await writeComparisons(join(opts.out, 'pmp.jsonl'), pmpPairs);
  await record('pmp', 'pmp.jsonl', { pairs: pmpPairs.length });

  // 3. Crowd: draw workers, calibrate noise per task so two workers agree at the target rate.
  const profiles = drawWorkerProfiles(root.fork('workers'), crowdConfig);
  const calibrationRng = root.fork('calibration');
  const calibrationPairs = (families: Partial<Record<Family, number>>): [JudgedResponse, JudgedResponse][] =>
    Array.from({ length: counts.calibrationPairs }, () => {
      const [a, b] = candidatePair(calibrationRng, sampleRequest(calibrationRng, families, scope), mix);
      progress(1, 'calibrate');
      return [a.judged, b.judged];
    });
  const helpfulCalibration = calibrationPairs(helpfulFamilyWeights);
  const harmfulCalibration = calibrationPairs({ harmful: 1 });
  const target = crowdConfig.targetAgreement;
  const scales: Record<CrowdMode, number> = {
    helpful: calibrateScale(profiles, 'helpful', helpfulCalibration, target),
    'red-team': calibrateScale(profiles, 'red-team', harmfulCalibration, target),
  };
  const pool = new CrowdPool(profiles, scales);
  await writeText('workers', 'workers.json', `${JSON.stringify({ profiles, scales }, null, 2)}\n`, {
    workers: profiles.length,
  });

  // 4. Helpful and harmless comparisons, train and test, test prompts disjoint from train.
  const source = `world:seed=${opts.seed}`;
  const labelSet = async (mode: CrowdMode, split: 'train' | 'test', n: number, seen: Set<string>) => {
    const rng = root.fork(`${mode}/${split}`);
    const families = mode === 'helpful' ? helpfulFamilyWeights : { harmful: 1 };
    const records: ComparisonRecord[] = [];
    let correct = 0;
    let decidedLabels = 0;
    for (let attempts = 0; records.length < n && attempts < n * 20; attempts++) {
      const request: Request = sampleRequest(rng, families, scope);
      const prompt = formatPrompt(request);
      if (split === 'test' ? seen.has(prompt) : false) continue;
      if (split === 'train') seen.add(prompt);
      const c = labelComparison(rng, pool, mode, request, { mix, source });
      records.push(c.record);
      if (c.agreesWithGold !== undefined)
        [correct, decidedLabels] = [correct + (c.agreesWithGold ? 1 : 0), decidedLabels + 1];
      progress(1, `${mode === 'helpful' ? 'helpful' : 'harmless'}-${split}`);
    }
    const task = mode === 'helpful' ? 'helpful' : 'harmless';
    const path = `${task}-${split}.jsonl`;
    await writeComparisons(join(opts.out, path), records);
    await record(`${task}${split === 'train' ? 'Train' : 'Test'}`, path, { comparisons: records.length });
    return { n: records.length, correct, decided: decidedLabels };
  };
  const stats = async (
    mode: CrowdMode,
    train: number,
    test: number,
    calibration: [JudgedResponse, JudgedResponse][],
  ) => {
    const seen = new Set<string>();
    const a = await labelSet(mode, 'train', train, seen);
    const b = await labelSet(mode, 'test', test, seen);
    return {
      comparisons: a.n + b.n,
      noiseScale: Math.round(scales[mode] * 1e4) / 1e4,
      expectedAgreement: ratio(expectedAgreement(profiles, mode, calibration, scales[mode]), 1),
      accuracyVsGold: ratio(a.correct + b.correct, a.decided + b.decided),
    };
  };
  const helpfulStats = await stats('helpful', counts.helpfulTrain, counts.helpfulTest, helpfulCalibration);
  const harmlessStats = await stats(
    'red-team',
    counts.harmlessTrain,
    counts.harmlessTest,
    harmfulCalibration,
  );

  // 5. RL prompts: a fixed held-out ("static") set, the same in every world of a scope, and generated
  //    training prompts, none of which is a held-out one.
  const staticRng = new Rng(0x524c); // 'RL': fixed so RL runs on different worlds share a core prompt set
  const rlRows: { prompt: string; family: Family; source: 'static' | 'generated' }[] = [];
  const staticCount = Math.min(counts.rlHeldOut, counts.rlPrompts);
  const heldOut = new Set<string>();
  const rlRng = root.fork('rl');
  for (let i = 0; i < counts.rlPrompts; i++) {
    const isStatic = i < staticCount;
    // Held-out prompts are distinct, and no training prompt is a held-out one.
    const weights = isStatic ? rlFamilyWeights : rlTrainFamilyWeights;
    let request = sampleRequest(isStatic ? staticRng : rlRng, weights, scope);
    for (let tries = 0; heldOut.has(formatPrompt(request)); tries++) {
      if (tries >= 10_000)
        throw new RangeError(
          `world: the scope has too few distinct prompts for ${staticCount} held-out RL prompts and training ones besides`,
        );
      request = sampleRequest(isStatic ? staticRng : rlRng, weights, scope);
    }
    const prompt = formatPrompt(request);
    if (isStatic) heldOut.add(prompt);
    rlRows.push({ prompt, family: request.family, source: isStatic ? 'static' : 'generated' });
    progress(1, 'rl-prompts');
  }
  await writeText('rlPrompts', 'rl-prompts.jsonl', jsonl(rlRows), {
    prompts: rlRows.length,
    static: staticCount,
  });

  // 6. HHH prompt and OOD sets (harmful requests vs benign ones, single turn as in the paper's OOD test).
  const hhh = hhhPrompt();
  await writeText('hhhPrompt', 'hhh-prompt.txt', hhh, { characters: hhh.length });
  const oodRng = root.fork('ood');
  const oodSet = (families: Partial<Record<Family, number>>, n: number, stage: string) =>
    Array.from({ length: n }, () => {
      let request = sampleRequest(oodRng, families, scope);
      while (request.history.length > 0) request = sampleRequest(oodRng, families, scope);
      progress(1, stage);
      return { prompt: formatPrompt(request), family: request.family };
    });
  const { followup: _, ...singleTurn } = helpfulFamilyWeights;
  const oodHarmful = oodSet({ harmful: 1 }, counts.oodHarmful, 'ood');
  const oodBenign = oodSet(singleTurn, counts.oodBenign, 'ood');
  await writeText('oodHarmful', 'ood-harmful.jsonl', jsonl(oodHarmful), { prompts: oodHarmful.length });
  await writeText('oodBenign', 'ood-benign.jsonl', jsonl(oodBenign), { prompts: oodBenign.length });

  const kb = knowledgeBase();
  const goldByKind = Object.fromEntries(
    responseKinds.map((kind) => {
      const s = byKind.get(kind) ?? { n: 0, benign: 0, harmful: 0, help: 0, harm: 0, hh: 0 };
      const mean = (x: number) => ratio(x, s.n);
      return [
        kind,
        {
          benign: s.benign,
          harmful: s.harmful,
          helpfulness: mean(s.help),
          harmlessness: mean(s.harm),
          hh: mean(s.hh),
        },
      ];
    }),
  ) as WorldManifest['goldByKind'];
  const manifest: WorldManifest = {
    format: 'hhkit-world/1',
    seed: opts.seed,
    size: opts.size,
    counts,
    scope: {
      countries: scopedEntities('country', scope).length,
      elements: scopedEntities('element', scope).length,
      animals: scopedEntities('animal', scope).length,
      words: scopedWords(scope).length,
      operands: scope.operands,
    },
    knowledgeBase: {
      countries: kb.countries.length,
      elements: kb.elements.length,
      animals: kb.animals.length,
    },
    files,
    crowd: {
      workers: profiles.length,
      targetAgreement: target,
      helpful: helpfulStats,
      harmless: harmlessStats,
    },
    pmp: {
      threads: counts.forumThreads,
      pairs: pmpPairs.length,
      agreementWithQuality: ratio(agree, decided),
    },
    goldByKind,
  };
  await writeFileAtomic(join(opts.out, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}
