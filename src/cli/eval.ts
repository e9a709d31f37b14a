import { existsSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { evaluateNlp, type NlpEvalResult } from '../eval/nlp.ts';
import {
  EVAL_FORMATS,
  type EvalFormat,
  type LoadedEval,
  loadEvalFile,
  loadPrompts,
} from '../eval/nlp-data.ts';
import {
  type WorldPolicyEvaluation,
  type WorldTaskResult,
  worldPolicyEvaluation,
  worldTaskAccuracy,
} from '../eval/world-tasks.ts';
import type { WorldPrompt } from '../online/collect.ts';
import { readWorldPrompts } from '../online/data.ts';
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
  chatTemplateOption,
} from './args.ts';
import type { Command } from './main.ts';
import { warnSkipped } from './warnings.ts';

const OPTIONS: OptionSpec = {
  command: 'eval',
  // biome-ignore format: one list
  values: ['models', 'init', 'world', 'prompts', 'limit', 'max-new-tokens', 'batch-size', 'out', 'tokenizer', 'held-out',
    'seed', 'samples'],
  flags: ['strict', 'chat-template'],
};

const help = `usage: hhkit eval --models CKPT[,CKPT…] (or --init CKPT) [FILE[=FORMAT] …] [--world DIR | --prompts FILE] [options]

Evaluations of one or more checkpoints, printed as one table (a row per model):
- NLP benchmarks by log-likelihood, from files the user supplies (JSON lines, .gz read too):
  ARC, OpenBookQA, HellaSwag, MMLU (multiple choice: accuracy and length-normalised accuracy),
  Lambada (last-word accuracy), QA {"question", "answer"} (exact match of the greedy answer).
  The format is detected from the keys; force it with FILE=arc|openbookqa|hellaswag|mmlu|lambada|qa.
  Unusable lines are reported as file:line and skipped (--strict: an error); a file that stops mid-way
  (truncated .gz) is a loud warning naming the line where it stopped.
- Held-out task accuracy on the assistant world (--world DIR reads DIR/helpful-test.jsonl, or
  --prompts FILE): greedy answers judged by the gold judge — the paper's alignment tax/bonus table
  when run over the base, distilled, best-of-N and PPO policies.

options:
  --models a,b,c      checkpoint folders of any supported family (names in the table: the folder names)
  --init CKPT         one checkpoint folder: the same as --models CKPT (the option every command takes)
  --world DIR         world folder: task accuracy on DIR/helpful-test.jsonl
  --prompts FILE      task accuracy on these prompts ({"prompt"} or {"chosen"} lines)
  --held-out N        also sample (temperature 1, --seed) and greedily answer the first N of the world's
                      held-out RL prompts (every family, harmful ones too): mean gold HH, helpfulness,
                      harmlessness, greedy task accuracy on the benign ones, the fraction of distinct
                      responses, and every prompt's verdicts in --out (for paired intervals)
  --seed S            sampling seed of --held-out (default 7)
  --samples K         sampled responses per --held-out prompt (default 1; means per prompt)
  --limit N           at most N items per task (default 200)
  --max-new-tokens N  tokens generated per world answer (default 48)
  --batch-size N      sequences per forward pass (default 16)
  --out FILE          results as JSON for hhkit report (default eval.json)
  --strict            stop at the first unusable line or truncated file (exit 1, file:line on stderr)
  --chat-template     world prompts in each model folder's chat template (ChatML: Qwen2/2.5/3, SmolLM2-
                      Instruct) instead of HH text; replies stop at <|im_end|>
  --json              the last stdout line is the results as one JSON object`;

interface Task {
  name: string;
  file: string;
  loaded?: LoadedEval;
  prompts?: string[];
  /** Held-out RL prompts with their families (sampled and greedy verdicts). */
  heldOut?: WorldPrompt[];
  skipped: number;
}

type Result = (
  | NlpEvalResult
  | (WorldTaskResult & { metric: 'accuracy'; value: number })
  | (WorldPolicyEvaluation & { metric: 'hh'; value: number })
) & { count: number };

function parseFileArg(arg: string): { file: string; format?: EvalFormat } {
  const eq = arg.lastIndexOf('=');
  if (eq > 0 && (EVAL_FORMATS as readonly string[]).includes(arg.slice(eq + 1)))
    return { file: arg.slice(0, eq), format: arg.slice(eq + 1) as EvalFormat };
  return { file: arg };
}

export const command: Command = {
  summary: 'NLP evals by log-likelihood and world task accuracy for a list of checkpoints',
  help,
  async run(argv) {
    const { positionals, options } = parseArgs(argv, OPTIONS);
    const models = modelOption(options, 'eval', 'models')
      .value.split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    if (models.length === 0) throw new UsageError(`eval: --models (or --init) is required\n\n${help}`);
    const limit = numberOption(options, 'limit', 200);
    const batchSize = numberOption(options, 'batch-size', 16);
    const maxNewTokens = numberOption(options, 'max-new-tokens', 48);
    const strict = options['strict'] === true;
    const out = outputFile(stringOption(options, 'out', 'eval.json'), '--out'); // checked before hours of evals
    const tasks: Task[] = [];
    for (const arg of positionals) {
      const { file, format } = parseFileArg(arg);
      if (!existsSync(file)) throw new UsageError(`eval: ${file} not found`);
      let loaded: LoadedEval;
      try {
        loaded = loadEvalFile(file, format, { strict });
      } catch (err) {
        if (err instanceof RangeError) throw new UsageError(err.message);
        throw err;
      }
      warnSkipped(loaded.skipped, file);
      loaded.items = loaded.items.slice(0, limit);
      const stem = basename(file).replace(/\.jsonl(\.gz)?$|\.json$/, '');
      const name = stem === loaded.format ? stem : `${loaded.format}:${stem}`;
      tasks.push({ name, file, loaded, skipped: loaded.skipped.length });
    }
    const world = stringOption(options, 'world', '');
    const promptFile = stringOption(options, 'prompts', world ? join(world, 'helpful-test.jsonl') : '');
    if (promptFile) {
      if (!existsSync(promptFile)) throw new UsageError(`eval: ${promptFile} not found`);
      const { prompts, skipped } = loadPrompts(promptFile, { strict });
      warnSkipped(skipped, promptFile);
      tasks.push({
        name: 'world',
        file: promptFile,
        prompts: prompts.slice(0, limit),
        skipped: skipped.length,
      });
    }
    const heldOut = numberOption(options, 'held-out', 0);
    if (heldOut > 0) {
      if (!world) throw new UsageError('eval: --held-out needs --world DIR');
      const file = join(world, 'rl-prompts.jsonl');
      let rows: WorldPrompt[];
      try {
        rows = readWorldPrompts(world).eval;
      } catch (err) {
        throw new UsageError((err as Error).message);
      }
      if (rows.length < heldOut)
        console.error(
          `eval: ${file} holds ${rows.length} held-out prompts, fewer than --held-out ${heldOut}`,
        );
      tasks.push({ name: 'world-held-out', file, heldOut: rows.slice(0, heldOut), skipped: 0 });
    }
    if (tasks.length === 0) throw new UsageError('eval: give benchmark files, --world DIR or --prompts FILE');

    const rows: { model: string; path: string; results: Record<string, Result> }[] = [];
    for (const path of models) {
      let ckpt: ReturnType<typeof loadCheckpoint>;
      try {
        ckpt = loadCheckpoint(path);
      } catch (err) {
        if (err instanceof CheckpointError) throw new UsageError(err.message);
        throw err;
      }
      const tokPath = stringOption(options, 'tokenizer', ckpt.tokenizerPath ?? '');
      if (!tokPath) throw new UsageError(`${path} has no tokenizer.json; pass --tokenizer PATH`);
      const tok = chatTemplateOption(options, Tokenizer.fromFile(tokPath));
      const results: Record<string, Result> = {};
      for (const task of tasks) {
        const started = Date.now();
        if (task.loaded) {
          results[task.name] = await evaluateNlp(ckpt.model, tok, task.loaded.items, { batchSize });
        } else if (task.heldOut) {
          const r = await worldPolicyEvaluation(ckpt.model, tok, task.heldOut, {
            batchSize,
            maxNewTokens,
            seed: numberOption(options, 'seed', 7),
            samples: numberOption(options, 'samples', 1),
          });
          results[task.name] = { metric: 'hh', value: r.hh, ...r };
        } else {
          const r = await worldTaskAccuracy(ckpt.model, tok, task.prompts!, { batchSize, maxNewTokens });
          results[task.name] = { metric: 'accuracy', value: r.accuracy, ...r };
        }
        console.error(
          `${basename(path)} ${task.name}: ${results[task.name]!.value.toFixed(3)} (${((Date.now() - started) / 1000).toFixed(1)} s)`,
        );
      }
      rows.push({ model: basename(path.replace(/\/+$/, '')) || path, path, results });
      // One model at a time in memory: free this one's weights before loading the next.
      for (const t of [
        ...ckpt.model.parameters(),
        ...ckpt.model.namedBuffers().map(([, b]) => b),
        ...Object.values(ckpt.extra),
      ])
        t.dispose();
    }

    const names = tasks.map((t) => t.name);
    const width = Math.max(5, ...rows.map((r) => r.model.length));
    const colWidth = (n: string) => Math.max(n.length, 16);
    console.log([`${'model'.padEnd(width)}`, ...names.map((n) => n.padStart(colWidth(n)))].join('  '));
    for (const r of rows) {
      const cells = names.map((n) => {
        const x = r.results[n]!;
        const extra =
          'accuracyNorm' in x && x.accuracyNorm !== undefined
            ? ` (n ${x.accuracyNorm.toFixed(3)})`
            : 'hh' in x
              ? ` (HH ${x.hh.toFixed(2)})`
              : '';
        return `${x.value.toFixed(3)}${extra}`.padStart(colWidth(n));
      });
      console.log([r.model.padEnd(width), ...cells].join('  '));
    }
    console.log(
      `metrics: ${tasks.map((t) => `${t.name} = ${t.loaded ? `${rows[0]!.results[t.name]!.metric} (n = ${t.loaded.items.length})` : t.heldOut ? `mean gold HH of sampled responses (n = ${t.heldOut.length})` : `gold-judged task accuracy (n = ${t.prompts!.length})`}`).join('; ')}`,
    );
    const result = {
      kind: 'eval',
      command: `hhkit eval ${argv.join(' ')}`,
      tasks: tasks.map((t) => ({
        name: t.name,
        file: t.file,
        format: t.loaded?.format ?? 'world',
        count: t.loaded?.items.length ?? t.heldOut?.length ?? t.prompts!.length,
        skipped: t.skipped,
      })),
      models: rows,
    };
    writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
    console.log(`wrote ${out}`);
    if (options['json'] === true) console.log(JSON.stringify(result));
    return 0;
  },
};
