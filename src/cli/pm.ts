import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { initProcessGroup } from '../engine/index.ts';
import { camelKey, ConfigError } from '../train/config.ts';
import { latestCheckpointDir } from '../train/state.ts';
import {
  defaultPMTrainConfigs,
  evaluateScored,
  fileList,
  formatEvalReport,
  loadPreferenceModel,
  loadTaskedComparisons,
  type PMPhase,
  type PMTrainConfig,
  type PMTrainEvent,
  pmTrainConfigDocs,
  resolvePMTrainConfig,
  scoreComparisons,
  scoreTranscripts,
  trainPreferenceModel,
} from '../pm/index.ts';
import { Tokenizer } from '../tokenizer/index.ts';
import { DataFileError, readComparisonEntries } from '../data/comparisons.ts';
import { readTextLines } from '../eval/nlp-data.ts';
import {
  configOptions,
  numberOption,
  type OptionSpec,
  outputFile,
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
import { experimentHelp, runExperimentCommand } from './pm-experiment.ts';
import { worldGold } from '../world/index.ts';

const kebab = (key: string): string => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
const configHelp = (Object.keys(pmTrainConfigDocs) as (keyof typeof pmTrainConfigDocs)[])
  .map((key) => {
    const d = defaultPMTrainConfigs.finetune[key];
    const flag = `  --${kebab(key)} ${typeof d === 'number' ? 'N' : 'S'}`;
    const pmp = defaultPMTrainConfigs.pmp[key];
    const dflt = pmp === d ? JSON.stringify(d) : `${JSON.stringify(d)}; pretrain ${JSON.stringify(pmp)}`;
    return `${flag.padEnd(28)}${pmTrainConfigDocs[key]} (default ${dflt})`;
  })
  .join('\n');

const help = `usage: hhkit pm pretrain --init LM --data PAIRS.jsonl [--out DIR] [--key value …] [--resume] [--json]
       hhkit pm train    --init LM_OR_PMP --data FILES [--eval FILES] [--out DIR] [--key value …] [--resume] [--json]
       hhkit pm eval     --model DIR --data FILES [--gold] [--bins N] [--report FILE.json] [--strict] [--json]
       hhkit pm score    --model DIR [FILE]        (transcripts from FILE or stdin → JSON lines of scores)
       hhkit pm experiment size|pmp|mix|all [--out DIR] [--world DIR] [--json]   (see hhkit pm experiment --help)

Preference models (Bai et al. 2022 §2.2, §3): an LM (of --init's family, or a new GPT-2) with a scalar
head; the score is read at an <|endofcontext|> token appended to each transcript (at the tokenizer's eos
when it has none, as a user's model's tokenizer; transcripts longer than the context lose their start,
keeping the response). Loss log(1 + exp(r_rejected − r_chosen)), with weight λ (--harmless-weight)
on harmless comparisons: L = L_help + λ·L_harm.

  pretrain   preference-model pretraining (PMP) on ranked pairs, e.g. the world's pmp.jsonl, at 0.1× the
             pretraining learning rate (read from the LM's hhkit.json), one epoch
  train      finetuning on human comparisons (HH-RLHF JSONL files, gzipped or not) at 0.01×, one epoch;
             --init is an LM (no PMP) or a PMP run's checkpoint. A record's task is its "task" key, else
             harmless when its file name says harmless/red-team (as HH-RLHF's harmless-base/), else helpful
  eval       accuracy overall, per task and per number of human turns; calibration (bins of |Δ| against
             σ(|Δ|), ECE); accuracy vs mean score level; the response-length heuristic beside it; with
             --gold (world data only) accuracy against the world's gold judge as well as the file's labels
  score      one JSON line out per line in: a JSON string or {"text": …} gives {"score"}; {"chosen", "rejected"}
             gives both scores and P(chosen preferred) = σ(Δ)

Runs write DIR/checkpoint (→ DIR/checkpoints/step-N: an hhkit checkpoint of kind "pm" whose lineage
names the LM and PMP it came from, with optimiser and RNG state), DIR/metrics.jsonl and DIR/tokenizer.json.
A crashed or interrupted run continues with --resume and ends where an uninterrupted one would.

Data-parallel: \`hhkit launch --nproc N -- pm pretrain …\` (or \`… -- pm train …\`) trains on N processes
(c10d gloo); --batch-size is per process, so a step equals one process with N × batch-size comparisons
(and --steps 0 counts epochs in those global batches). Rank 0 evaluates and writes checkpoints and
metrics. A resume must keep the global batch (batch-size × processes).

training options (camelCase or kebab-case; also as keys of --config FILE.json):
${configHelp}
  --resume                  continue from DIR/checkpoint; a changed learning rate (--base-lr,
                            --lr-multiplier, --min-lr-ratio) is accepted with a warning, the schedule going
                            on from the checkpoint's step with the new value
  --strict                  stop at the first bad line or truncated file of --data/--eval (exit 1, file:line);
                            without it bad lines are reported with file:line and skipped, a lost tail loudly
  --allow-nonfinite         load a checkpoint (--init, the resume one, eval/score's --model) even if its
                            weights hold NaN/±Inf; by default that is an error naming the file and tensor
${CHAT_TEMPLATE_HELP} (train, eval, score)
  --json                    make the last stdout line the summary as one JSON object
  --tensorboard DIR         pretrain/train: ${TENSORBOARD_HELP}

A NaN/±Inf loss or gradient norm stops training before the update, on every rank, with one line naming
the step and the last good checkpoint (DIR/checkpoint still points at it; nothing non-finite is written
or pruned) and exit status 3; --resume with a lower learning rate continues from there.

eval/score options:
  --model DIR               PM checkpoint folder (e.g. runs/pm/checkpoint)
  --data FILES              comparison files, comma-separated
  --gold                    also score against the world's gold judge (world files only)
  --bins N                  calibration bins (default 10)
  --report FILE.json        write the whole evaluation report as JSON
  --max-length N            token budget per transcript (default: the model's context)
  --strict                  eval: stop at the first bad line or truncated file (exit 1, file:line);
                            score: every input line must parse (always so: outputs align with inputs)

${experimentHelp}`;

function describe(e: PMTrainEvent): string | null {
  switch (e.type) {
    case 'data': {
      const skipped = e.skippedLines > 0 ? `; skipped ${e.skippedLines} bad lines:\n${e.report}` : '';
      return `data: ${e.train} training comparisons, ${e.eval} held out, ${e.truncated} transcripts truncated at the front${skipped}`;
    }
    case 'resume':
      return `resuming from step ${e.step} (${e.dir})`;
    case 'eval':
      return `eval: step ${e.step} held-out accuracy ${(100 * e.accuracy).toFixed(1)}% loss ${e.loss.toFixed(4)} (n ${e.count})`;
    case 'checkpoint': {
      const drift = e.drift === undefined ? '' : ` (ranks' weights drift ${e.drift})`;
      return `checkpoint: step ${e.step} → ${e.dir}${drift}`;
    }
    case 'warning':
      return `warning: ${e.message}`;
    default:
      return null;
  }
}

const trainOptions = (phase: PMPhase): OptionSpec => {
  const keys = configOptions(defaultPMTrainConfigs[phase], ['phase']);
  const command = phase === 'pmp' ? 'pm pretrain' : 'pm train';
  return {
    command,
    values: [...keys.values, 'tensorboard'],
    flags: ['resume', 'strict', 'allow-nonfinite', 'chat-template', ...keys.flags],
  };
};
const EVAL_OPTIONS: OptionSpec = {
  command: 'pm eval',
  values: ['model', 'data', 'bins', 'report', 'max-length', 'tokenizer'],
  flags: ['gold', 'strict', 'allow-nonfinite', 'chat-template'],
};
const SCORE_OPTIONS: OptionSpec = {
  command: 'pm score',
  values: ['model', 'max-length', 'tokenizer'],
  flags: ['strict', 'allow-nonfinite', 'chat-template'],
};

const round = (x: number): number | null => (Number.isFinite(x) ? Number(x.toFixed(4)) : null);

async function train(phase: PMPhase, argv: string[]): Promise<number> {
  const { options, positionals } = parseArgs(argv, trainOptions(phase));
  if (positionals.length > 0) throw new UsageError(`pm: unexpected argument '${positionals[0]}'`);
  const overrides: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(options)) {
    if (
      ![
        'resume',
        'strict',
        'allowNonfinite',
        'chatTemplate',
        'json',
        'help',
        'config',
        'tensorboard',
      ].includes(camelKey(key))
    )
      overrides[key] = value;
  }
  let config: PMTrainConfig;
  try {
    config = resolvePMTrainConfig(phase, overrides);
  } catch (err) {
    if (err instanceof ConfigError) throw new UsageError(`pm: ${err.message} (see hhkit pm --help)`);
    throw err;
  }
  for (const f of fileList(config.data)) requireFile(f, '--data');
  for (const f of fileList(config.eval)) requireFile(f, '--eval');
  if (config.init) requireFolder(config.init, '--init');
  outputFolder(config.out, '--out');
  const resume = options['resume'] === true;
  if (options['strict'] === true) {
    // The trainer loads leniently (it takes no `strict` yet), so read every file through strictly first:
    // the first bad line or truncated file stops here, before any training, on every rank alike.
    for (const f of [...fileList(config.data), ...fileList(config.eval)])
      for await (const _ of readComparisonEntries(f, { strict: true })) {
        // reading through is the check
      }
  }
  if (!resume && latestCheckpointDir(resolve(config.out)) !== null) {
    throw new UsageError(
      `${config.out} already has a checkpoint; pass --resume to continue it, or another --out`,
    );
  }
  // Under `hhkit launch` every rank trains; rank 0 alone reports.
  const { rank, worldSize } = initProcessGroup();
  if (rank === 0 && worldSize > 1) {
    console.error(
      `data-parallel: ${worldSize} processes, ${config.batchSize} comparisons each per step ` +
        `(global batch ${worldSize * config.batchSize})`,
    );
  }
  let result: Awaited<ReturnType<typeof trainPreferenceModel>>;
  let skippedLines = 0; // from the 'data' event: bad lines and truncated files of --data, for --json
  const tensorboard = tensorboardLog(stringOption(options, 'tensorboard', ''), rank, resume);
  try {
    result = await trainPreferenceModel(config, {
      ...(options['chat-template'] === true
        ? { tokenizer: chatTemplateOption(options, initTokenizer(config)) }
        : {}),
      resume,
      allowNonFinite: options['allow-nonfinite'] === true,
      progress: true,
      label: phase === 'pmp' ? 'pmp' : 'pm',
      onEvent: (e) => {
        tensorboard?.write(e);
        if (e.type === 'data') skippedLines = e.skippedLines;
        const line = describe(e);
        if (line) console.error(line);
      },
    });
  } catch (err) {
    if (err instanceof ConfigError) throw new UsageError(`pm: ${err.message}`);
    throw err;
  } finally {
    tensorboard?.close();
  }
  if (rank !== 0) return 0;
  const summary = {
    phase,
    out: resolve(config.out),
    checkpoint: resolve(config.out, 'checkpoint'),
    steps: result.steps,
    resumedFrom: result.resumedFrom,
    comparisons: result.comparisons,
    evalComparisons: result.evalComparisons,
    skippedLines,
    lr: result.lr,
    firstLoss: round(result.firstLoss),
    lastLoss: round(result.lastLoss),
    evalAccuracy: round(result.evalAccuracy),
    evalLoss: round(result.evalLoss),
    parameters: result.parameters,
    seconds: round(result.seconds),
    worldSize: result.worldSize,
  };
  console.log(
    `pm ${phase === 'pmp' ? 'pretrain' : 'train'}: ${result.steps} steps at lr ${result.lr.toPrecision(3)}, loss ` +
      `${summary.firstLoss} → ${summary.lastLoss}, held-out accuracy ${summary.evalAccuracy} (n ${result.evalComparisons}); checkpoint ${summary.checkpoint}`,
  );
  if (options['json'] === true) console.log(JSON.stringify(summary));
  return 0;
}

/** The tokenizer a PM run starts from (--tokenizer, else --init's), for --chat-template to apply. */
function initTokenizer(config: PMTrainConfig): Tokenizer {
  const path = config.tokenizer || (config.init ? join(config.init, 'tokenizer.json') : '');
  if (!path || !existsSync(path))
    throw new UsageError(
      `--chat-template: no tokenizer.json in --init ${config.init || '(none)'}; pass --tokenizer`,
    );
  return Tokenizer.fromFile(path);
}

function openModel(
  options: Record<string, string | boolean>,
): ReturnType<typeof loadPreferenceModel> & { tokenizer: Tokenizer } {
  const dir = stringOption(options, 'model', '');
  if (!dir) throw new UsageError('pm: --model DIR is required (a PM checkpoint folder)');
  requireFolder(dir, '--model');
  const loaded = loadPreferenceModel(dir, { allowNonFinite: options['allow-nonfinite'] === true });
  if (!loaded.hadHead)
    throw new UsageError(
      `--model ${dir}: not a preference model (no score head); train one with hhkit pm train`,
    );
  const tokPath = stringOption(options, 'tokenizer', loaded.tokenizerPath ?? '');
  if (!tokPath) throw new UsageError(`--model ${dir}: no tokenizer.json; pass --tokenizer`);
  return { ...loaded, tokenizer: chatTemplateOption(options, Tokenizer.fromFile(tokPath)) };
}

async function evaluate(argv: string[]): Promise<number> {
  const { options } = parseArgs(argv, EVAL_OPTIONS);
  const files = fileList(stringOption(options, 'data', ''));
  if (files.length === 0) throw new UsageError('pm eval: --data FILES is required');
  for (const f of files) requireFile(f, '--data');
  const reportPath = stringOption(options, 'report', '');
  if (reportPath) outputFile(reportPath, '--report');
  const { pm, tokenizer } = openModel(options);
  const { items, report } = await loadTaskedComparisons(files, { strict: options['strict'] === true });
  // format() opens with a WARNING line per file that stopped mid-way (counted in skipped).
  if (report.skipped > 0) console.error(`data: skipped ${report.skipped} bad lines\n${report.format()}`);
  if (items.length === 0) throw new UsageError(`${files.join(', ')}: no usable comparisons`);
  const maxLength = numberOption(options, 'max-length', 0);
  const scored = await scoreComparisons(pm, tokenizer, items, {
    maxLength,
    ...(options['gold'] === true ? { gold: worldGold } : {}),
  });
  const result = evaluateScored(scored, { calibrationBins: numberOption(options, 'bins', 10) });
  console.log(formatEvalReport(result));
  if (reportPath) writeFileSync(reportPath, `${JSON.stringify(result, null, 2)}\n`);
  if (options['json'] === true) {
    console.log(
      JSON.stringify({
        count: result.count,
        accuracy: round(result.accuracy),
        loss: round(result.loss),
        ece: round(result.calibration.ece),
        byTask: Object.fromEntries(result.byTask.map((g) => [g.group, round(g.accuracy)])),
        lengthBaseline: round(result.crowd.lengthBaseline.accuracy),
        data: report.summary(),
        ...(result.gold
          ? {
              goldCount: result.gold.count,
              goldAccuracy: round(result.gold.accuracy),
              goldLengthBaseline: round(result.gold.lengthBaseline.accuracy),
            }
          : {}),
      }),
    );
  }
  return 0;
}

/** A line of `hhkit pm score` input: a transcript, or a comparison. */
function parseScoreLine(
  line: string,
  where: string,
): { text: string } | { chosen: string; rejected: string } {
  if (!/^\s*["{]/.test(line)) return { text: line };
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (err) {
    throw new UsageError(`${where}: not valid JSON (${(err as Error).message})`);
  }
  if (typeof value === 'string') return { text: value };
  if (typeof value === 'object' && value !== null) {
    const v = value as Record<string, unknown>;
    if (typeof v['chosen'] === 'string' && typeof v['rejected'] === 'string')
      return { chosen: v['chosen'], rejected: v['rejected'] };
    const text = v['text'] ?? v['transcript'];
    if (typeof text === 'string') return { text };
  }
  throw new UsageError(`${where}: expected a JSON string, {"text": …} or {"chosen": …, "rejected": …}`);
}

async function score(argv: string[]): Promise<number> {
  const { options, positionals } = parseArgs(argv, SCORE_OPTIONS);
  const source = positionals[0];
  const fromFile = source !== undefined && source !== '-';
  if (fromFile) requireFile(source, 'pm score');
  const { pm, tokenizer } = openModel(options);
  // Every line must parse, truncated .gz included: skipping one would misalign outputs with inputs.
  const read = fromFile
    ? readTextLines(source)
    : { lines: readFileSync(0, 'utf8').split('\n'), stopped: null, notUtf8: [] as number[] };
  if (read.stopped !== null)
    throw new DataFileError(source!, read.lines.length + 1, `file stops here (${read.stopped})`);
  if (read.notUtf8.length) throw new DataFileError(source!, read.notUtf8[0]!, 'not valid UTF-8');
  const lines = read.lines.map((l, i) => ({ l, i })).filter(({ l }) => l.trim() !== '');
  const parsed = lines.map(({ l, i }) => parseScoreLine(l, `${source ?? 'stdin'}:${i + 1}`));
  const texts = parsed.flatMap((p) => ('text' in p ? [p.text] : [p.chosen, p.rejected]));
  const scores = await scoreTranscripts(pm, tokenizer, texts, {
    maxLength: numberOption(options, 'max-length', 0) || undefined,
  });
  let at = 0;
  for (const p of parsed) {
    if ('text' in p) console.log(JSON.stringify({ score: scores[at++] }));
    else {
      const chosen = scores[at++]!;
      const rejected = scores[at++]!;
      console.log(JSON.stringify({ chosen, rejected, pChosen: 1 / (1 + Math.exp(rejected - chosen)) }));
    }
  }
  return 0;
}

export const command: Command = {
  summary: 'preference models: pretrain (PMP), train (finetune), eval, score, experiment',
  help,
  subcommandHelp: { experiment: experimentHelp },
  async run(argv) {
    const [sub, ...rest] = argv;
    switch (sub) {
      case 'pretrain':
        return train('pmp', rest);
      case 'train':
        return train('finetune', rest);
      case 'eval':
        return evaluate(rest);
      case 'score':
        return score(rest);
      case 'experiment': {
        return runExperimentCommand(rest);
      }
      default:
        throw new UsageError(
          `pm: expected pretrain, train, eval, score or experiment, got ${sub === undefined ? 'nothing' : `'${sub}'`} (see hhkit pm --help)`,
        );
    }
  },
};
