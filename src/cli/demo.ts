import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { defaultCharLmConfig, readCorpus, trainCharLm } from '../train/charlm.ts';
import { Progress } from '../util/progress.ts';
import { generateWorld, type WorldManifest, worldSizes, worldWorkUnits } from '../world/index.ts';
import { numberOption, parseArgs, stringOption } from './args.ts';
import type { Command } from './main.ts';

const help = `usage: hhkit demo [--out DIR] [--seed S] [--steps N] [--json]

Runs the whole pipeline that exists so far on the built-in assistant world, end to end:
  1. world    generate the small world (dialogues, comparisons, crowd, PMP pairs) into DIR/world
  2. lm       train a one-block byte-level transformer LM on its pretraining corpus with the libtorch
              engine, showing the loss falling (the GPT, PM and RL stages replace this as they land)
Resumable: run it again after a crash or Ctrl-C and it continues from the last checkpoint; a finished
stage is skipped. Progress bars go to stderr.

options:
  --out DIR     run folder (default runs/demo)
  --seed S      world and training seed (default 1)
  --steps N     LM training steps (default ${defaultCharLmConfig.steps})
  --json        make the last stdout line the run summary as one JSON object`;

export const command: Command = {
  summary: 'run the whole pipeline on the built-in world (the README main job)',
  help,
  async run(argv) {
    const { options } = parseArgs(argv);
    const out = resolve(stringOption(options, 'out', 'runs/demo'));
    const seed = numberOption(options, 'seed', 1);
    const steps = numberOption(options, 'steps', defaultCharLmConfig.steps);
    const started = performance.now();

    // 1. world
    const worldDir = join(out, 'world');
    const manifestPath = join(worldDir, 'manifest.json');
    let manifest: WorldManifest;
    if (existsSync(manifestPath)) {
      manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as WorldManifest;
      console.error(`[1/2] world: already generated in ${worldDir}`);
    } else {
      console.error('[1/2] world: generating the small assistant world');
      const bar = new Progress({ total: worldWorkUnits(worldSizes.small), label: 'world', unit: 'item' });
      manifest = await generateWorld({ out: worldDir, seed, size: 'small', onProgress: (n) => bar.tick(n) });
      bar.done();
    }

    // 2. byte-level transformer LM on the pretraining corpus
    console.error('[2/2] lm: training a one-block byte-level transformer on the pretraining corpus');
    const { text, skipped } = readCorpus(join(worldDir, 'pretrain.jsonl'));
    for (const s of skipped.slice(0, 5)) console.error(`  skipped ${s}`);
    const config = { ...defaultCharLmConfig, steps, seed };
    const bar = new Progress({ total: config.steps, label: 'lm', unit: 'step' });
    let resumed = false;
    const result = trainCharLm(text, join(out, 'lm'), config, (s) => {
      if (!resumed) {
        bar.resumeAt(s.step - 1);
        resumed = true;
      }
      bar.tick(1, { loss: s.loss, 'tok/s': Math.round(s.tokensPerSec) });
    });
    bar.done();

    const summary = {
      out,
      world: { files: Object.keys(manifest.files ?? {}).length },
      lm: {
        firstLoss: Number(result.firstLoss.toFixed(4)),
        lastLoss: Number(result.lastLoss.toFixed(4)),
        steps: result.steps,
        resumedFrom: result.resumedFrom,
      },
      seconds: Number(((performance.now() - started) / 1000).toFixed(1)),
    };
    console.log(`world: ${worldDir}`);
    console.log(`lm: loss ${summary.lm.firstLoss} → ${summary.lm.lastLoss} over ${result.steps} steps`);
    console.log(`lm sample after "What is 2 + 3?": ${JSON.stringify(result.sample)}`);
    if (options['json']) console.log(JSON.stringify(summary));
    return result.lastLoss < result.firstLoss ? 0 : 1;
  },
};
