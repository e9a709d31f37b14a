import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { barrier, initProcessGroup } from '../engine/index.ts';
import { Tokenizer } from '../tokenizer/index.ts';
import {
  camelKey,
  ConfigError,
  defaultLMTrainConfig,
  type LMTrainConfig,
  latestCheckpointDir,
  lmTrainConfigDocs,
  readCorpusDocuments,
  resolveLMTrainConfig,
  type TrainEvent,
  type TrainLMResult,
  trainLM,
} from '../train/index.ts';
import { type CorpusReport, corpusWarnings, newCorpusReport } from '../train/corpus.ts';
import {
  configOptions,
  numberOption,
  type OptionSpec,
  outputFolder,
  parseArgs,
  requireFile,
  requireFolder,
  stringOption,
  UsageError,
  CHAT_TEMPLATE_HELP,
  chatTemplateOption,
} from './args.ts';
import type { Command } from './main.ts';
import { TENSORBOARD_HELP, tensorboardLog } from './tensorboard.ts';

const DEFAULT_VOCAB = 2048;
// Options of the command itself; every other --key is a training-config key.
const CLI_KEYS = new Set([
  'tokenizer',
  'vocabSize',
  'chatTemplate',
  'tensorboard',
  'resume',
  'strict',
  'allowNonfinite',
  'json',
  'help',
  'config',
]);
const lmConfig = configOptions(defaultLMTrainConfig);
const OPTIONS: OptionSpec = {
  command: 'pretrain',
  values: ['tokenizer', 'vocab-size', 'tensorboard', ...lmConfig.values],
  flags: ['resume', 'strict', 'allow-nonfinite', 'chat-template', ...lmConfig.flags],
};

const kebab = (key: string): string => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

const configHelp = (Object.keys(defaultLMTrainConfig) as (keyof LMTrainConfig)[])
  .filter((key) => key !== 'data' && key !== 'out')
  .map((key) => {
    const flag = `  --${kebab(key)} ${typeof defaultLMTrainConfig[key] === 'number' ? 'N' : 'S'}`;
    return `${flag.padEnd(28)}${lmTrainConfigDocs[key]} (default ${JSON.stringify(defaultLMTrainConfig[key])})`;
  })
  .join('\n');

const help = `usage: hhkit pretrain --data FILE [--out DIR] [--config FILE.json] [--tokenizer PATH]
                      [--key value …] [--resume] [--json]

Trains a language model on a corpus (the paper's first stage): a byte-level BPE tokenizer first (unless
--tokenizer is given), then the model with AdamW, linear warmup + cosine decay, gradient accumulation and
clipping. A new model is a GPT-2 of --n-layer/--n-head/--n-embd; --init DIR starts from a checkpoint or a
Hugging Face folder of any supported family (gpt2, llama, mistral, qwen2, qwen3, gpt_neox) and uses its
tokenizer.json. With --loss-on assistant it is supervised finetuning on transcripts: the loss is taken only
on the Assistant's replies (add --init CHECKPOINT to start from a pretrained LM).

The corpus is JSON lines with a "text" (or "chosen") transcript per line, gzipped or not, or a .txt file
whose documents are separated by <|endoftext|>; bad lines are reported with file:line and skipped, and a
file that stops mid-way (truncated .gz) with a WARNING line naming where (--strict: both are errors).
Documents are joined with <|endoftext|> and packed into blocks of block-size tokens; a hash of each
document's text puts it in the train or eval split. The tokenised data is cached in DIR/data.

Writes DIR/checkpoint (a link to the latest of DIR/checkpoints/step-N: config.json, model.safetensors,
tokenizer.json, hhkit.json, plus optimiser and RNG state), DIR/metrics.jsonl (one JSON line per step;
evalLoss on eval steps) and DIR/tokenizer.json. Checkpoints are atomic: after a crash or kill,
--resume continues from the last one and ends exactly where an uninterrupted run would.

options:
  --data FILE               corpus (required)
  --out DIR                 run folder (default ${defaultLMTrainConfig.out})
  --config FILE.json        options as a JSON object (camelCase or kebab-case keys); flags override it
  --tokenizer PATH          use this tokenizer.json instead of training one (also reused from DIR or --init)
${CHAT_TEMPLATE_HELP}
  --vocab-size N            vocabulary of the tokenizer trained on the corpus (default ${DEFAULT_VOCAB})
  --resume                  continue from DIR/checkpoint (starts fresh when there is none); a changed
                            --lr or --min-lr is accepted with a warning (the schedule goes on from the
                            checkpoint's step with the new value), other model/data keys are refused
  --strict                  stop at the first bad line or truncated file of the corpus (exit 1, file:line)
  --allow-nonfinite         load an --init or resume checkpoint even if its weights hold NaN/±Inf
  --json                    make the last stdout line the run summary as one JSON object
  --tensorboard DIR         ${TENSORBOARD_HELP}
${configHelp}

Every option also reads as camelCase (--batchSize 8). Progress goes to stderr.

A NaN/±Inf loss or gradient norm stops the run before the update, on every rank, with one line naming
the step and the last good checkpoint (DIR/checkpoint still points at it; nothing non-finite is written
or pruned) and exit status 3; --resume with a lower --lr continues from there.

Data-parallel: \`hhkit launch --nproc N -- pretrain …\` trains on N processes (c10d gloo); --batch-size is
per process, so the step equals one process with N × batch-size. Rank 0 writes checkpoints and metrics.`;

/** Parses the command line into the training config and the command's own options. */
function parseCommandLine(argv: string[]): {
  config: LMTrainConfig;
  tokenizer: string;
  vocabSize: number;
  resume: boolean;
  strict: boolean;
  allowNonFinite: boolean;
  json: boolean;
  chatTemplate: boolean;
  tensorboard: string;
} {
  const { options, positionals } = parseArgs(argv, OPTIONS);
  if (positionals.length > 0) throw new UsageError(`pretrain: unexpected argument '${positionals[0]}'`);
  const overrides: Record<string, unknown> = {};
  const own: Record<string, string | boolean> = {};
  for (const [key, value] of Object.entries(options)) {
    if (CLI_KEYS.has(camelKey(key))) own[camelKey(key)] = value;
    else overrides[key] = value;
  }
  let config: LMTrainConfig;
  try {
    config = resolveLMTrainConfig(overrides);
  } catch (err) {
    if (err instanceof ConfigError)
      throw new UsageError(`pretrain: ${err.message} (see hhkit pretrain --help)`);
    throw err;
  }
  const vocabSize = numberOption(own, 'vocabSize', DEFAULT_VOCAB);
  if (!Number.isInteger(vocabSize) || vocabSize < 300) {
    throw new UsageError(`--vocab-size expects an integer ≥ 300, got ${vocabSize}`);
  }
  return {
    config: { ...config, out: resolve(config.out), data: resolve(config.data) },
    tokenizer: stringOption(own, 'tokenizer', ''),
    vocabSize,
    resume: own['resume'] === true,
    strict: own['strict'] === true,
    allowNonFinite: own['allowNonfinite'] === true,
    json: own['json'] === true,
    chatTemplate: own['chatTemplate'] === true,
    tensorboard: stringOption(own, 'tensorboard', ''),
  };
}

/**
 * The tokenizer for a run: --tokenizer, else the run folder's (a resume, or a rerun after an early
 * crash), else the --init checkpoint's, else one trained on the corpus now.
 */
async function obtainTokenizer(
  config: LMTrainConfig,
  path: string,
  vocabSize: number,
  strict: boolean,
): Promise<{ tokenizer: Tokenizer; source: string; readCorpus: boolean }> {
  const candidates = [
    path,
    join(config.out, 'tokenizer.json'),
    config.init ? join(config.init, 'tokenizer.json') : '',
  ];
  for (const candidate of candidates) {
    if (candidate && existsSync(candidate))
      return { tokenizer: Tokenizer.fromFile(candidate), source: candidate, readCorpus: false };
    if (candidate === path && path) throw new UsageError(`--tokenizer ${path}: file not found`);
  }
  // Bad lines are reported once, by the trainer's 'data' event; strict stops at the first one here.
  const report: CorpusReport = newCorpusReport();
  const texts: string[] = [];
  for await (const docs of readCorpusDocuments(config.data, report, { strict }))
    for (const d of docs) texts.push(d.text);
  if (texts.length === 0) throw new UsageError(`${config.data}: no usable documents`);
  const started = performance.now();
  const tokenizer = Tokenizer.train(texts, { vocabSize });
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  return {
    tokenizer,
    source: `trained on ${texts.length} documents (vocab ${tokenizer.vocabSize}, ${seconds}s)`,
    readCorpus: true,
  };
}

/** Stderr lines for the events a user wants to see between progress-bar redraws. */
export function describeEvent(e: TrainEvent): string | null {
  switch (e.type) {
    case 'data': {
      const cached = e.data.fromCache ? ' (cached)' : '';
      const lines = [
        `data: ${e.data.train.tokens.length} train tokens (${e.trainExamples} blocks), ` +
          `${e.data.eval.tokens.length} eval tokens (${e.evalExamples} blocks)${cached}`,
      ];
      // A lost tail (truncated .gz) first, as a WARNING line naming file:line, then the skipped lines.
      lines.push(...corpusWarnings(e.data.report));
      return lines.join('\n');
    }
    case 'resume':
      return `resuming from step ${e.step} (${e.dir})`;
    case 'eval':
      return `eval: step ${e.step} loss ${e.loss.toFixed(4)}`;
    case 'checkpoint':
      return `checkpoint: step ${e.step} → ${e.dir}`;
    case 'warning':
      return `warning: ${e.message}`;
    default:
      return null;
  }
}

/** What the --json summary says of the corpus load: documents, skipped lines, where a truncated file stopped. */
function dataSummary(report: CorpusReport | null): Record<string, unknown> | null {
  if (!report) return null;
  const stop = report.stoppedAt;
  return {
    documents: report.documents,
    skipped: report.skipped,
    unreadable: stop ? [`${stop.file}:${stop.line}`] : [],
  };
}

/** The run summary (the --json line). */
export function summarize(
  config: LMTrainConfig,
  result: TrainLMResult,
  tokenizer: string,
): Record<string, unknown> {
  const round = (x: number | null): number | null =>
    x === null || !Number.isFinite(x) ? null : Number(x.toFixed(4));
  return {
    out: config.out,
    checkpoint: join(config.out, 'checkpoint'),
    tokenizer,
    steps: result.steps,
    resumedFrom: result.resumedFrom,
    parameters: result.parameters,
    firstLoss: round(result.firstLoss),
    lastLoss: result.lastLoss,
    evalLoss: round(result.evalLoss),
    tokensPerSec: round(result.tokensPerSec),
    seconds: round(result.seconds),
    worldSize: result.worldSize,
  };
}

export const command: Command = {
  summary: 'train the language model (pretraining, or SFT on transcripts)',
  help,
  async run(argv) {
    const cli = parseCommandLine(argv);
    const { config } = cli;
    requireFile(config.data, '--data');
    outputFolder(config.out, '--out');
    if (config.init) requireFolder(config.init, '--init');
    if (!cli.resume && latestCheckpointDir(config.out) !== null) {
      throw new UsageError(
        `${config.out} already has a checkpoint; pass --resume to continue it, or another --out`,
      );
    }
    // Under `hhkit launch`, rank 0 makes (or finds) the tokenizer and the other ranks read its copy.
    const { rank, worldSize } = initProcessGroup();
    let tokenizer: Tokenizer;
    if (rank === 0) {
      const obtained = await obtainTokenizer(config, cli.tokenizer, cli.vocabSize, cli.strict);
      if (cli.strict && !obtained.readCorpus) {
        // The trainer reads leniently (it takes no `strict` yet): read the corpus through strictly first.
        for await (const _ of readCorpusDocuments(config.data, newCorpusReport(), { strict: true })) {
          // reading through is the check
        }
      }
      tokenizer = chatTemplateOption({ 'chat-template': cli.chatTemplate }, obtained.tokenizer);
      console.error(`tokenizer: ${obtained.source}`);
      if (worldSize > 1) {
        console.error(
          `data-parallel: ${worldSize} processes, ${config.batchSize} sequences each per micro-batch`,
        );
        mkdirSync(config.out, { recursive: true });
        if (!existsSync(join(config.out, 'tokenizer.json')))
          tokenizer.save(join(config.out, 'tokenizer.json'));
      }
      barrier();
    } else {
      barrier();
      tokenizer = chatTemplateOption(
        { 'chat-template': cli.chatTemplate },
        Tokenizer.fromFile(join(config.out, 'tokenizer.json')),
      );
    }
    let result: TrainLMResult;
    let data: CorpusReport | null = null; // from the 'data' event, for --json
    const tensorboard = tensorboardLog(cli.tensorboard, rank, cli.resume);
    try {
      result = await trainLM(config, {
        tokenizer,
        resume: cli.resume,
        allowNonFinite: cli.allowNonFinite,
        progress: true,
        label: config.lossOn === 'assistant' ? 'sft' : 'pretrain',
        onEvent: (e) => {
          tensorboard?.write(e);
          if (e.type === 'data') data = e.data.report;
          const line = describeEvent(e);
          if (line) console.error(line);
        },
      });
    } catch (err) {
      if (err instanceof ConfigError) throw new UsageError(`pretrain: ${err.message}`);
      throw err;
    } finally {
      tensorboard?.close();
    }
    if (rank !== 0) return 0;
    const summary: Record<string, unknown> = {
      ...summarize(config, result, join(config.out, 'tokenizer.json')),
      data: dataSummary(data),
    };
    console.log(
      `pretrain: loss ${summary['firstLoss']} → ${summary['lastLoss']} (eval ${summary['evalLoss']}) over ` +
        `${result.steps} steps, ${summary['tokensPerSec']} tokens/s; checkpoint ${summary['checkpoint']}`,
    );
    if (cli.json) console.log(JSON.stringify(summary));
    return 0;
  },
};
