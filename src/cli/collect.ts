import { resolve } from 'node:path';
import { collectPolicyComparisons } from '../online/policy-comparisons.ts';
import {
  modelOption,
  numberOption,
  type OptionSpec,
  outputFolder,
  parseArgs,
  requireFolder,
  stringOption,
  UsageError,
} from './args.ts';
import type { Command } from './main.ts';
import { resolveCheckpoint } from './rl-common.ts';

const OPTIONS: OptionSpec = {
  command: 'collect',
  values: [
    'policy',
    'init',
    'world',
    'out',
    'train-prompts',
    'test-prompts',
    'pairs',
    'max-new-tokens',
    'seed',
  ],
};

const help = `usage: hhkit collect --policy CKPT (or --init CKPT) --world DIR --out DIR [options] [--json]

Comparisons of a policy's own samples, labelled by the world's simulated crowd — the paper's base
dataset (Bai et al. 2022 §2.3), which crowdworkers made by comparing two responses of the
context-distilled model. For each human prompt of the world's comparison files the policy writes two
responses at temperature 1; a simulated helpful worker picks the better one (helpful prompts), a
red-teamer the more harmful (harmful prompts, stored with the less harmful as chosen, as in HH-RLHF).
Train prompts come from the world's *-train.jsonl, test prompts from its *-test.jsonl (no prompt in both).

Writes OUT/train.jsonl and OUT/test.jsonl (HH-RLHF comparison files: hhkit pm train --data, hhkit pm eval
--data) and OUT/collect.json (counts, identical pairs, gold ties, the crowd's agreement with gold). A
finished collection is reused.

options:
  --policy CKPT          the policy (a checkpoint or a run folder), e.g. the context-distilled LM
  --init CKPT            the same as --policy (the option every command takes for its model)
  --world DIR            the world (comparison files for the prompts, workers.json for the crowd)
  --out DIR              output folder
  --train-prompts N      at most N training prompts, spread over the world's (default 0: all)
  --test-prompts N       at most N test prompts (default 0: all)
  --pairs N              comparisons per training prompt, each of two fresh samples (default 1; test: 1)
  --max-new-tokens N     response length in tokens (default 32)
  --seed S               sampling and labelling seed (default 1)
  --json                 the last stdout line is collect.json as one JSON object`;

export const command: Command = {
  summary: "comparisons of a policy's own samples, labelled by the world's simulated crowd",
  help,
  async run(argv) {
    const { options } = parseArgs(argv, OPTIONS);
    const policy = modelOption(options, 'collect', 'policy').value;
    const world = stringOption(options, 'world', '');
    const out = stringOption(options, 'out', '');
    if (!policy || !world || !out)
      throw new UsageError(`collect: --policy (or --init), --world and --out are required\n\n${help}`);
    const count = (key: string, fallback: number): number => {
      const n = numberOption(options, key, fallback);
      if (!Number.isInteger(n) || n < 0) throw new UsageError(`--${key} expects an integer ≥ 0, got ${n}`);
      return n;
    };
    const report = await collectPolicyComparisons({
      policy: resolveCheckpoint(policy),
      world: requireFolder(resolve(world), '--world'),
      out: outputFolder(resolve(out), '--out'),
      trainPrompts: count('train-prompts', 0),
      testPrompts: count('test-prompts', 0),
      maxNewTokens: Math.max(1, count('max-new-tokens', 32)),
      pairs: Math.max(1, count('pairs', 1)),
      seed: count('seed', 1),
      progress: true,
    });
    const pct = (x: number) => (Number.isFinite(x) ? `${(100 * x).toFixed(1)}%` : '—');
    for (const split of ['train', 'test'] as const) {
      const s = report[split];
      console.error(
        `${split}: ${s.comparisons} comparisons from ${s.prompts} prompts (${s.identical} with two identical samples skipped, ` +
          `${s.goldTies} gold ties; crowd agrees with gold on ${pct(s.crowdAgreesWithGold)} of the rest) → ${report.files[split]}`,
      );
    }
    if (options['json'] === true) console.log(JSON.stringify(report));
    return 0;
  },
};
