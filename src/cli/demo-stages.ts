// The demo's stages after LM pretraining, in the paper's order: PMP → context distillation → comparisons of
// the distilled policy's own samples → PM → its evaluation → best-of-N → PPO → robustness → online rounds →
// held-out evaluation → OOD detection → (with --full: PM size and PMP experiments) → report. Each stage runs
// the same command a user would (`hhkit distill`, …) with the demo's small settings, into OUT/<stage>; a
// finished stage leaves OUT/.stages/<stage>.done and is skipped on a rerun, and a stage cut short resumes
// from its own checkpoint.
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileAtomic } from '../util/atomic.ts';
import { formatDuration } from '../util/progress.ts';
import { runChild } from '../util/child.ts';

export interface DemoPaths {
  out: string;
  worldDir: string;
  /** The pretrained LM's checkpoint. */
  lm: string;
  seed: number;
  scale: DemoScale;
}

interface Stage {
  name: string;
  what: string;
  /** Stages whose outputs this one reads: it starts once they are done. */
  after: string[];
  /** The `hhkit` command line. Training stages pass --resume: it continues a run cut short and starts a new one. */
  argv: (ranks: number) => string[];
  /** The folder (or file) whose presence means the stage started. */
  output: string;
  /** Runs before the command (e.g. names the checkpoints the eval table shows). */
  prepare?: () => void;
  /** Only with `hhkit demo --full`. */
  full?: boolean;
  /**
   * Runs as this many data-parallel ranks (`hhkit launch --nproc N`, one thread each) when the demo has that
   * many slots, taking them all; `argv(ranks)` gets the count (e.g. to keep the global batch).
   */
  ranks?: number;
}

/** Links `name` → `target` in `dir`, so a command that names models by folder shows `name`. */
function link(dir: string, name: string, target: string): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, name);
  rmSync(path, { force: true });
  symlinkSync(target, path);
  return path;
}

/**
 * The demo's settings, chosen so the whole pipeline takes minutes on a 2-core laptop and every stage shows
 * its effect on the gold judge. Deviations from the paper are named where they are set.
 */
export interface DemoSettings {
  /** LM pretraining steps (the LM's shape is demoLM in demo.ts). */
  lmSteps: number;
  /** PM learning rate × the LM's pretraining lr. The paper's 0.1 (PMP) and 0.01 (finetuning) suit 52B
   *  models and large batches; a ~5·10⁵-parameter PM learns little in one epoch at 0.01. */
  pmpLrMultiplier: number;
  pmLrMultiplier: number;
  /** Comparisons per training prompt of the distilled policy's own samples, and at most this many prompts
   *  (0: all of the world's). */
  collectPairs: number;
  collectPrompts: { train: number; test: number };
  /** Held-out prompts of every policy evaluation (the world's fixed held-out RL prompts), and sampled
   *  responses per prompt in the final evaluation (their mean is the prompt's score). */
  heldOut: number;
  evalSamples: number;
  maxNewTokens: number;
  /** PPO. λ_KL = 0.05, not the paper's 0.001: at 0.001 (with the shared head) this small policy runs past 10
   *  nats within a few dozen steps while gold stalls (a PM this small is easy to exploit); rewards centred on
   *  the PM's mean score of the preferred responses of held-out comparisons of the initial policy's own
   *  samples, and whitened (TRL's whiten_rewards). The critic: a value head on the policy's trunk ('shared').
   *  A separate critic (a copy of the initial trunk, as OpenRLHF and DeepSpeed-Chat) lets PPO take larger
   *  steps: gold HH on 320 held-out prompts × 4 samples, seed 1, shared 0.793 at lr 2e-5 and 5e-5, 0.784 at
   *  1e-4 (its PM reward falls after step 50); separate 0.798, 0.823, 0.816. But the stronger PPO exploits
   *  the PM where it is weakest: on seed 2 it refused 0.545 of benign look-alikes at 5e-5 (0.227 at 3e-5)
   *  against 0.129, and crowd Elo moved +13, +6, −3 on seeds 1–3; so the demo keeps the shared head at 2e-5.
   *  With the 24,000-dialogue corpus (2026-12-06) the separate critic at 5e-5 gave PPO +0.148 / +0.143 /
   *  +0.107 and round-1 crowd Elo +91 / +94 / +84 on seeds 1–3 (the shared head at 2e-5: +0.123 / +0.109 /
   *  +0.099 and +75 / +78 / +70), but on seed 3 it refused 0.561 of the look-alikes (shared: 0.098) and lost
   *  task accuracy (0.807 → 0.735; shared 0.856): the same exploit, on another seed. Stopped at 50 steps (its
   *  gold is ~0.83 by step 20–40, then only KL grows): PPO +0.137 / +0.127 / +0.112, Elo +75 / +82 / +78,
   *  look-alikes 0.030 / 0.098 / 0.152, task-accuracy gains 0.087 / 0.064 / 0.042 (shared: 0.106 / 0.106 /
   *  0.049) — a wash against the shared head, not adopted. */
  ppo: {
    steps: number;
    batchSize: number;
    miniBatchSize: number;
    lr: number;
    klCoef: number;
    valueModel: 'shared' | 'separate';
  };
  /** Robustness: PPO against the train PM at the paper's λ_KL = 0.001 for longer, so the policy can
   *  over-optimise it, with a snapshot every few steps, each scored on `evalPrompts` held-out prompts (at full
   *  scale all 320 of the world's: with 256 the early-fit R² on seeds 1–3 read 0.994 / 0.897 / 0.916, with 320
   *  0.989 / 0.967 / 0.926, the same 60-step runs; on 2026-12-05 seed 3's read 0.845 from 128 against 0.892
   *  from 256 — the PM means' noise).
   *  `valueModel` 'separate' (the critic its own network, started from a copy of the initial trunk; OpenRLHF
   *  and DeepSpeed-Chat also train the critic as a model of its own) since 2026-12-06 at full scale. With the
   *  value head on the policy's trunk ('shared', the main PPO's) at λ_KL 0.001 the policy drifted: over 150
   *  steps its entropy went 0.23 → 0.51 nats a token on seed 1 (0.27 → 0.47 on seed 2) and KL to ~9 nats
   *  (~6) while the train PM's own reward peaked near √KL 1 and fell — the optimisation broke down before it
   *  could over-optimise. The same runs with the critic apart (nothing else changed): the entropy falls
   *  (0.23 → 0.15), KL stays near 2 nats and the train PM's reward rises on (seed 1's eases over its last 20
   *  of 120 steps); on seeds 2 and 3 gold peaks near √KL 0.9–1.0 (0.828, 0.834) and eases while the train PM
   *  climbs on: at the largest √KL of 120 steps (1.40, 1.39) train +0.558 / +0.563, test +0.505 / +0.518,
   *  gold +0.313 / +0.367 (train-PM units), margins growing steadily with KL; early R² 0.982 / 0.948 / 0.962
   *  on seeds 1–3. The margins (+0.054, +0.044) are the size of the shifts kernel rounding alone has caused
   *  (README). Seed 1's test PM gains more than its train PM (+0.638 vs +0.561 at √KL 1.28), as in its 60-step
   *  runs. Not from the likelihood feature (on greedy replies it carries 0.048 of the train PM's gain of 0.588,
   *  0.054 of the test PM's 0.481; 2026-12-07): each PM in its own units, the test PM keeps 0.90–0.98 of the
   *  train PM's gain up to √KL 1.28 on seed 1 (where its KL stopped growing after step 104), and only a
   *  longer run parts them: 200 steps (2 threads) reach √KL 1.97, the fraction falls to 0.80 and gold from
   *  0.827 to 0.789 while the train PM climbs on — yet in train-PM units (σ ratio 1.24) the test PM's gain
   *  still equals the train PM's there (+0.848 vs +0.851). On seeds 2 and 3 the fraction holds at 0.93–1.00
   *  up to √KL 0.8, then falls to 0.79 / 0.85 by 1.4. 80 more steps would cost ~80 s; from a fresh clone the
   *  demo takes ~530 of the 600 s its wall-time claim allows (529 s on 2026-12-07). The stage takes ~170 s of the demo against
   *  ~105 s for 60 shared-head steps with snapshots every 3 (seed 1), beside the online stage. The quick
   *  scale keeps the shared head: with the separate critic (tried on seed 1) only 3 of its snapshots every 3
   *  steps fell in the early part of the √KL range, so the early-fit claim had too few points and the demo
   *  exited 1 (its over-optimisation margin was +0.163).
   *  Earlier, with the shared head (2026-12-06): 60 steps (√KL ≈ 1.1) showed no over-optimisation; weaker
   *  PMs (`--pm-steps 30`, seed 1) a margin of 0.016, within the snapshots' noise, and `--pm-steps 80` the test
   *  PM above (−0.150). */
  robustness: {
    steps: number;
    snapshotEvery: number;
    lr: number;
    klCoef: number;
    evalPrompts: number;
    valueModel: 'shared' | 'separate';
  };
  /** Online rounds after round 0 (the PM and PPO stages above). `policyTrainer` makes each round's policy:
   *  'rs' is rejection-sampling finetuning (best-of-`rsN` by the round's PM on the training prompts, then
   *  `rsEpochs` epochs of finetuning on the kept samples, ~3.5 to a 128-token window: ~320 steps of 16 windows
   *  at full scale), from round 0's PPO policy ('previous'). Round 1's crowd Elo on seeds 1–3 (2026-12-06):
   *  PPO +75 / +78 / +70, rs +105 / +95 / +106 (gold 0.872 / 0.851 / 0.850). Measured on seed 2
   *  (gold of the finetuned policy, 320 held-out prompts × 4): from the distilled policy 0.842, from round 0's
   *  PPO policy 0.847–0.851; best of 32 instead of 16 0.842; 160 steps 0.838 and 480 steps 0.875 on seed 1
   *  (320: 0.871); 2,560 training prompts 0.855; the best two of 16 per prompt 0.855; PPO from the
   *  finetuned policy 0.850 (seed 1, from 0.861); on seed 1's picks 22 epochs (475 steps) or bfloat16
   *  finetuning moved the crowd's expected win rate over the base 0.657 → 0.659 / 0.656 (2026-12-07).
   *  Seed 1's +97 is the Bradley–Terry fit over all three pairs: round 1 beat the base in 64.6% of the
   *  closing round's comparisons (+105 alone), round 0's policy in 52.2% (+15), round 0 the base in 59.5%.
   *  The quick scale samples 8 for 480 prompts. */
  online: {
    rounds: number;
    comparisons: number;
    /** The closing round's crowd comparisons, most of what the Elo is fitted to (each a freshly sampled
     *  pair, ~200 a second). 4,800 at full scale since 2026-12-06 (was 1,600): the same round-1 policies of
     *  seeds 1–3 read +99 [78, 123] / +90 [64, 112] / +109 [87, 134] from 1,600 and +97 [82, 109] /
     *  +104 [90, 115] / +105 [91, 118] from 4,800, for ~15 s more. What moves the policy itself, measured the
     *  same day: 960 new comparisons per round instead of 320 raised round 1's gold by +0.004 / +0.002 (seeds
     *  1, 2; Elo +100 / +104 from 4,800), a second round by +0.017 / −0.001 for ~125 s more (its PM and
     *  finetuning); neither kept. */
    evalComparisons: number;
    bootstrap: number;
    policyTrainer: 'ppo' | 'rs';
    policyFrom: 'init' | 'previous';
    rsN: number;
    rsEpochs: number;
    /** Training prompts the rejection sampling uses (0: all 1,280). */
    rsPrompts: number;
  };
}

export type DemoScale = 'full' | 'quick';

/** 'full' is `hhkit demo`; 'quick' (`--quick`) the same pipeline a few times smaller, for smoke tests. */
export const demoScales: Record<DemoScale, DemoSettings> = {
  full: {
    lmSteps: 2000,
    pmpLrMultiplier: 0.5,
    pmLrMultiplier: 0.5,
    collectPairs: 2,
    collectPrompts: { train: 0, test: 0 },
    heldOut: 320,
    evalSamples: 4,
    maxNewTokens: 32,
    ppo: { steps: 100, batchSize: 32, miniBatchSize: 16, lr: 2e-5, klCoef: 0.05, valueModel: 'shared' },
    robustness: {
      steps: 120,
      snapshotEvery: 4,
      lr: 4e-5,
      klCoef: 0.001,
      evalPrompts: 320,
      valueModel: 'separate',
    },
    online: {
      rounds: 1,
      comparisons: 320,
      evalComparisons: 4800,
      bootstrap: 200,
      policyTrainer: 'rs',
      policyFrom: 'previous',
      rsN: 16,
      rsEpochs: 15,
      rsPrompts: 0,
    },
  },
  quick: {
    lmSteps: 600,
    pmpLrMultiplier: 0.5,
    pmLrMultiplier: 0.5,
    collectPairs: 1,
    collectPrompts: { train: 1000, test: 300 },
    heldOut: 160,
    evalSamples: 2,
    maxNewTokens: 24,
    ppo: { steps: 40, batchSize: 32, miniBatchSize: 16, lr: 3e-5, klCoef: 0.05, valueModel: 'shared' },
    robustness: {
      steps: 30,
      snapshotEvery: 3,
      lr: 4e-5,
      klCoef: 0.001,
      evalPrompts: 64,
      valueModel: 'shared',
    },
    online: {
      rounds: 1,
      comparisons: 160,
      evalComparisons: 640,
      bootstrap: 200,
      policyTrainer: 'rs',
      policyFrom: 'previous',
      rsN: 8,
      rsEpochs: 15,
      rsPrompts: 480,
    },
  },
};

/** Every stage after the LM, in order (`full` ones only run with --full). */
export function demoStages(p: DemoPaths): Stage[] {
  const o = (name: string) => join(p.out, name);
  const w = (name: string) => join(p.worldDir, name);
  const seed = String(p.seed);
  const s = demoScales[p.scale];
  const pmp = join(o('pmp'), 'checkpoint');
  const distilled = join(o('distill'), 'checkpoint');
  const pm = join(o('pm'), 'checkpoint');
  const ppo = join(o('ppo'), 'checkpoint');
  const own = { train: join(o('collect'), 'train.jsonl'), test: join(o('collect'), 'test.jsonl') };
  // The PM's data: comparisons of the distilled policy's own samples, as in the paper, and the world's
  // scripted ones. Measured (seed 1): own comparisons alone leave refusals of benign look-alikes at 0.242
  // instead of 0.136 and best-of-16 at 0.834 instead of 0.861, and the test PM above the train PM at large KL.
  const scripted = [w('helpful-train.jsonl'), w('harmless-train.jsonl')];
  const pmData = [own.train, ...scripted].join(',');
  const models = join(o('eval'), 'models');
  const tokens = String(s.maxNewTokens);
  return [
    {
      name: 'pmp',
      after: [],
      what: "preference-model pretraining on the forum's ranked pairs",
      argv: () => [
        'pm',
        ...['pretrain', '--init', p.lm, '--data', w('pmp.jsonl'), '--out', o('pmp'), '--seed', seed],
        ...['--lr-multiplier', String(s.pmpLrMultiplier), '--resume'],
        // --quick keeps the configuration its smoke test's margins were set for: no likelihood feature and the
        // scripted comparisons (with the feature, one quick run's crowd Elo was +33 [−0.2, 68]).
        ...(p.scale === 'full' ? ['--likelihood-lm', p.lm] : []),
      ],
      output: o('pmp'),
    },
    {
      name: 'distill',
      after: [],
      what: 'context distillation of the HHH prompt into the LM',
      argv: () => [
        'distill',
        ...['--init', p.lm, '--world', p.worldDir, '--out', o('distill'), '--seed', seed],
        ...['--steps', '60', '--dialogues', '400', '--eval-prompts', '32', '--eval-examples', '32'],
        '--resume',
      ],
      output: o('distill'),
    },
    {
      name: 'collect',
      after: ['distill'],
      what: "comparisons of the distilled policy's own samples by the simulated crowd",
      argv: () => [
        'collect',
        ...['--policy', distilled, '--world', p.worldDir, '--out', o('collect'), '--seed', seed],
        ...['--max-new-tokens', tokens, '--pairs', String(s.collectPairs)],
        ...[
          '--train-prompts',
          String(s.collectPrompts.train),
          '--test-prompts',
          String(s.collectPrompts.test),
        ],
      ],
      output: o('collect'),
    },
    {
      name: 'pm',
      after: ['pmp', 'collect'],
      what: "the preference model, finetuned from PMP on comparisons of the policy's own samples",
      // On the critical path with nothing beside it (robustness waits for it): two ranks of 8 comparisons,
      // the same global batch of 16 as one process.
      ranks: 2,
      argv: (ranks) => [
        'pm',
        ...['train', '--init', pmp, '--data', pmData, '--eval', own.test, '--out', o('pm'), '--seed', seed],
        ...['--lr-multiplier', String(s.pmLrMultiplier), '--resume'],
        ...['--batch-size', String(16 / ranks)],
      ],
      output: o('pm'),
    },
    {
      name: 'pm-eval',
      after: ['pm'],
      what: "the PM on held-out comparisons of the policy's own samples: gold accuracy, length baseline",
      argv: () => [
        'pm',
        ...['eval', '--model', pm, '--data', own.test, '--gold'],
        ...['--report', join(o('pm-eval'), 'pm-eval.json')],
      ],
      output: o('pm-eval'),
    },
    {
      name: 'best-of-n',
      after: ['pm', 'distill'],
      what: 'rejection sampling against the PM (N = 1, 4, 16)',
      argv: () => [
        'best-of-n',
        ...['--policy', distilled, '--world', p.worldDir, '--reward', pm, '--seed', seed],
        ...['--ns', '1,4,16', '--prompts', String(s.heldOut), '--max-new-tokens', tokens],
        ...['--out', join(o('best-of-n'), 'best-of-n.json')],
      ],
      output: o('best-of-n'),
    },
    {
      name: 'ppo',
      after: ['pm', 'distill', 'collect'],
      what: 'PPO against the PM with a KL penalty, from the distilled policy',
      argv: () => [
        'ppo',
        ...['--init', distilled, '--world', p.worldDir, '--reward', pm, '--out', o('ppo'), '--seed', seed],
        ...['--steps', String(s.ppo.steps), '--batch-size', String(s.ppo.batchSize)],
        ...['--mini-batch-size', String(s.ppo.miniBatchSize), '--max-new-tokens', tokens],
        ...['--lr', String(s.ppo.lr), '--kl-coef', String(s.ppo.klCoef), '--whiten-rewards'],
        ...['--value-model', s.ppo.valueModel, '--normalize-reward', '--held-out', own.test],
        ...['--eval-every', '20', '--eval-prompts', '64', '--checkpoint-every', '20'],
        '--resume',
      ],
      output: o('ppo'),
    },
    {
      name: 'robustness',
      // Not on the critical path: it waits for the PM stage, which then has both cores.
      after: ['pmp', 'collect', 'distill', 'pm'],
      what: 'train PM vs test PM vs gold along √KL (PPO against the train PM)',
      argv: () => [
        'robustness',
        ...['--policy', distilled, '--world', p.worldDir, '--pm-init', pmp, '--out', o('robustness')],
        ...['--data', pmData, '--held-out', own.test, '--pm-lr-multiplier', String(s.pmLrMultiplier)],
        ...['--steps', String(s.robustness.steps), '--snapshot-every', String(s.robustness.snapshotEvery)],
        ...['--checkpoint-every', String(s.robustness.snapshotEvery), '--batch-size', '32'],
        ...['--mini-batch-size', '16', '--max-new-tokens', tokens, '--whiten-rewards'],
        ...['--lr', String(s.robustness.lr), '--kl-coef', String(s.robustness.klCoef)],
        ...['--value-model', s.robustness.valueModel],
        ...['--eval-prompts', String(s.robustness.evalPrompts), '--seed', seed],
      ],
      output: o('robustness'),
    },
    {
      name: 'online',
      after: ['pm', 'ppo', 'pmp', 'collect'],
      what: `${s.online.rounds} online round(s) with the simulated crowd after round 0 (the PM and PPO above), Elo`,
      argv: () => [
        'online',
        ...['--world', p.worldDir, '--init', distilled, '--pm-init', pmp, '--out', o('online')],
        ...['--round0-data', pmData, '--round0-pm', pm, '--round0-policy', ppo, '--test-data', own.test],
        ...['--rounds', String(s.online.rounds), '--comparisons', String(s.online.comparisons)],
        ...['--eval-comparisons', String(s.online.evalComparisons), '--deploy', '2'],
        ...['--eval-prompts', String(s.heldOut), '--bootstrap', String(s.online.bootstrap)],
        ...['--max-new-tokens', tokens, '--temperature', '1', '--top-p', '1', '--seed', seed],
        ...['--pm-lr-multiplier', String(s.pmLrMultiplier)],
        ...['--ppo-steps', String(s.ppo.steps), '--ppo-batch-size', String(s.ppo.batchSize)],
        ...['--ppo-mini-batch-size', String(s.ppo.miniBatchSize), '--ppo-max-new-tokens', tokens],
        ...['--ppo-lr', String(s.ppo.lr), '--ppo-kl-coef', String(s.ppo.klCoef), '--ppo-whiten-rewards'],
        ...['--ppo-value-model', s.ppo.valueModel, '--policy-trainer', s.online.policyTrainer],
        ...['--policy-from', s.online.policyFrom, '--rs-n', String(s.online.rsN)],
        ...['--rs-epochs', String(s.online.rsEpochs), '--rs-prompts', String(s.online.rsPrompts)],
      ],
      output: o('online'),
    },
    {
      name: 'eval',
      after: ['ppo', 'distill'],
      what: 'the base, distilled and RLHF policies on the held-out prompts (gold), and task accuracy',
      prepare: () => {
        link(models, 'base', p.lm);
        link(models, 'distilled', distilled);
        link(models, 'ppo', ppo);
      },
      argv: () => [
        'eval',
        ...['--models', ['base', 'distilled', 'ppo'].map((m) => join(models, m)).join(',')],
        ...['--world', p.worldDir, '--held-out', String(s.heldOut), '--samples', String(s.evalSamples)],
        ...['--seed', seed, '--limit', '64'],
        ...['--max-new-tokens', tokens, '--out', join(o('eval'), 'eval.json')],
      ],
      output: o('eval'),
    },
    {
      name: 'ood',
      after: [],
      what: 'OOD detection of harmful requests from the LM’s activations',
      argv: () => [
        'ood',
        ...['--model', p.lm, '--in', w('ood-benign.jsonl'), '--out-of', w('ood-harmful.jsonl')],
        ...['--limit', '300', '--out', join(o('ood'), 'ood.json')],
      ],
      output: o('ood'),
    },
    {
      name: 'pm-size',
      after: [],
      what: 'PM accuracy vs model size, and PMP vs none at small data (--full)',
      argv: () => [
        'pm',
        ...['experiment', 'all', '--world', p.worldDir, '--out', o('pm-size'), '--seed', seed],
        ...['--lm-steps', '1200'],
      ],
      output: o('pm-size'),
      full: true,
    },
    {
      name: 'report',
      after: ['pmp', 'pm-eval', 'best-of-n', 'ppo', 'robustness', 'online', 'eval', 'ood'],
      what: 'the HTML report of the run',
      argv: () => ['report', p.out, '--out', join(p.out, 'report.html')],
      output: join(p.out, 'report.html'),
    },
  ];
}

const bin = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'hhkit.js');

/**
 * Runs the stages as `hhkit` child processes, `slots` at a time (one torch thread each: a small model's
 * step is bound by per-op overhead, so two one-thread processes get ~1.8× the work of one two-thread
 * process done), each as soon as the stages it reads are done — the critical path (distill → collect →
 * pm → ppo → online) first. Output lines carry the stage's name. A finished stage leaves
 * OUT/.stages/<stage>.done and is skipped on a rerun; a stage cut short resumes from its checkpoint.
 * Throws when a stage fails (after the running ones end), leaving its folder for the next run to resume.
 * Returns the seconds each stage took in this call.
 */
export async function runDemoStages(
  p: DemoPaths,
  o: {
    first: number;
    total: number;
    started: number;
    stopAfter: string;
    full: boolean;
    slots: number;
    /** Whether the addon can run data-parallel ranks (built with gloo); without it every stage is one process. */
    multiProcess: boolean;
  },
): Promise<Record<string, number>> {
  const stagesDir = join(p.out, '.stages');
  mkdirSync(stagesDir, { recursive: true });
  const all = demoStages(p).filter((s) => o.full || !s.full);
  // With --stop-after, only that stage and what it reads.
  const wanted = new Set<string>();
  const want = (name: string): void => {
    if (wanted.has(name)) return;
    wanted.add(name);
    for (const d of all.find((s) => s.name === name)?.after ?? []) want(d);
  };
  for (const s of all) if (!o.stopAfter || s.name === o.stopAfter) want(s.name);
  const stages = all.filter((s) => wanted.has(s.name));
  const number = new Map(all.map((s, i) => [s.name, o.first + i]));
  const marker = (name: string) => join(stagesDir, `${name}.done`);
  const done = new Set(stages.filter((s) => existsSync(marker(s.name))).map((s) => s.name));
  for (const name of done) console.error(`[${number.get(name)}/${o.total}] ${name}: done in an earlier run`);
  stopOrphans(stagesDir);
  const seconds: Record<string, number> = {};
  const running = new Map<string, Promise<void>>();
  let failure: Error | null = null;
  // The critical path first, then the rest in the paper's order.
  const critical = ['distill', 'pmp', 'collect', 'pm', 'ppo', 'online'];
  const rank = (s: Stage) => (critical.includes(s.name) ? critical.indexOf(s.name) : critical.length);
  const ready = () =>
    stages
      .filter((s) => !done.has(s.name) && !running.has(s.name) && s.after.every((d) => done.has(d)))
      .sort((a, b) => rank(a) - rank(b));
  // A stage of several ranks takes that many slots (only when the demo has them; else one). It runs as that
  // many one-thread ranks when the addon can launch ranks, else as one process with a thread per slot.
  const slotsOf = (s: Stage): number => ((s.ranks ?? 1) <= o.slots ? (s.ranks ?? 1) : 1);
  const ranksOf = (s: Stage): number => (o.multiProcess ? slotsOf(s) : 1);
  const freeSlots = (): number =>
    stages.filter((s) => running.has(s.name)).reduce((free, s) => free - slotsOf(s), o.slots);
  const start = (stage: Stage): void => {
    const elapsed = formatDuration((performance.now() - o.started) / 1000);
    const resuming = existsSync(stage.output);
    console.error(
      `[${number.get(stage.name)}/${o.total}] ${stage.name}: ${stage.what}${resuming ? ' (resuming)' : ''} · ${elapsed} elapsed`,
    );
    // Stages that write one file (best-of-N, eval, OOD) need their folder.
    if (!stage.output.endsWith('.html')) mkdirSync(stage.output, { recursive: true });
    stage.prepare?.();
    const ranks = ranksOf(stage);
    const argv = stage.argv(ranks);
    const command = ranks > 1 ? ['launch', '--nproc', String(ranks), '--', ...argv] : argv;
    const t0 = performance.now();
    const tag = `  ${stage.name} │ `;
    if (ranks < slotsOf(stage))
      console.error(
        `${tag}one process with ${slotsOf(stage)} threads, not ${slotsOf(stage)} data-parallel ranks: this build of the addon has no gloo (install libgloo-dev, then run setup again: \`npm run setup\` in a clone, \`npx hhkit setup\` in a project)`,
      );
    const threads = String(slotsOf(stage) / ranks);
    const env = o.slots > 1 ? { ...process.env, HHKIT_NUM_THREADS: threads } : process.env;
    const pidFile = join(stagesDir, `${stage.name}.pid`);
    const job = runChild(process.execPath, [bin, ...command], {
      env,
      onSpawn: (child) => writeFileSync(pidFile, String(child.pid)),
      onStderrLine: (line) => console.error(`${tag}${line}`),
      onStdoutLine: (line) => console.error(`${tag}${line}`),
    }).then(async (r) => {
      rmSync(pidFile, { force: true });
      running.delete(stage.name);
      if (r.code !== 0) {
        failure ??= new Error(
          `demo stage '${stage.name}' failed (exit ${r.code ?? r.signal}); rerun \`hhkit demo\` to resume. Command: hhkit ${command.join(' ')}`,
        );
        return;
      }
      seconds[stage.name] = (performance.now() - t0) / 1000;
      await writeFileAtomic(
        marker(stage.name),
        JSON.stringify({ seconds: seconds[stage.name], argv: command }),
      );
      done.add(stage.name);
    });
    running.set(stage.name, job);
  };
  for (;;) {
    // The first ready stage (critical path first) starts when its slots are free; a stage that needs
    // more waits, and nothing jumps ahead of it, so the critical path is never held back.
    if (!failure)
      for (const stage of ready()) {
        if (slotsOf(stage) > freeSlots()) break;
        start(stage);
      }
    if (running.size === 0) break;
    await Promise.race(running.values());
  }
  if (failure) throw failure;
  return seconds;
}

/** Stops stage processes a killed demo left running (their pid files), so a rerun never races them. */
function stopOrphans(stagesDir: string): void {
  for (const name of readdirSync(stagesDir).filter((n) => n.endsWith('.pid'))) {
    const pid = Number(readFileSync(join(stagesDir, name), 'utf8'));
    try {
      // Only if that pid is still an hhkit process (pids are reused).
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (Number.isInteger(pid) && pid > 0 && cmdline.includes('hhkit.js')) process.kill(pid, 'SIGKILL');
    } catch {
      // already gone (or no /proc: nothing to stop)
    }
    rmSync(join(stagesDir, name), { force: true });
  }
}

/** Seconds every finished stage took, from the markers (this run's and earlier runs'). */
export function stageSeconds(out: string): Record<string, number> {
  const dir = join(out, '.stages');
  const result: Record<string, number> = {};
  if (!existsSync(dir)) return result;
  for (const stage of demoStages({ out, worldDir: '', lm: '', seed: 0, scale: 'full' })) {
    const marker = join(dir, `${stage.name}.done`);
    const data = readJsonIfPresent(marker) as { seconds?: number } | null;
    if (typeof data?.seconds === 'number') result[stage.name] = data.seconds;
  }
  return result;
}

/** Reads a JSON file if it exists, else null (the summary tolerates stages that wrote nothing). */
export function readJsonIfPresent(path: string): unknown {
  if (!existsSync(path)) return null;
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    return null;
  }
}
