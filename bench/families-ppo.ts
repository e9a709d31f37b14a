// One PPO step at real size (issue 15 §6): random weights with SmolLM2-135M's exact config for the policy
// (with ActorCritic's shared value head), a frozen reference of the same config, and a preference model of the
// same config with a scalar head. The step is bench/ppo.ts's timePPOSteps:
//   - generation: B 8 prompts of 32 random tokens, 64 new tokens, KV cache, every row runs to the end;
//   - PM scoring: the PM's trunk + head read at each row's last token;
//   - reference: the reference's log-probs, and the rollout policy's log-probs and values (ppoUpdate's stage 3);
//   - training: PPO's defaults scaled to B 8 — K = 2 passes over minibatches of 4 (defaultPPOConfig's B 32,
//     minibatch 16, K 2): clipped policy + 0.1 × clipped value loss, backward, clipGradNorm 1, AdamW.
// Each side runs in its own child process, so its peak RSS (the kernel's high-water mark, models, optimiser
// state and activations included) is of this work alone: hhkit's is this file run with --child, PyTorch's is
// bench/families_ppo_ref.py on test/fixtures/nn/llama_ref.py's model, with the same threads. Each does one
// warm-up step, then `steps` measured ones (the mean per phase is reported).
// HHKIT_BENCH_TINY=1 shrinks the config (2 layers × 64 wide, vocab 1024) to check the bench in seconds.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { AdamW, full, setNumThreads, type Tensor } from '../src/engine/index.ts';
import { createCausalLM, familyConfigFromHf } from '../src/nn/hf-config.ts';
import { PreferenceModel } from '../src/pm/model.ts';
import { defaultPPOConfig } from '../src/rl/ppo-config.ts';
import { ActorCritic } from '../src/rl/policy.ts';
import { type BenchLine, referenceEnv, referencePython } from './engine.ts';
import { SMOLLM2_135M } from './families.ts';
import { type PPOPhaseSeconds, type PPOStepShape, timePPOSteps } from './ppo.ts';

export interface PPOStepWork extends PPOStepShape {
  name: string;
  /** config.json keys of the policy, reference and PM. */
  config: Record<string, unknown>;
}

const BATCH = 8;
export const SMOLLM2_PPO_WORK: PPOStepWork = {
  name: 'smollm2-135m ppo step (B8, prompt 32, 64 new)',
  config: SMOLLM2_135M,
  batch: BATCH,
  promptTokens: 32,
  newTokens: 64,
  ppoEpochs: defaultPPOConfig.ppoEpochs,
  miniBatch: (BATCH * defaultPPOConfig.miniBatchSize) / defaultPPOConfig.batchSize,
  steps: 1,
};

/** The same work on a config small enough to check the bench in seconds (HHKIT_BENCH_TINY=1). */
const TINY_CONFIG = {
  ...SMOLLM2_135M,
  hidden_size: 64,
  intermediate_size: 128,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  vocab_size: 1024,
};

/** The memory the issue sizes a run against: a 24 GiB machine. */
const BUDGET_BYTES = 24 * 2 ** 30;

const PHASES = ['generation', 'scoring', 'reference', 'training', 'total'] as const;
type Phase = (typeof PHASES)[number];

/** What each side's child process reports. */
interface SideResult {
  /** Mean seconds per measured step. */
  seconds: PPOPhaseSeconds;
  /** The process's peak resident set (KiB): VmHWM of /proc/self/status (Linux keeps ru_maxrss across exec,
   *  so a child of a bench process that had grown would report its parent's peak). */
  peakRssKiB: number;
  /** The same before any model was built: the runtime (node + libtorch, or python + torch) alone. */
  baselineRssKiB: number;
}

/** This process's peak resident set in KiB: VmHWM (per address space, so it starts afresh at exec), or
 *  maxRSS where /proc is missing. */
function peakRssKiB(): number {
  try {
    const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]);
  } catch {}
  return process.resourceUsage().maxRSS;
}

/** One PPO step of `w` on hhkit, in this process; returns the time split and this process's peak RSS. */
export function oursPPOStep(w: PPOStepWork, threads: number): SideResult {
  setNumThreads(threads);
  const baselineRssKiB = peakRssKiB();
  const family = familyConfigFromHf(w.config, w.name);
  const policy = createCausalLM(family, { seed: 1 }).eval();
  const reference = createCausalLM(family, { seed: 1 }).eval();
  const pm = PreferenceModel.fresh(family, 2).eval();
  const ac = new ActorCritic(policy, 'shared', null, { seed: 4 });
  const opt = new AdamW(ac.parameters(), { lr: 1e-5, weightDecay: 0 });
  const last = w.promptTokens + w.newTokens - 1; // every row's last token
  const score = (ids: Tensor, attentionMask: Tensor) =>
    pm
      .scores({ ids, attentionMask, readout: full([w.batch], last, { dtype: 'int64' }) })
      .sum()
      .item();
  const seconds = timePPOSteps({ policy, reference, ac, opt, score }, w);
  return { seconds, peakRssKiB: peakRssKiB(), baselineRssKiB };
}

// Runs one side in a child process with `threads` intra-op and BLAS threads; null (and a message) on failure.
function runChild(who: string, command: string, args: string[], threads: number): SideResult | null {
  const r = spawnSync(command, args, {
    cwd: fileURLToPath(new URL('..', import.meta.url)),
    encoding: 'utf8',
    env: (command === process.execPath ? (e: NodeJS.ProcessEnv) => e : referenceEnv)({
      ...process.env,
      OPENBLAS_NUM_THREADS: String(threads),
      OMP_NUM_THREADS: String(threads),
    }),
    maxBuffer: 1 << 24,
  });
  if (r.status !== 0) {
    console.error(
      `[bench families-ppo] ${who} failed (exit ${r.status}): ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`,
    );
    return null;
  }
  return JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '') as SideResult;
}

const mib = (kib: number): number => Math.round(kib / 1024);
const shareOfBudget = (kib: number): number => Math.round((kib * 1024 * 1000) / BUDGET_BYTES) / 1000;
const ofBudget = (kib: number): string => `${(shareOfBudget(kib) * 100).toFixed(1)}% of 24 GiB`;
const round3 = (x: number): number => Math.round(x * 1000) / 1000;

/** A bench line with extra fields (the RSS line's shares of 24 GiB). */
export type FamiliesPPOLine = BenchLine & Record<string, unknown>;

/** `npm run bench -- families-ppo`: the step on hhkit, then on PyTorch, each in its own process. */
export function runFamiliesPPOBench(threads: number): FamiliesPPOLine[] {
  const tiny = process.env.HHKIT_BENCH_TINY === '1';
  const w = tiny
    ? { ...SMOLLM2_PPO_WORK, name: `${SMOLLM2_PPO_WORK.name} [tiny config]`, config: TINY_CONFIG }
    : SMOLLM2_PPO_WORK;
  const self = fileURLToPath(import.meta.url);
  const ours = runChild(
    'hhkit',
    process.execPath,
    ['--import', 'tsx', self, '--child', String(threads), JSON.stringify(w)],
    threads,
  );
  if (!ours) throw new Error('families-ppo: the hhkit side failed (its error is above)');
  const script = fileURLToPath(new URL('./families_ppo_ref.py', import.meta.url));
  const ref = runChild(
    'PyTorch reference',
    referencePython(),
    [script, String(threads), JSON.stringify(w)],
    threads,
  );
  const setup = `random weights, ${tiny ? 'a shrunk config (HHKIT_BENCH_TINY=1)' : "SmolLM2-135M's config"}; threads=${threads}; K ${w.ppoEpochs} × minibatch ${w.miniBatch}; mean of ${w.steps} step(s) after a warm-up`;
  const label: Record<Phase, string> = {
    generation: 'generation',
    scoring: 'PM scoring',
    reference: "reference log-probs (+ the rollout policy's log-probs and values)",
    training: `training (K ${w.ppoEpochs} × minibatch ${w.miniBatch})`,
    total: 'whole step',
  };
  const lines: FamiliesPPOLine[] = PHASES.map((phase) => {
    const r = ref?.seconds[phase] ?? null;
    return {
      bench: `${w.name}: ${label[phase]}`,
      ours: round3(ours.seconds[phase]),
      reference: r === null ? null : round3(r),
      unit: 's',
      ratio: r === null ? null : round3(ours.seconds[phase] / r),
      higherIsBetter: false,
      note: setup,
    };
  });
  lines.push({
    bench: `${w.name}: peak RSS`,
    ours: mib(ours.peakRssKiB),
    reference: ref ? mib(ref.peakRssKiB) : null,
    unit: 'MiB',
    ratio: ref ? round3(ours.peakRssKiB / ref.peakRssKiB) : null,
    higherIsBetter: false,
    oursShareOf24GiB: shareOfBudget(ours.peakRssKiB),
    referenceShareOf24GiB: ref ? shareOfBudget(ref.peakRssKiB) : null,
    note: `hhkit ${ofBudget(ours.peakRssKiB)}${ref ? `, PyTorch ${ofBudget(ref.peakRssKiB)}` : ''}; runtime alone before the models: hhkit ${mib(ours.baselineRssKiB)} MiB${ref ? `, PyTorch ${mib(ref.baselineRssKiB)} MiB` : ''}; each side in its own process`,
  });
  return lines;
}

if (process.argv[2] === '--child' && import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const w = JSON.parse(process.argv[4] ?? '') as PPOStepWork;
  console.log(JSON.stringify(oursPPOStep(w, Number(process.argv[3]))));
}
