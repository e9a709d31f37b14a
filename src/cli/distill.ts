import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { defaultDistillConfig, type DistillConfig, distill } from '../rl/distill.ts';
import { hardwareDocs } from '../train/config.ts';
import { newCorpusReport, readCorpusDocuments } from '../train/corpus.ts';
import {
  configOptions,
  type OptionSpec,
  outputFolder,
  parseArgs,
  requireFolder,
  stringOption,
  UsageError,
} from './args.ts';
import type { Command } from './main.ts';
import { TENSORBOARD_HELP, tensorboardLog } from './tensorboard.ts';
import { warnCorpus } from './warnings.ts';
import {
  applyOverrides,
  checkpointTokenizer,
  commandDevice,
  fmt,
  goldReward,
  optionLines,
  readRLPrompts,
  resolveCheckpoint,
} from './rl-common.ts';

const OWN = [
  'init',
  'world',
  'dialogues',
  'chatTemplate',
  'evalPrompts',
  'tensorboard',
  'resume',
  'strict',
  'allowNonfinite',
  'json',
  'help',
  'config',
];
const distillConfig = configOptions(defaultDistillConfig);
const OPTIONS: OptionSpec = {
  command: 'distill',
  values: ['init', 'world', 'dialogues', 'eval-prompts', 'tensorboard', ...distillConfig.values],
  flags: ['resume', 'strict', 'allow-nonfinite', 'chat-template', ...distillConfig.flags],
};

const help = `usage: hhkit distill --init LM --world DIR [--out DIR] [--key value …] [--resume] [--json]

Context distillation (Bai et al. 2022 §3): the teacher is the LM with the HHH prompt (DIR/hhh-prompt.txt)
in front, the student the same LM without it, trained on the world's dialogues (DIR/pretrain.jsonl) to
match the teacher's next-token distribution: KL over the teacher's top-k tokens plus one bucket for the
rest. The teacher runs once; its top-k ids and log-probs are cached in OUT/teacher-cache. The HHH prompt
is cut from the left to fit the LM's context. Reports KL(teacher ‖ student) on held-out dialogues and the
gold HH score of samples on the world's held-out RL prompts, before and after (and the teacher's).

Teacher and student run on --device (a GPU when there is one); --precision bf16 runs their forwards in
bfloat16 autocast, with float32 weights, top-k log-probs and KL.

A NaN/±Inf loss, gradient norm or weight stops the run with one line naming the step and the last good
checkpoint (kept; nothing non-finite is written) and exit status 3.

options:
  --init LM            LM checkpoint (or run folder) to distil
  --world DIR          the world (hhh-prompt.txt, pretrain.jsonl, rl-prompts.jsonl)
  --dialogues N        training + held-out dialogues taken from pretrain.jsonl (default 1200)
  --eval-prompts N     held-out RL prompts sampled for the gold score (default 64)
  --resume             continue OUT/checkpoint
  --allow-nonfinite    load the LM or resume checkpoint even if its weights hold NaN/±Inf (by default an
                       error naming the file and tensor)
  --strict             a bad line in pretrain.jsonl is an error (default: warned with file:line, skipped)
  --chat-template      write dialogues in the folder's chat template (tokenizer_config.json; ChatML:
                       Qwen2/2.5/3, SmolLM2-Instruct) for the policy and the PM; replies stop at <|im_end|>;
                       the HHH prompt's preamble is the teacher's one system message (not the default's)
  --json               the last stdout line is the report as one JSON object
  --tensorboard DIR    ${TENSORBOARD_HELP}
${optionLines(defaultDistillConfig, hardwareDocs)}`;

export const command: Command = {
  summary: 'context-distil the HHH prompt into the LM (the policy init)',
  help,
  async run(argv) {
    const { options } = parseArgs(argv, OPTIONS);
    const init = stringOption(options, 'init', '');
    const world = stringOption(options, 'world', '');
    if (!init || !world) throw new UsageError(`distill: --init and --world are required\n\n${help}`);
    const config: DistillConfig = applyOverrides(defaultDistillConfig, options, OWN);
    config.out = resolve(outputFolder(config.out, '--out'));
    requireFolder(world, '--world');
    const device = commandDevice(config, 'distill');
    const ckpt = resolveCheckpoint(init);
    const tokenizer = checkpointTokenizer(ckpt, options);
    const hhhPath = join(world, 'hhh-prompt.txt');
    if (!existsSync(hhhPath)) throw new UsageError(`${hhhPath}: not found`);
    const count = Number(options['dialogues'] ?? 1200);
    const corpus = newCorpusReport();
    let dialogues: string[] = [];
    for await (const docs of readCorpusDocuments(join(world, 'pretrain.jsonl'), corpus, {
      strict: options['strict'] === true,
    }))
      for (const d of docs) if (d.text.startsWith('\n\nHuman:')) dialogues.push(d.text);
    warnCorpus(corpus);
    dialogues = dialogues.slice(0, count);
    const evalPrompts = readRLPrompts(world).eval.slice(
      0,
      Number(options['evalPrompts'] ?? options['eval-prompts'] ?? 64),
    );
    const tensorboard = tensorboardLog(
      stringOption(options, 'tensorboard', ''),
      0,
      options['resume'] === true,
    );
    const report = await distill({
      config,
      init: ckpt,
      tokenizer,
      hhhPrompt: readFileSync(hhhPath, 'utf8'),
      dialogues,
      evalPrompts,
      gold: goldReward,
      resume: options['resume'] === true,
      allowNonFinite: options['allow-nonfinite'] === true,
      progress: true,
      onEvent: (e) => {
        tensorboard?.write(e);
        if (e.type === 'teacher' && (e.done === e.total || e.done % 256 === 0))
          console.error(`teacher: ${e.done}/${e.total} dialogues cached`);
      },
    }).finally(() => tensorboard?.close());
    console.error(
      [
        `teacher prefix: ${report.prefixTokens} of the HHH prompt's ${report.prefixTokensTotal} tokens (cut to fit the context)`,
        `KL(teacher ‖ student) per token on held-out dialogues: ${fmt(report.klBefore, 4)} → ${fmt(report.klAfter, 4)}`,
        `gold HH of samples: ${fmt(report.goldBefore)} → ${fmt(report.goldAfter)} (teacher with the prompt: ${fmt(report.goldTeacher)})`,
        `checkpoint: ${report.checkpoint} (trained on ${device}, ${config.precision})`,
      ].join('\n'),
    );
    if (options['json'] === true) console.log(JSON.stringify(report));
    return 0;
  },
};
