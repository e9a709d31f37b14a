import { resolve } from 'node:path';
import { Progress } from '../util/progress.ts';
import { generateWorld, type WorldSize, worldSizes, worldWorkUnits } from '../world/index.ts';
import type { Command } from './main.ts';
import { numberOption, type OptionSpec, outputFolder, parseArgs, stringOption, UsageError } from './args.ts';

const OPTIONS: OptionSpec = { command: 'world', values: ['out', 'seed', 'size', 'agreement'] };

const help = `usage: hhkit world --out DIR [--seed S] [--size small|medium] [--agreement A] [--json]

Generates the assistant world into DIR: pretraining corpus (pretrain.jsonl), PMP pairs (pmp.jsonl),
helpful and harmless comparisons (helpful-train/test.jsonl, harmless-train/test.jsonl), RL prompts
(rl-prompts.jsonl), the HHH prompt (hhh-prompt.txt), OOD sets (ood-harmful.jsonl, ood-benign.jsonl),
the crowd (workers.json) and manifest.json. The same seed always gives the same files.

options:
  --out DIR          output folder (created if missing)
  --seed S           world seed, an integer (default 1)
  --size SIZE        small (a few thousand comparisons, ~4 MB corpus) or medium (default small)
  --agreement A      target inter-worker agreement of the simulated crowd (default 0.665)
  --json             make the last stdout line the manifest as one JSON object`;

export const command: Command = {
  summary: 'generate the built-in assistant world (data, gold judge, crowd)',
  help,
  async run(argv) {
    const { options } = parseArgs(argv, OPTIONS);
    const out = stringOption(options, 'out', '');
    if (!out) throw new UsageError('world: --out DIR is required');
    outputFolder(out, '--out');
    const seed = numberOption(options, 'seed', 1);
    if (!Number.isInteger(seed) || seed < 0)
      throw new UsageError(`--seed expects a non-negative integer, got ${seed}`);
    const size = stringOption(options, 'size', 'small');
    if (!(size in worldSizes))
      throw new UsageError(`--size expects small or medium, got ${JSON.stringify(size)}`);
    const targetAgreement = numberOption(options, 'agreement', 0.665);
    if (!(targetAgreement > 0.5 && targetAgreement < 1))
      throw new UsageError('--agreement expects a number in (0.5, 1)');

    const worldSize = size as WorldSize;
    const bar = new Progress({ total: worldWorkUnits(worldSizes[worldSize]), label: 'world', unit: 'item' });
    const started = performance.now();
    const manifest = await generateWorld({
      out: resolve(out),
      seed,
      size: worldSize,
      crowd: { targetAgreement },
      onProgress: (n, stage) => bar.tick(n, { stage }),
    });
    bar.done();
    const seconds = Math.round((performance.now() - started) / 10) / 100;
    if (options['json']) {
      console.log(JSON.stringify({ ...manifest, out: resolve(out), seconds }));
    } else {
      console.log(JSON.stringify(manifest, null, 2));
      console.log(`wrote ${Object.keys(manifest.files).length + 1} files to ${resolve(out)} in ${seconds}s`);
    }
    return 0;
  },
};
