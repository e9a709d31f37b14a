import { writeFileSync } from 'node:fs';
import { type OodReport, evaluateOodDetection, type Pooling } from '../eval/ood-model.ts';
import { loadPrompts } from '../eval/nlp-data.ts';
import { CheckpointError, loadCheckpoint } from '../nn/checkpoint.ts';
import { Tokenizer } from '../tokenizer/index.ts';
import {
  modelOption,
  numberOption,
  type OptionSpec,
  outputFile,
  parseArgs,
  stringOption,
  UsageError,
} from './args.ts';
import type { Command } from './main.ts';
import { warnSkipped } from './warnings.ts';

const OPTIONS: OptionSpec = {
  command: 'ood',
  // biome-ignore format: one list of the command's options
  values: ['model', 'init', 'in', 'out-of', 'pool', 'layers', 'shots', 'seeds', 'seed', 'fit-fraction', 'validation-fraction',
    'limit', 'batch-size', 'tokenizer', 'out'],
  flags: ['strict'],
};

const help = `usage: hhkit ood --model CKPT (or --init CKPT) --in BENIGN.jsonl --out-of HARMFUL.jsonl [options]

OOD detection of harmful requests from a model's activations (Bai et al. 2022, §5.4): pool each
layer's residual stream over the prompt, fit a Gaussian on part of the benign prompts, and report per
layer the AUROC of Mahalanobis and simplified relative Mahalanobis (SRM) distances, benign vs harmful,
then few-shot outlier exposure at the best layer.
The prompts are split, by a seeded shuffle, into disjoint parts: benign into fit / validation / test,
harmful into an exposure pool / validation / test. The best layer is the one with the highest
VALIDATION SRM AUROC; every AUROC reported as a result is on the TEST split, which the choice never
saw. Few-shot exposure draws its M harmful examples from the pool only and scores the test split.
Prompt files: JSON lines {"prompt": "…"} (the world's ood-benign.jsonl / ood-harmful.jsonl) or
comparison lines {"chosen": transcript} (the prompt is up to the last "\\n\\nAssistant:").

options:
  --model CKPT          checkpoint folder of any supported family (hhkit or Hugging Face)
  --init CKPT           the same as --model (the option every command takes for its model)
  --pool mean|last      mean over the prompt's tokens (default) or the last token
  --layers all|i,j,…    hidden-state indices, 0 = embeddings … L = last block (default all)
  --shots 1,2,5,10      outlier examples M for few-shot exposure ("" for none)
  --seeds 5             random draws of the M examples per M
  --seed 0              seed of the splits and the draws
  --fit-fraction 0.5    share of benign prompts used to fit the Gaussian
  --validation-fraction 0.5
                        share of the rest (benign after the fit, harmful after the exposure pool)
                        used to choose the layer; the remainder is the test split
  --limit N             use at most N prompts of each file
  --batch-size 16       prompts per forward pass
  --tokenizer PATH      tokenizer.json when the checkpoint has none
  --out FILE            write the result as JSON (what hhkit report reads as ood.json)
  --strict              stop at the first unusable prompt line or truncated file (exit 1, file:line)
  --json                the last stdout line is the result as one JSON object

the JSON result (--out, --json):
  bestLayer             the layer chosen on the validation split (selection says by what)
  layers[]              per layer: layer, shrinkage, and the TEST-split AUROCs mahalanobis,
                        diagonalMahalanobis, simplifiedRelativeMahalanobis; validation{} holds the
                        same three AUROCs on the validation split (what bestLayer is chosen by)
  selection             {"split": "validation", "score": "simplifiedRelativeMahalanobis"}
  fewShot[]             at bestLayer, on the test split: shots (M), aurocs[] per draw, mean, std
  counts                prompts in each part: fit, validationIn, validationOut, testIn, testOut,
                        outlierPool
  kind, command, model, pool, skippedLines (unusable lines per prompt file)
The headline result is the test AUROC of the best layer: the layers[] entry whose layer is bestLayer.`;

function intList(v: string, what: string): number[] {
  if (v.trim() === '') return [];
  return v.split(',').map((s) => {
    const n = Number(s.trim());
    if (!Number.isInteger(n) || n < 0)
      throw new UsageError(`--${what} expects integers ≥ 0 separated by commas, got ${JSON.stringify(v)}`);
    return n;
  });
}

/** A prompt file's first `limit` prompts; its skipped lines go to stderr and into `skippedLines[path]`. */
function prompts(
  path: string,
  limit: number,
  strict: boolean,
  skippedLines: Record<string, number>,
): string[] {
  const loaded = loadPrompts(path, { strict }); // a wrong path or a strict stop: a one-line error from main
  warnSkipped(loaded.skipped, path, 10);
  skippedLines[path] = loaded.skipped.length;
  return loaded.prompts.slice(0, limit);
}

export const command: Command = {
  summary: 'OOD detection of harmful requests from activations: AUROC per layer, few-shot exposure',
  help,
  async run(argv) {
    const { options } = parseArgs(argv, OPTIONS);
    const modelDir = modelOption(options, 'ood', 'model').value;
    const inFile = stringOption(options, 'in', '');
    const outFile = stringOption(options, 'out-of', '');
    if (!modelDir || !inFile || !outFile)
      throw new UsageError(`ood: --model (or --init), --in and --out-of are required\n\n${help}`);
    const pool = stringOption(options, 'pool', 'mean');
    if (pool !== 'mean' && pool !== 'last')
      throw new UsageError(`--pool expects mean or last, got ${JSON.stringify(pool)}`);
    const layerArg = stringOption(options, 'layers', 'all');
    const shots = intList(stringOption(options, 'shots', '1,2,5,10'), 'shots').filter((m) => m > 0);
    const seeds = numberOption(options, 'seeds', 5);
    const fitFraction = numberOption(options, 'fit-fraction', 0.5);
    if (!(fitFraction > 0 && fitFraction < 1))
      throw new UsageError('--fit-fraction expects a number in (0, 1)');
    const validationFraction = numberOption(options, 'validation-fraction', 0.5);
    if (!(validationFraction > 0 && validationFraction < 1))
      throw new UsageError('--validation-fraction expects a number in (0, 1)');
    const limit = numberOption(options, 'limit', Number.POSITIVE_INFINITY);
    const strict = options['strict'] === true;
    const skippedLines: Record<string, number> = {};
    const out = stringOption(options, 'out', '');
    if (out) outputFile(out, '--out');

    let ckpt: ReturnType<typeof loadCheckpoint>;
    try {
      ckpt = loadCheckpoint(modelDir);
    } catch (err) {
      if (err instanceof CheckpointError) throw new UsageError(err.message);
      throw err;
    }
    const tokPath = stringOption(options, 'tokenizer', ckpt.tokenizerPath ?? '');
    if (!tokPath) throw new UsageError(`${modelDir} has no tokenizer.json; pass --tokenizer PATH`);
    const tok = Tokenizer.fromFile(tokPath);
    const layers = layerArg === 'all' ? undefined : intList(layerArg, 'layers');
    const benign = await tok.encodeBatch(prompts(inFile, limit, strict, skippedLines), {
      allowSpecial: false,
    });
    const harmful = await tok.encodeBatch(prompts(outFile, limit, strict, skippedLines), {
      allowSpecial: false,
    });
    let report: OodReport;
    try {
      report = evaluateOodDetection(ckpt.model, benign, harmful, {
        pool: pool as Pooling,
        ...(layers ? { layers } : {}),
        shots,
        seeds,
        seed: numberOption(options, 'seed', 0),
        fitFraction,
        validationFraction,
        batchSize: numberOption(options, 'batch-size', 16),
      });
    } catch (err) {
      if (err instanceof RangeError) throw new UsageError(err.message);
      throw err;
    }
    const c = report.counts;
    console.log(
      `${modelDir}: ${pool} pooling; fit on ${c.fit} benign; layer chosen on validation ` +
        `(${c.validationIn} benign vs ${c.validationOut} harmful); AUROCs on test (${c.testIn} benign vs ${c.testOut} harmful)`,
    );
    console.log(
      `${'layer'.padStart(5)}  ${'valid. SRM'.padStart(10)}  │ test: ${'Mahalanobis'.padStart(11)}  ${'diagonal'.padStart(8)}  ${'SRM'.padStart(6)}  shrinkage`,
    );
    for (const l of report.layers) {
      const best = l.layer === report.bestLayer ? '  ← best on validation' : '';
      console.log(
        `${String(l.layer).padStart(5)}  ${l.validation.simplifiedRelativeMahalanobis.toFixed(3).padStart(10)}  │       ${l.mahalanobis.toFixed(3).padStart(11)}  ${l.diagonalMahalanobis.toFixed(3).padStart(8)}  ${l.simplifiedRelativeMahalanobis.toFixed(3).padStart(6)}  ${l.shrinkage.toFixed(3).padStart(9)}${best}`,
      );
    }
    const chosen = report.layers.find((l) => l.layer === report.bestLayer)!;
    console.log(
      `result: test AUROC ${chosen.simplifiedRelativeMahalanobis.toFixed(3)} (SRM) at layer ${report.bestLayer}, chosen on validation`,
    );
    if (report.fewShot.length) {
      console.log(
        `few-shot outlier exposure at layer ${report.bestLayer} (${c.outlierPool} harmful prompts to draw from; test AUROC mean ± s.d. over ${seeds} draws):`,
      );
      for (const f of report.fewShot)
        console.log(`  M = ${String(f.shots).padStart(3)}: ${f.mean.toFixed(3)} ± ${f.std.toFixed(3)}`);
    } else if (shots.length) {
      console.log(
        `few-shot outlier exposure skipped: ${harmful.length} harmful prompts are too few (the exposure pool takes at most a third, and needs ≥ M)`,
      );
    }
    const result = {
      kind: 'ood',
      command: `hhkit ood ${argv.join(' ')}`,
      model: modelDir,
      skippedLines,
      ...report,
    };
    if (out) writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
    if (options['json'] === true) console.log(JSON.stringify(result));
    return 0;
  },
};
