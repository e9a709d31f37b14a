import { writeFileSync } from 'node:fs';
import { loadCheckpoint } from '../nn/checkpoint.ts';
import { bestOfN } from '../rl/best-of-n.ts';
import { hardwareDocs } from '../train/config.ts';
import { Progress } from '../util/progress.ts';
import { modelOption, type OptionSpec, outputFile, parseArgs, stringOption, UsageError } from './args.ts';
import type { Command } from './main.ts';
import { rewardOption } from './ppo.ts';
import {
  checkpointTokenizer,
  commandDevice,
  fmt,
  goldReward,
  optionLines,
  readRLPrompts,
  resolveCheckpoint,
} from './rl-common.ts';

const defaultHardware = { device: 'auto', precision: 'fp32' };
const OPTIONS: OptionSpec = {
  command: 'best-of-n',
  values: [
    'policy',
    'init',
    'world',
    'reward',
    'ns',
    'prompts',
    'max-new-tokens',
    'seed',
    'out',
    'device',
    'precision',
  ],
  flags: ['strict', 'chat-template'],
};

const help = `usage: hhkit best-of-n --policy CKPT (or --init CKPT) --world DIR --reward PM|gold [options] [--json]

Rejection sampling, the paper's baseline for RL (§4.2): for each held-out RL prompt of the world, sample
max(N) responses from the policy, keep the one the reward likes best, for every N in --ns (nested subsets
of one sample). Reports, per N, the mean reward and gold HH score of the kept responses and the analytic
KL(best-of-N ‖ policy) = log N − (N − 1)/N nats with its square root.

options:
  --policy CKPT        policy checkpoint or run folder, of any supported family
  --init CKPT          the same as --policy (the option every command takes for its model)
  --world DIR          the world (rl-prompts.jsonl; gold judge)
  --reward R           'gold' or a PM checkpoint / run folder
  --ns LIST            comma-separated N values (default 1,4,16,64)
  --prompts N          held-out prompts used (default 32)
  --max-new-tokens N   response length (default 32)
  --seed S             sampling seed (default 1)
  --out FILE.json      also write the table there
  --strict             accepted as by every data-reading command; a bad rl-prompts.jsonl line is always an error
  --chat-template      write dialogues in the folder's chat template (tokenizer_config.json; ChatML:
                       Qwen2/2.5/3, SmolLM2-Instruct) for the policy and the PM; replies stop at <|im_end|>
  --json               the last stdout line is the report as one JSON object
${optionLines(defaultHardware, hardwareDocs)}

The policy and a PM reward run on --device; --precision bf16 samples and scores in bfloat16 autocast.`;

export const command: Command = {
  summary: 'best-of-N (rejection sampling) by reward, with gold scores and analytic KL',
  help,
  async run(argv) {
    const { options } = parseArgs(argv, OPTIONS);
    const policyPath = modelOption(options, 'best-of-n', 'policy').value;
    const world = stringOption(options, 'world', '');
    const rewardSpec = stringOption(options, 'reward', '');
    if (!policyPath || !world || !rewardSpec)
      throw new UsageError(`best-of-n: --policy (or --init), --world and --reward are required\n\n${help}`);
    const ns = stringOption(options, 'ns', '1,4,16,64').split(',').map(Number);
    if (ns.some((n) => !Number.isInteger(n) || n < 1))
      throw new UsageError('--ns expects positive integers, e.g. 1,4,16,64');
    const out = stringOption(options, 'out', '');
    if (out) outputFile(out, '--out');
    const hw = {
      device: stringOption(options, 'device', defaultHardware.device),
      precision: stringOption(options, 'precision', defaultHardware.precision),
    };
    const device = commandDevice(hw, 'best-of-n');
    const ckpt = resolveCheckpoint(policyPath);
    const tokenizer = checkpointTokenizer(ckpt, options);
    const { model } = loadCheckpoint(ckpt);
    model.eval();
    if (device !== 'cpu') model.to({ device });
    const { reward, label } = await rewardOption(
      rewardSpec,
      world,
      false,
      { device, precision: hw.precision },
      false,
      undefined,
      options['chat-template'] === true,
    );
    const prompts = readRLPrompts(world).eval.slice(0, Number(options['prompts'] ?? 32));
    const bar = new Progress({ total: prompts.length, label: 'best-of-n', unit: 'prompt' });
    const report = await bestOfN(model, tokenizer, prompts, {
      ns,
      reward,
      gold: goldReward,
      maxNewTokens: Number(options['max-new-tokens'] ?? 32),
      seed: Number(options['seed'] ?? 1),
      precision: hw.precision,
      onPrompt: (done) => bar.tick(1, { done }),
    });
    bar.done();
    const lines = [
      `best-of-N on ${report.prompts} held-out prompts, reward ${label}`,
      '     N   reward     gold   KL (nats)   √KL',
    ];
    for (const r of report.rows)
      lines.push(
        `${String(r.n).padStart(6)} ${fmt(r.reward).padStart(8)} ${fmt(r.gold).padStart(8)} ${fmt(r.kl).padStart(11)} ${fmt(r.sqrtKL).padStart(6)}`,
      );
    console.error(lines.join('\n'));
    if (out) writeFileSync(out, `${JSON.stringify({ reward: label, ...report }, null, 2)}\n`);
    if (options['json'] === true) console.log(JSON.stringify({ reward: label, ...report }));
    return 0;
  },
};
