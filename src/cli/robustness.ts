import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { defaultPPOConfig, type PPOConfig, validatePPOConfig } from '../rl/ppo-config.ts';
import { trainPPO } from '../rl/ppo.ts';
import { permutation } from '../rl/rollout.ts';
import {
  analyseRobustness,
  evaluateSnapshots,
  type RobustnessAnalysis,
  testInTrainUnits,
} from '../rl/robustness.ts';
import {
  configOptions,
  modelOption,
  type OptionSpec,
  outputFolder,
  parseArgs,
  requireFile,
  requireFolder,
  stringOption,
  UsageError,
} from './args.ts';
import type { Command } from './main.ts';
import { describePPOEvent } from './ppo.ts';
import {
  applyOverrides,
  checkpointTokenizer,
  fmt,
  goldReward,
  heldOutChosen,
  loadPMModule,
  pmReward,
  readRLPrompts,
  resolveCheckpoint,
} from './rl-common.ts';

// The command's own options (camel case): everything else is a PPO key for applyOverrides.
const OWN = [
  'policy',
  'init',
  'world',
  'pmTrain',
  'pmTest',
  'pmInit',
  'pmSteps',
  'pmLrMultiplier',
  'earlyFraction',
  'threshold',
  'evalPrompts',
  'data',
  'heldOut',
  'resume',
  'strict',
  'json',
  'help',
  'config',
  'out',
];

// Not --reward-offset: the run sets it to the train PM's held-out mean.
const ppoConfig = configOptions(defaultPPOConfig, ['rewardOffset']);
const OPTIONS: OptionSpec = {
  command: 'robustness',
  // biome-ignore format: one list of the command's own options
  values: ['policy', 'init', 'world', 'pm-train', 'pm-test', 'pm-init', 'pm-steps', 'pm-lr-multiplier', 'early-fraction',
    'threshold', 'eval-prompts', 'data', 'held-out', ...ppoConfig.values],
  flags: ['resume', 'strict', ...ppoConfig.flags],
};

const help = `usage: hhkit robustness --policy INIT (or --init INIT) --world DIR [--out DIR] [--pm-train PM --pm-test PM | --pm-init LM]
                        [--steps N --snapshot-every K …PPO options] [--json]

The robustness study (Bai et al. 2022 §4.2, Figure 4). Without --pm-train/--pm-test: splits the world's
training comparisons 50/50 (seeded), trains a "train PM" and a "test PM" from --pm-init (default: the
policy's checkpoint) with src/pm. Runs PPO against the train PM, keeping a snapshot every --snapshot-every
steps, then evaluates the initial policy and every snapshot on held-out prompts with both PMs (each centred
by its mean on the chosen responses of the world's held-out comparisons) and the gold judge, against
√KL(policy ‖ initial policy); a sample's KL sums the KL of the whole next-token distributions along it (≥ 0,
and far less noisy than the sampled tokens' log-ratio). The curves share the train PM's units: the test PM
scaled by σ(train PM)/σ(test PM) and gold by the train PM's slope on gold, both measured on the initial
policy's samples. Fits a line to the early part of each curve (slope, intercept, R², the √KL range used)
and reports where the train PM's gain outruns the test PM's by more than --threshold. It also reports the
test PM's gain as a fraction of the train PM's, each PM in its own units: over the early part (a
least-squares slope through the origin) and at the largest √KL. PMs that rank alike keep a steady fraction;
over-optimisation of the train PM shows as the second below the first, whatever the two PMs' scales.

Writes OUT/robustness.json (points, fits, divergence, gainFraction), OUT/robustness.svg (the plot),
OUT/ppo (the run).

options:
  --policy INIT          initial policy checkpoint (the distilled LM)
  --init INIT            the same as --policy (the option every command takes for its model)
  --world DIR            the world
  --pm-train PM, --pm-test PM   trained PMs to use ('gold' stands in for a PM, for smoke tests)
  --pm-init LM           what the two PMs are finetuned from (default: --policy)
  --data FILES           comparison files split 50/50 into the two PMs' data (default: the world's
                         helpful-train.jsonl, harmless-train.jsonl), e.g. hhkit collect's train.jsonl
  --held-out FILES       comparisons the PMs are evaluated and centred on (their chosen responses; default:
                         the world's test files)
  --pm-steps N           optimiser steps per PM (default: one epoch)
  --pm-lr-multiplier M   PM learning rate × the LM's pretraining rate (default: hhkit pm train's 0.01)
  --early-fraction F     fit on √KL ≤ min + F·range (default 0.5)
  --threshold T          divergence gap in train-PM units (default 0.25); the test PM is put in
                         train-PM units by σ(train)/σ(test) over the initial policy's samples
  --eval-prompts N       held-out prompts per snapshot (default 64)
  --strict               a bad line in the held-out comparison files is an error (the --data lines are
                         split as they are; the PMs' training reports bad ones and skips them)
  --resume               accepted; a rerun with the same --out always resumes (the PMs and the PPO run)
  PPO options as hhkit ppo (defaults here: --steps 60 --snapshot-every 10 --checkpoint-every 10)`;

async function trainSplitPMs(
  data: readonly string[],
  heldOut: readonly string[],
  out: string,
  init: string,
  steps: number,
  lrMultiplier: number,
): Promise<{ a: string; b: string }> {
  const pmModule = await loadPMModule();
  const rows: string[] = [];
  for (const path of data) {
    if (existsSync(path))
      rows.push(
        ...readFileSync(path, 'utf8')
          .split('\n')
          .filter((l) => l.trim()),
      );
  }
  if (rows.length < 20)
    throw new UsageError(`${data.join(', ')}: too few training comparisons to split (${rows.length})`);
  const order = permutation(rows.length, 20220412);
  const half = Math.floor(rows.length / 2);
  const files = { a: join(out, 'split-a.jsonl'), b: join(out, 'split-b.jsonl') };
  writeFileSync(
    files.a,
    order
      .slice(0, half)
      .map((i) => `${rows[i]}\n`)
      .join(''),
  );
  writeFileSync(
    files.b,
    order
      .slice(half)
      .map((i) => `${rows[i]}\n`)
      .join(''),
  );
  const evalFiles = heldOut.filter(existsSync).join(',');
  const dirs: Record<'a' | 'b', string> = { a: '', b: '' };
  for (const which of ['a', 'b'] as const) {
    const config = pmModule.resolvePMTrainConfig('finetune', {
      data: files[which],
      eval: evalFiles,
      init,
      out: join(out, `pm-${which}`),
      ...(steps > 0 ? { steps } : {}),
      ...(lrMultiplier > 0 ? { lrMultiplier } : {}),
      seed: which === 'a' ? 1 : 2,
    });
    console.error(`training the ${which === 'a' ? 'train' : 'test'} PM on ${files[which]}`);
    const result = await pmModule.trainPreferenceModel(config as never, {
      resume: true,
      progress: true,
      label: `pm-${which}`,
    });
    console.error(`  held-out accuracy ${fmt(result.evalAccuracy)} → ${result.checkpoint}`);
    dirs[which] = result.checkpoint;
  }
  return dirs;
}

/** A small SVG: train PM, test PM and gold vs √KL, with the early fits dashed. */
export function robustnessSvg(a: RobustnessAnalysis): string {
  const W = 640;
  const H = 400;
  const pad = 50;
  const pts = a.points;
  const xs = pts.map((p) => p.sqrtKL);
  // Every curve as its gain over the initial policy; gold in train-PM units (goldPM), so they share an axis.
  const series = [
    { key: 'trainPM' as const, colour: '#d62728', label: 'train PM − start' },
    { key: 'testPM' as const, colour: '#1f77b4', label: 'test PM − start (train-PM units)' },
    { key: 'gold' as const, colour: '#2ca02c', label: 'gold − start (train-PM units)' },
  ];
  const start = [...pts].sort((p, q) => p.step - q.step)[0];
  const y = (p: (typeof pts)[number], k: 'trainPM' | 'testPM' | 'gold') =>
    k === 'gold'
      ? p.goldPM - (start?.goldPM ?? 0)
      : k === 'testPM'
        ? testInTrainUnits(p) - (start ? testInTrainUnits(start) : 0)
        : p[k] - (start?.[k] ?? 0);
  const ys = pts.flatMap((p) => series.map((s) => y(p, s.key))).filter(Number.isFinite);
  const [x0, x1] = [Math.min(0, ...xs), Math.max(1e-6, ...xs)];
  const [y0, y1] = [Math.min(...ys, 0), Math.max(...ys, 1e-6)];
  const sx = (x: number) => pad + ((x - x0) / (x1 - x0 || 1)) * (W - 2 * pad);
  const sy = (v: number) => H - pad - ((v - y0) / (y1 - y0 || 1)) * (H - 2 * pad);
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<line x1="${pad}" y1="${H - pad}" x2="${W - pad}" y2="${H - pad}" stroke="black"/><line x1="${pad}" y1="${pad}" x2="${pad}" y2="${H - pad}" stroke="black"/>`,
    `<text x="${W / 2}" y="${H - 12}" text-anchor="middle">√KL(policy ‖ initial policy)</text>`,
    `<text x="${pad}" y="${pad - 10}">score (${fmt(y0, 2)} … ${fmt(y1, 2)}); √KL 0 … ${fmt(x1, 2)}</text>`,
  ];
  const sorted = [...pts].sort((p, q) => p.sqrtKL - q.sqrtKL);
  series.forEach((s, i) => {
    const line = sorted
      .filter((p) => Number.isFinite(y(p, s.key)))
      .map((p) => `${sx(p.sqrtKL).toFixed(1)},${sy(y(p, s.key)).toFixed(1)}`);
    if (line.length)
      parts.push(`<polyline fill="none" stroke="${s.colour}" stroke-width="2" points="${line.join(' ')}"/>`);
    const fit = a.fits[s.key];
    if (fit && s.key !== 'gold') {
      const f = (x: number) => fit.intercept + fit.slope * x - (start?.[s.key] ?? 0);
      parts.push(
        `<line x1="${sx(fit.xMin)}" y1="${sy(f(fit.xMin))}" x2="${sx(fit.xMax)}" y2="${sy(f(fit.xMax))}" stroke="${s.colour}" stroke-dasharray="5,4"/>`,
      );
    }
    parts.push(`<text x="${W - pad - 150}" y="${pad + 16 * i}" fill="${s.colour}">${s.label}</text>`);
  });
  if (a.divergence)
    parts.push(
      `<line x1="${sx(a.divergence.sqrtKL)}" y1="${pad}" x2="${sx(a.divergence.sqrtKL)}" y2="${H - pad}" stroke="gray" stroke-dasharray="2,3"/>`,
    );
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

export const command: Command = {
  summary: 'robustness study: PPO against a train PM, scored by a test PM and gold vs √KL',
  help,
  async run(argv) {
    const { options } = parseArgs(argv, OPTIONS);
    const policyPath = modelOption(options, 'robustness', 'policy').value;
    const world = stringOption(options, 'world', '');
    if (!policyPath || !world)
      throw new UsageError(`robustness: --policy (or --init) and --world are required\n\n${help}`);
    requireFolder(world, '--world');
    const out = resolve(outputFolder(stringOption(options, 'out', 'runs/robustness'), '--out'));
    mkdirSync(out, { recursive: true });
    const init = resolveCheckpoint(policyPath);
    const tokenizer = checkpointTokenizer(init);
    // The PPO options are checked here, before the two PMs train: a typo must not cost their training.
    const config: PPOConfig = applyOverrides(
      { ...defaultPPOConfig, steps: 60, snapshotEvery: 10, checkpointEvery: 10, evalEvery: 0 },
      options,
      OWN,
    );
    validatePPOConfig(config);
    let trainSpec = stringOption(options, 'pm-train', '');
    let testSpec = stringOption(options, 'pm-test', '');
    const files = (key: string, names: string[]) => {
      const list = stringOption(options, key, '');
      return list ? list.split(',').map((f) => requireFile(f, `--${key}`)) : names.map((n) => join(world, n));
    };
    const heldOutFiles = files('held-out', ['helpful-test.jsonl', 'harmless-test.jsonl']);
    if (!trainSpec || !testSpec) {
      const pms = await trainSplitPMs(
        files('data', ['helpful-train.jsonl', 'harmless-train.jsonl']),
        heldOutFiles,
        out,
        resolveCheckpoint(stringOption(options, 'pm-init', policyPath)),
        Number(options['pm-steps'] ?? 0),
        Number(options['pm-lr-multiplier'] ?? 0),
      );
      trainSpec = pms.a;
      testSpec = pms.b;
    }
    const held = await heldOutChosen(world, 400, options['strict'] === true, heldOutFiles);
    const scorer = async (spec: string) => {
      if (spec === 'gold') return { reward: goldReward, centre: 0 };
      const pm = await pmReward(spec);
      return { reward: pm.reward, centre: await pm.meanOn(held) };
    };
    const trainPM = await scorer(trainSpec);
    const testPM = await scorer(testSpec);
    console.error(
      `PM held-out means (the centres): train ${fmt(trainPM.centre)}, test ${fmt(testPM.centre)}`,
    );
    config.out = join(out, 'ppo');
    config.rewardOffset = trainPM.centre;
    const prompts = readRLPrompts(world);
    await trainPPO({
      config,
      init,
      tokenizer,
      prompts: prompts.train,
      reward: trainPM.reward,
      gold: goldReward,
      resume: true,
      progress: true,
      onEvent: (e) => {
        const line = describePPOEvent(e);
        if (line) console.error(line);
      },
    });
    const evalPrompts = prompts.eval.slice(0, Number(options['eval-prompts'] ?? 64));
    const points = await evaluateSnapshots(config.out, init, tokenizer, evalPrompts, {
      trainPM: trainPM.reward,
      testPM: testPM.reward,
      gold: goldReward,
      centres: { train: trainPM.centre, test: testPM.centre },
      maxNewTokens: config.maxNewTokens,
      seed: 4242,
      onPoint: (p) =>
        console.error(
          `snapshot step ${p.step}: √KL ${fmt(p.sqrtKL)} train PM ${fmt(p.trainPM)} test PM ${fmt(p.testPM)} (${fmt(testInTrainUnits(p))} in train-PM units) gold ${fmt(p.gold)}`,
        ),
    });
    const analysis = analyseRobustness(points, {
      earlyFraction: Number(options['early-fraction'] ?? 0.5),
      threshold: Number(options['threshold'] ?? 0.25),
    });
    const report = {
      trainPM: trainSpec,
      testPM: testSpec,
      centres: { train: trainPM.centre, test: testPM.centre },
      ...analysis,
    };
    writeFileSync(join(out, 'robustness.json'), `${JSON.stringify(report, null, 2)}\n`);
    writeFileSync(join(out, 'robustness.svg'), robustnessSvg(analysis));
    for (const [name, fit] of Object.entries(analysis.fits)) {
      if (fit)
        console.error(
          `${name}: ${fmt(fit.intercept)} + ${fmt(fit.slope)}·√KL, R² ${fmt(fit.r2)}, fitted on √KL ∈ [${fmt(fit.xMin)}, ${fmt(fit.xMax)}] (${fit.n} points)`,
        );
    }
    console.error(
      analysis.divergence
        ? `the PMs diverge at step ${analysis.divergence.step} (√KL ${fmt(analysis.divergence.sqrtKL)}, gap ${fmt(analysis.divergence.gap)})`
        : 'the PMs do not diverge by more than the threshold',
    );
    const end = analysis.atLargestKL;
    if (end)
      console.error(
        `at the largest √KL (${fmt(end.sqrtKL)}, step ${end.step}) the gains over the start are: train PM ${fmt(end.trainGain)}, test PM ${fmt(end.testGain)}, gold ${fmt(end.goldGain)} (in train-PM units)`,
      );
    const fraction = analysis.gainFraction;
    if (fraction)
      console.error(
        `the test PM's gain as a fraction of the train PM's (each PM in its own units): ${fmt(fraction.early)} over the early part (${fraction.earlyPoints} snapshots), ${fmt(fraction.atLargestKL)} at the largest √KL (over-optimisation shows as the second below the first, whatever the PMs' scales)`,
      );
    console.error(`wrote ${join(out, 'robustness.json')} and robustness.svg`);
    if (options['json'] === true) console.log(JSON.stringify(report));
    return 0;
  },
};
