import { resolve } from 'node:path';
import { initProcessGroup } from '../engine/index.ts';
import { defaultPPOConfig, type PPOConfig } from '../rl/ppo-config.ts';
import { type PPOEvent, trainPPO } from '../rl/ppo.ts';
import type { RewardFn } from '../rl/rollout.ts';
import { hardwareDocs } from '../train/config.ts';
import {
  configOptions,
  type OptionSpec,
  outputFolder,
  parseArgs,
  requireFile,
  requireFolder,
  stringOption,
  UsageError,
} from './args.ts';
import type { Command } from './main.ts';
import { TENSORBOARD_HELP, tensorboardLog } from './tensorboard.ts';
import {
  applyOverrides,
  checkpointTokenizer,
  commandDevice,
  fmt,
  goldReward,
  heldOutChosen,
  optionLines,
  pmReward,
  readRLPrompts,
  resolveCheckpoint,
} from './rl-common.ts';

const OWN = [
  'init',
  'world',
  'reward',
  'normalizeReward',
  'chatTemplate',
  'heldOut',
  'evalPrompts',
  'tensorboard',
  'resume',
  'strict',
  'allowNonfinite',
  'json',
  'help',
  'config',
];
const ppoConfig = configOptions(defaultPPOConfig);
const OPTIONS: OptionSpec = {
  command: 'ppo',
  values: ['init', 'world', 'reward', 'eval-prompts', 'held-out', 'tensorboard', ...ppoConfig.values],
  flags: ['resume', 'normalize-reward', 'strict', 'allow-nonfinite', 'chat-template', ...ppoConfig.flags],
};

const help = `usage: hhkit ppo --init POLICY --world DIR --reward PM|gold [--out DIR] [--key value …] [--resume] [--json]

RLHF with PPO (Bai et al. 2022 §4.1) in TRL's stages: rollout (KV-cache sampler, temperature 1, no top-k)
→ reward of the full transcript → per-token KL penalty against the frozen initial policy, r − λ_KL·KL
(λ_KL = 0.001 as in the paper; --kl-controller adaptive for Ziegler et al.'s controller) → optional reward
normalisation (--normalize-reward: subtract the PM's mean on the preferred responses of held-out comparisons)
→ whitening
→ GAE (γ = 1, λ = 0.95) with a value head (--value-model shared|separate) → clipped policy loss (ε = 0.2)
and clipped value loss, K passes (--ppo-epochs) over minibatches. The value head reads the policy's own
trunk (shared, the default: one model) or a copy of the initial policy trained as the critic (separate,
as OpenRLHF and DeepSpeed-Chat: twice the memory, ~1.4× the step time). On the demo's 2-layer policy the
shared trunk held gold at 0.78-0.79 from lr 2e-5 to 1e-4 (its PM reward fell at the larger steps, likely
from the value loss's gradients in the trunk); the separate critic reached 0.82 at lr 5e-5, and exploited the
PM's weak spots further too (see src/cli/demo-stages.ts).

Trains on the world's generated RL prompts; evaluates on its fixed static prompts every --eval-every steps
(reward, gold HH, KL, √KL; the eval's KL compares whole next-token distributions along each sample, ≥ 0 and
less noisy than the training step's sampled-token KL). Logs per step: reward, KL, √KL, gold HH, entropy,
clip fraction, approx-KL, value loss, response length, empty-response fraction, the time split. A NaN/±Inf
reward, loss, gradient norm or weight stops the run on every rank with one line naming the step and the
last good checkpoint (kept; nothing non-finite is written) and exit status 3; warns when the sampled KL of
the last 8 steps, pooled, is below −0.02 and 3 standard errors below zero (the samples are not the policy's
own; k1 only) and on EOS-only collapse.

Writes OUT/checkpoint (kind 'policy': the policy LM, of --init's family, + value_head.* tensors, optimiser state),
OUT/snapshots/step-N (with --snapshot-every), OUT/metrics.jsonl.

Data-parallel: \`hhkit launch --nproc N -- ppo …\` shards the rollouts over N processes (c10d gloo).
--batch-size and --mini-batch-size stay global (TRL/OpenRLHF's rollout batch) and must be divisible by N:
each rank samples batch-size/N prompts with its own seed and trains on mini-batch-size/N rows per optimiser
step; whitening, the KL controller and the logged metrics use all ranks' samples, and gradients are summed
across ranks. Rank 0 evaluates, logs and writes checkpoints, after checking that the ranks' weights agree.

Device and precision: the policy, the frozen reference, the value head and a PM reward run on --device
(a GPU when there is one; cuda:LOCAL_RANK per rank under launch). --precision bf16 runs the rollout and
the policy, value, reference and PM forwards in bfloat16 autocast; weights, AdamW, log-probs, KL,
whitening, GAE and the losses stay float32, and checkpoints are float32.

options:
  --init POLICY        initial policy checkpoint or run folder (the context-distilled LM); also the KL reference
  --world DIR          the world (rl-prompts.jsonl; gold judge)
  --reward R           'gold' (the world's gold HH score) or a PM checkpoint / run folder
  --normalize-reward   subtract the PM's mean score of the chosen responses of held-out comparisons (sets
                       --reward-offset): a response scored like a typical preferred one gets 0
  --held-out FILES     the comparisons --normalize-reward averages over (default: the world's test files;
                       hhkit collect's test.jsonl centres on the initial policy's own samples)
  --eval-prompts N     held-out prompts per evaluation (default 64)
  --resume             continue OUT/checkpoint
  --strict             a bad line in the world's files is an error (rl-prompts.jsonl always is)
  --allow-nonfinite    load the --init or resume policy even if its weights hold NaN/±Inf (by default an
                       error naming the file and tensor)
  --chat-template      write dialogues in the folder's chat template (tokenizer_config.json; ChatML:
                       Qwen2/2.5/3, SmolLM2-Instruct) for the policy and the PM; replies stop at <|im_end|>
  --json               the last stdout line is the summary as one JSON object
  --tensorboard DIR    ${TENSORBOARD_HELP}
${optionLines(defaultPPOConfig, hardwareDocs)}`;

/**
 * The reward function named by --reward: the gold judge, or a PM checkpoint (run on `hw.device`, under
 * bf16 autocast when `hw.precision` says so).
 */
export async function rewardOption(
  spec: string,
  world: string,
  normalise: boolean,
  hw: { device: string; precision: string } = { device: 'cpu', precision: 'fp32' },
  strict = false,
  heldOut?: readonly string[],
  chatTemplate = false,
): Promise<{ reward: RewardFn; offset: number | null; label: string }> {
  if (spec === 'gold') return { reward: goldReward, offset: null, label: 'gold' };
  const pm = await pmReward(spec, hw, chatTemplate);
  const offset = normalise ? await pm.meanOn(await heldOutChosen(world, 400, strict, heldOut)) : null;
  return { reward: pm.reward, offset, label: `pm ${spec}` };
}

/**
 * The stderr line `hhkit ppo` prints for an event (resume, evaluation, warning); null for the others.
 *
 * @example describePPOEvent({ type: 'resume', step: 40, dir: 'runs/ppo/checkpoints/step-000040' }) // 'resuming from step 40 (…)'
 */
export function describePPOEvent(e: PPOEvent): string | null {
  switch (e.type) {
    case 'resume':
      return `resuming from step ${e.step} (${e.dir})`;
    case 'eval':
      return `eval step ${e.step}: reward ${fmt(e.evaluation.reward)} gold ${fmt(e.evaluation.gold)} KL ${fmt(e.evaluation.kl)} √KL ${fmt(e.evaluation.sqrtKL)} length ${fmt(e.evaluation.responseLength, 1)}`;
    case 'warning':
      return `warning (step ${e.step}, ${e.kind}): ${e.message}`;
    default:
      return null;
  }
}

export const command: Command = {
  summary: 'RLHF: PPO against a preference model (or the gold judge) with a KL penalty',
  help,
  async run(argv) {
    const { options } = parseArgs(argv, OPTIONS);
    const init = stringOption(options, 'init', '');
    const world = stringOption(options, 'world', '');
    const rewardSpec = stringOption(options, 'reward', '');
    if (!init || !world || !rewardSpec)
      throw new UsageError(`ppo: --init, --world and --reward are required\n\n${help}`);
    const config: PPOConfig = applyOverrides(defaultPPOConfig, options, [
      ...OWN,
      'normalize-reward',
      'held-out',
      'eval-prompts',
    ]);
    config.out = resolve(outputFolder(config.out, '--out'));
    requireFolder(world, '--world');
    // Under `hhkit launch` every rank loads the same models and prompts; rank 0 alone talks.
    const { rank, worldSize } = initProcessGroup();
    const say = (line: string): void => {
      if (rank === 0) console.error(line);
    };
    const device = commandDevice(config, 'ppo'); // after initProcessGroup: cuda means cuda:LOCAL_RANK
    const ckpt = resolveCheckpoint(init);
    const tokenizer = checkpointTokenizer(ckpt, options);
    const heldOutList = stringOption(options, 'held-out', '');
    const heldOutFiles = heldOutList
      ? heldOutList.split(',').map((f) => requireFile(f, '--held-out'))
      : undefined;
    const { reward, offset, label } = await rewardOption(
      rewardSpec,
      world,
      options['normalize-reward'] === true,
      { device, precision: config.precision },
      options['strict'] === true,
      heldOutFiles,
      options['chat-template'] === true,
    );
    if (offset !== null) {
      config.rewardOffset = offset;
      say(
        `reward normalisation: subtracting the PM's mean on held-out chosen responses ${offset.toFixed(4)}`,
      );
    }
    const prompts = readRLPrompts(world);
    const evalCount = Number(options['eval-prompts'] ?? 64);
    say(
      `ppo: ${prompts.train.length} training prompts, ${Math.min(evalCount, prompts.eval.length)} held-out; reward ${label}; ${device}, ${config.precision}`,
    );
    if (worldSize > 1)
      say(
        `data-parallel: ${worldSize} processes, ${config.batchSize / worldSize} of the ${config.batchSize} prompts per step each`,
      );
    const tensorboard = tensorboardLog(
      stringOption(options, 'tensorboard', ''),
      rank,
      options['resume'] === true,
    );
    const result = await trainPPO({
      config,
      init: ckpt,
      tokenizer,
      prompts: prompts.train,
      evalPrompts: prompts.eval.slice(0, evalCount),
      reward,
      gold: goldReward,
      resume: options['resume'] === true,
      allowNonFinite: options['allow-nonfinite'] === true,
      progress: true,
      onEvent: (e) => {
        tensorboard?.write(e);
        const line = describePPOEvent(e);
        if (line) console.error(line);
      },
    }).finally(() => tensorboard?.close());
    if (rank !== 0) return 0;
    const summary = {
      out: config.out,
      checkpoint: result.checkpoint,
      steps: result.steps,
      resumedFrom: result.resumedFrom,
      before: result.firstEval && {
        reward: result.firstEval.reward,
        gold: result.firstEval.gold,
        kl: result.firstEval.kl,
      },
      after: result.lastEval && {
        reward: result.lastEval.reward,
        gold: result.lastEval.gold,
        kl: result.lastEval.kl,
        sqrtKL: result.lastEval.sqrtKL,
      },
      lastStep: result.lastStep,
      worldSize: result.worldSize,
      drift: result.drift,
    };
    if (result.firstEval && result.lastEval) {
      console.error(
        `held-out gold HH ${fmt(result.firstEval.gold)} → ${fmt(result.lastEval.gold)}, reward ${fmt(result.firstEval.reward)} → ${fmt(result.lastEval.reward)}, KL ${fmt(result.lastEval.kl)} nats`,
      );
    }
    if (options['json'] === true) console.log(JSON.stringify(summary));
    return 0;
  },
};
