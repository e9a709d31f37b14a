// The demo's preference-model stages (after LM pretraining): PMP on the world's forum pairs, then
// finetuning on the helpful + harmless comparisons, evaluated on the held-out comparisons against the
// crowd's labels and the gold judge's. Resumable like the LM stage: a finished run is reused.
import { join } from 'node:path';
import {
  evaluateScored,
  fileList,
  loadPreferenceModel,
  loadTaskedComparisons,
  type PMTrainEvent,
  resolvePMTrainConfig,
  scoreComparisons,
  trainPreferenceModel,
} from '../pm/index.ts';
import type { Tokenizer } from '../tokenizer/index.ts';
import { worldGold } from '../world/index.ts';

/**
 * Learning-rate multipliers of the demo's PM stages (× the LM's pretraining lr). The paper's 0.1 (PMP)
 * and 0.01 (finetuning) suit 52B models with large batches; a ~10⁵–10⁶-parameter model needs more to
 * learn in one epoch (at 0.01 the world PM reaches ≈68% gold accuracy instead of ≈80%).
 */
export const demoPM = { pmpLrMultiplier: 0.5, lrMultiplier: 0.5 };

export interface DemoPMSummary {
  pmp: { checkpoint: string; steps: number; evalAccuracy: number | null; resumedFrom: number };
  pm: {
    checkpoint: string;
    steps: number;
    resumedFrom: number;
    comparisons: number;
    accuracy: number | null;
    goldAccuracy: number | null;
    lengthBaselineGold: number | null;
    ece: number | null;
    byTask: Record<string, number | null>;
  };
}

const round = (x: number | undefined): number | null =>
  x === undefined || !Number.isFinite(x) ? null : Number(x.toFixed(4));

const describe = (e: PMTrainEvent): string | null =>
  e.type === 'resume'
    ? `resuming from step ${e.step}`
    : e.type === 'data'
      ? `${e.train} training comparisons, ${e.eval} held out`
      : null;

/**
 * Runs stages `first` and `first + 1` of `total`: PMP into OUT/pmp, the PM into OUT/pm.
 *
 * @example const s = await runDemoPMStages({ out, worldDir, lm: 'runs/demo/lm/checkpoint', tokenizer, seed: 1, steps: 0, first: 4, total: 5 });
 */
export async function runDemoPMStages(opts: {
  out: string;
  worldDir: string;
  lm: string;
  tokenizer: Tokenizer;
  seed: number;
  /** Optimiser steps per PM stage; 0 = one epoch each (the paper's). */
  steps: number;
  first: number;
  total: number;
}): Promise<DemoPMSummary> {
  const { out, worldDir, tokenizer, seed } = opts;
  const w = (f: string) => join(worldDir, f);
  const log = (line: string | null) => {
    if (line) console.error(`  ${line}`);
  };

  console.error(
    `[${opts.first}/${opts.total}] pmp: preference-model pretraining on the forum's ranked pairs`,
  );
  const pmpConfig = resolvePMTrainConfig('pmp', {
    init: opts.lm,
    data: w('pmp.jsonl'),
    out: join(out, 'pmp'),
    seed,
    steps: opts.steps,
    lrMultiplier: demoPM.pmpLrMultiplier,
  });
  const pmp = await trainPreferenceModel(pmpConfig, {
    tokenizer,
    resume: true,
    progress: true,
    label: 'pmp',
    onEvent: (e) => log(describe(e)),
  });

  console.error(`[${opts.first + 1}/${opts.total}] pm: finetuning on helpful + harmless comparisons`);
  const testFiles = `${w('helpful-test.jsonl')},${w('harmless-test.jsonl')}`;
  const pmConfig = resolvePMTrainConfig('finetune', {
    init: join(out, 'pmp', 'checkpoint'),
    data: `${w('helpful-train.jsonl')},${w('harmless-train.jsonl')}`,
    // No held-out split of the training files: the world's test files are scored below, with gold labels.
    evalFraction: 0,
    out: join(out, 'pm'),
    seed,
    steps: opts.steps,
    lrMultiplier: demoPM.lrMultiplier,
  });
  const pm = await trainPreferenceModel(pmConfig, {
    tokenizer,
    resume: true,
    progress: true,
    label: 'pm',
    onEvent: (e) => log(describe(e)),
  });
  const checkpoint = join(out, 'pm', 'checkpoint');
  const { pm: model } = loadPreferenceModel(checkpoint);
  const { items } = await loadTaskedComparisons(fileList(testFiles));
  const report = evaluateScored(await scoreComparisons(model, tokenizer, items, { gold: worldGold }));
  for (const p of model.parameters()) p.dispose();
  return {
    pmp: {
      checkpoint: join(out, 'pmp', 'checkpoint'),
      steps: pmp.steps,
      evalAccuracy: round(pmp.evalAccuracy),
      resumedFrom: pmp.resumedFrom,
    },
    pm: {
      checkpoint,
      steps: pm.steps,
      resumedFrom: pm.resumedFrom,
      comparisons: pm.comparisons,
      accuracy: round(report.accuracy),
      goldAccuracy: round(report.gold?.accuracy),
      lengthBaselineGold: round(report.gold?.lengthBaseline.accuracy),
      ece: round(report.calibration.ece),
      byTask: Object.fromEntries(report.byTask.map((g) => [g.group, round(g.accuracy)])),
    },
  };
}
