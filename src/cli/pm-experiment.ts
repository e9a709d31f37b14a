// `hhkit pm experiment`: the paper's PM experiments on the built-in world (see src/pm/experiments.ts).
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  type ExperimentContext,
  type ExperimentResult,
  formatExperiment,
  loadTaskedComparisons,
  mixExperiment,
  pmpExperiment,
  sizeExperiment,
} from '../pm/index.ts';
import { Tokenizer } from '../tokenizer/index.ts';
import { readCorpusDocuments, resolveLMTrainConfig, trainLM } from '../train/index.ts';
import type { CorpusReport } from '../train/corpus.ts';
import { Progress } from '../util/progress.ts';
import { generateWorld, worldGold, worldSizes, worldWorkUnits } from '../world/index.ts';
import { numberOption, type OptionSpec, outputFolder, parseArgs, stringOption, UsageError } from './args.ts';

/** LM sizes ~4× apart in parameters (with the 1024-token vocabulary): ≈50k, ≈174k, ≈740k. */
export const experimentSizes = [
  { name: 'small', nLayer: 1, nHead: 2, nEmbd: 32 },
  { name: 'medium', nLayer: 2, nHead: 4, nEmbd: 64 },
  { name: 'large', nLayer: 3, nHead: 4, nEmbd: 128 },
] as const;

export const experimentHelp = `usage: hhkit pm experiment size|pmp|mix|all [--out DIR] [--world DIR] [--seed S] [--lm-steps N]
                         [--lr-multiplier X] [--pmp-lr-multiplier X] [--likelihood on|off] [--repeats K] [--json]

Runs the paper's preference-model experiments on the assistant world (generated into DIR/world unless
--world names one), prints a table per experiment with the paper's claim and whether it holds here, and
writes DIR/<experiment>.json. Accuracy is on the world's held-out helpful and harmless comparisons,
against the crowd's labels and against the gold judge's. Every run resumes: rerunning skips what is done.

  size   one LM per size (${experimentSizes.map((s) => `${s.nLayer}×${s.nEmbd}`).join(', ')}: ≈50k, 174k, 740k parameters), pretrained
         --lm-steps steps on the world corpus, then --repeats PMs per size finetuned on all training
         comparisons, each with its own seed; it holds when the mean per size (one run moves a tiny PM
         by ±1–3 points) never falls by more than half a point, and the largest − smallest gain is over
         a point with its Welch t interval over the runs above zero
  pmp    PMP on the forum pairs, then finetuning on 100, 250 and 1000 comparisons, vs finetuning the LM
         directly, on --repeats fresh draws of the comparisons per size; the verdict is the mean gain with
         its t interval over the draws (one draw moves a tiny PM by ±5–10 points at n ≤ 250)
  mix    1200 comparisons with harmless share 0, ⅓, ⅔, 1; then λ = 0.25, 1, 4 at the natural share

The medium LM is shared by pmp and mix. The learning rates are multipliers of the LM's pretraining lr:
the paper's 0.01 (finetuning) and 0.1 (PMP) are for 52B models and large batches; the defaults here
(--lr-multiplier 0.5, --pmp-lr-multiplier 0.5) are what a ~10⁵-parameter model needs to learn in one epoch.

Every PM has the likelihood feature of the LM it starts from (see hhkit pm train --likelihood-lm; a PM
finetuned after PMP inherits PMP's): a PM this small reads one end-of-context token and cannot work out
whether an answer is right, its LM can, and how well grows with the LM's size. --likelihood off trains
plain PMs (measured on seed 1: accuracy then stays flat with size and PMP does not help).

options:
  --out DIR                 results folder (default runs/pm-experiments)
  --world DIR               an existing world folder (default: generate the small world in DIR/world)
  --seed S                  world, LM and PM seed (default 1)
  --lm-steps N              LM pretraining steps per size (default 400)
  --lr-multiplier X         finetuning lr multiplier (default 0.5)
  --pmp-lr-multiplier X     PMP lr multiplier (default 0.5)
  --likelihood on|off       the LM's likelihood feature in every PM (default on)
  --repeats K               runs per setting (default 5): size, PMs per model size, each with its own
                            seed; pmp, draws of the finetuning comparisons per size (all: both; mix
                            ignores it). One run is not judged: it measures no spread
  --json                    make the last stdout line all results as one JSON object`;

async function prepareWorld(dir: string, seed: number): Promise<void> {
  if (existsSync(join(dir, 'manifest.json'))) return;
  console.error(`world: generating the small assistant world in ${dir}`);
  const bar = new Progress({ total: worldWorkUnits(worldSizes.small), label: 'world', unit: 'item' });
  await generateWorld({ out: dir, seed, size: 'small', onProgress: (n) => bar.tick(n) });
  bar.done();
}

async function prepareTokenizer(out: string, corpus: string): Promise<Tokenizer> {
  const path = join(out, 'tokenizer.json');
  if (existsSync(path)) return Tokenizer.fromFile(path);
  const report: CorpusReport = { documents: 0, skipped: 0, blankLines: 0, examples: [] };
  const texts: string[] = [];
  for await (const docs of readCorpusDocuments(corpus, report)) for (const d of docs) texts.push(d.text);
  const tokenizer = Tokenizer.train(texts, { vocabSize: 1024 });
  tokenizer.save(path);
  return tokenizer;
}

async function prepareLM(
  out: string,
  corpus: string,
  tokenizer: Tokenizer,
  size: (typeof experimentSizes)[number],
  steps: number,
  seed: number,
): Promise<string> {
  const config = resolveLMTrainConfig({
    data: corpus,
    out: join(out, `lm-${size.name}`),
    nLayer: size.nLayer,
    nHead: size.nHead,
    nEmbd: size.nEmbd,
    blockSize: 128,
    batchSize: 16,
    steps,
    lr: 2e-3,
    minLr: 2e-4,
    warmupSteps: 30,
    evalEvery: 0,
    checkpointEvery: 100,
    seed,
  });
  console.error(`lm-${size.name}: pretraining ${size.nLayer}×${size.nEmbd} for ${steps} steps`);
  await trainLM(config, { tokenizer, resume: true, progress: true, label: `lm-${size.name}` });
  return join(config.out, 'checkpoint');
}

const OPTIONS: OptionSpec = {
  command: 'pm experiment',
  values: ['out', 'world', 'seed', 'lm-steps', 'lr-multiplier', 'pmp-lr-multiplier', 'likelihood', 'repeats'],
};

/** Runs `hhkit pm experiment …`. */
export async function runExperimentCommand(argv: string[]): Promise<number> {
  const { options, positionals } = parseArgs(argv, OPTIONS);
  if (options['help'] === true) {
    console.log(experimentHelp);
    return 0;
  }
  const which = positionals[0] ?? '';
  const names = which === 'all' ? ['size', 'pmp', 'mix'] : [which];
  if (!['size', 'pmp', 'mix'].includes(names[0]!))
    throw new UsageError(
      `pm experiment: expected size, pmp, mix or all, got '${which}'\n\n${experimentHelp}`,
    );
  const out = resolve(outputFolder(stringOption(options, 'out', 'runs/pm-experiments'), '--out'));
  const seed = numberOption(options, 'seed', 1);
  const lmSteps = numberOption(options, 'lm-steps', 400);
  // Checked before minutes of LM pretraining, not after.
  const repeats = numberOption(options, 'repeats', 5);
  if (!Number.isInteger(repeats) || repeats < 1)
    throw new UsageError(`--repeats expects a positive integer, got ${repeats}`);
  const likelihoodOption = stringOption(options, 'likelihood', 'on');
  if (likelihoodOption !== 'on' && likelihoodOption !== 'off')
    throw new UsageError(`--likelihood expects on or off, got ${JSON.stringify(likelihoodOption)}`);
  const likelihood = likelihoodOption === 'on';
  mkdirSync(out, { recursive: true });
  const world = resolve(stringOption(options, 'world', join(out, 'world')));
  await prepareWorld(world, seed);
  const corpus = join(world, 'pretrain.jsonl');
  const tokenizer = await prepareTokenizer(out, corpus);
  const load = async (file: string) => (await loadTaskedComparisons([join(world, file)])).items;
  const ctx: ExperimentContext = {
    out,
    tokenizer,
    gold: worldGold,
    seed,
    lrMultiplier: numberOption(options, 'lr-multiplier', 0.5),
    pmpLrMultiplier: numberOption(options, 'pmp-lr-multiplier', 0.5),
    likelihood,
    data: {
      helpfulTrain: await load('helpful-train.jsonl'),
      harmlessTrain: await load('harmless-train.jsonl'),
      helpfulTest: await load('helpful-test.jsonl'),
      harmlessTest: await load('harmless-test.jsonl'),
      pmp: await load('pmp.jsonl'),
    },
    log: (line) => console.error(line),
  };
  const medium = experimentSizes[1];
  const results: ExperimentResult[] = [];
  for (const name of names) {
    let result: ExperimentResult;
    if (name === 'size') {
      const lms = [];
      for (const size of experimentSizes)
        lms.push({
          name: size.name,
          checkpoint: await prepareLM(out, corpus, tokenizer, size, lmSteps, seed),
        });
      result = await sizeExperiment(ctx, lms, repeats);
    } else {
      const lm = await prepareLM(out, corpus, tokenizer, medium, lmSteps, seed);
      result =
        name === 'pmp'
          ? await pmpExperiment(ctx, lm, [100, 250, 1000], repeats)
          : await mixExperiment(ctx, lm, 1200, [0, 1 / 3, 2 / 3, 1], [0.25, 1, 4]);
    }
    writeFileSync(join(out, `${name}.json`), `${JSON.stringify(result, null, 2)}\n`);
    console.log(`${formatExperiment(result)}\n`);
    results.push(result);
  }
  if (options['json'] === true) console.log(JSON.stringify({ out, results }));
  return 0;
}
