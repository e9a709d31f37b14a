// The whole pipeline through the library, each stage with its typed config: a world (the data), an LM
// (trainLM: pretraining; lossOn 'assistant' makes it SFT), a preference model finetuned from the LM
// (trainPreferenceModel), context distillation of the HHH prompt (distill), then PPO against the PM
// (trainPPO). Every stage's progress events go to TensorBoard (EventLog: `tensorboard --logdir` the folder
// printed at the end; JSON lines too with its `jsonl` option). What the CLI's `hhkit world`, `pretrain`, `pm train`, `distill` and `ppo` do, made tiny so it
// runs in about a minute: real runs keep the defaults (drop the overrides) or use `hhkit demo`.
//   node examples/pipeline.ts        (Node ≥ 22.18 strips the types; or: npx tsx examples/pipeline.ts)
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type DistillConfig,
  defaultDistillConfig,
  distill,
  EventLog,
  generateWorld,
  goldJudge,
  type LMTrainConfig,
  loadPreferenceModel,
  type PMTrainConfig,
  type PPOConfig,
  defaultPPOConfig,
  type RewardFn,
  resolveLMTrainConfig,
  resolvePMTrainConfig,
  scoreTranscripts,
  Tokenizer,
  trainLM,
  trainPPO,
  trainPreferenceModel,
  validatePPOConfig,
} from 'hhkit';

const dir = mkdtempSync(join(tmpdir(), 'hhkit-example-pipeline-'));
const world = join(dir, 'world');
const tiny = { nLayer: 1, nHead: 2, nEmbd: 32 };
// One TensorBoard run per stage: any trainer's onEvent takes log.write (its events are typed unions:
// TrainEvent, PMTrainEvent, DistillEvent, PPOEvent).
const tensorboard = join(dir, 'tensorboard');
const logs = ['lm', 'pm', 'distill', 'ppo'].map(
  (stage) => new EventLog({ tensorboard: join(tensorboard, stage) }),
);
const [lmLog, pmLog, distillLog, ppoLog] = logs as [EventLog, EventLog, EventLog, EventLog];

// 1. The world: a seeded corpus, comparisons labelled by simulated crowdworkers, RL prompts, the HHH prompt.
await generateWorld({
  out: world,
  seed: 1,
  size: 'small',
  counts: { pretrainDialogues: 1500, pretrainForum: 0, helpfulTrain: 400, harmlessTrain: 200 },
});

// 2. The LM. resolveLMTrainConfig merges the defaults and checks every key (a typo is a ConfigError).
const lmConfig: LMTrainConfig = resolveLMTrainConfig({
  ...tiny,
  data: join(world, 'pretrain.jsonl'),
  out: join(dir, 'lm'),
  blockSize: 128,
  batchSize: 16,
  steps: 60,
  lr: 3e-3,
  minLr: 3e-4,
  warmupSteps: 5,
  evalEvery: 0,
  evalBatches: 2,
  checkpointEvery: 60,
});
const jsonLines = <T>(path: string): T[] =>
  readFileSync(path, 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as T);
const dialogues = jsonLines<{ text: string }>(lmConfig.data).map((d) => d.text);
const tokenizer = Tokenizer.train(dialogues, { vocabSize: 400 });
const lm = await trainLM(lmConfig, { tokenizer, onEvent: lmLog.write });

// 3. The preference model, finetuned from the LM on helpful and harmless comparisons (its lr is
//    lrMultiplier × the LM's lr; the paper's 0.01 is for a long pretraining, a tiny run needs more).
const pmConfig: PMTrainConfig = resolvePMTrainConfig('finetune', {
  init: lm.checkpoint,
  data: ['helpful-train.jsonl', 'harmless-train.jsonl'].map((f) => join(world, f)).join(','),
  eval: ['helpful-test.jsonl', 'harmless-test.jsonl'].map((f) => join(world, f)).join(','),
  out: join(dir, 'pm'),
  batchSize: 16,
  steps: 40,
  lrMultiplier: 1,
  evalLimit: 128,
});
const pmRun = await trainPreferenceModel(pmConfig, { onEvent: pmLog.write });

// 4. Context distillation: the LM without the HHH prompt learns the LM with it; the result is the policy init.
const distillConfig: DistillConfig = {
  ...defaultDistillConfig,
  out: join(dir, 'distill'),
  steps: 20,
  batchSize: 8,
  lr: 1e-3,
  evalExamples: 16,
  checkpointEvery: 20,
};
const distilled = await distill({
  config: distillConfig,
  init: lm.checkpoint,
  tokenizer,
  hhhPrompt: readFileSync(join(world, 'hhh-prompt.txt'), 'utf8'),
  dialogues: dialogues.filter((d) => d.startsWith('\n\nHuman:')).slice(0, 200),
  onEvent: distillLog.write,
});

// 5. PPO against the PM: the reward is the PM's score of prompt + response; the gold judge is logged beside it.
const loaded = loadPreferenceModel(pmRun.checkpoint);
const pm = loaded.pm.eval();
const pmTokenizer = Tokenizer.fromFile(loaded.tokenizerPath ?? join(lm.checkpoint, 'tokenizer.json'));
const pmReward: RewardFn = (prompts, responses) =>
  scoreTranscripts(
    pm,
    pmTokenizer,
    prompts.map((p, i) => p + responses[i]),
  );
const gold: RewardFn = (prompts, responses) => prompts.map((p, i) => goldJudge(p, responses[i] ?? '').hh);
const prompts = jsonLines<{ prompt: string }>(join(world, 'rl-prompts.jsonl')).map((p) => p.prompt);
const ppoConfig: PPOConfig = {
  ...defaultPPOConfig,
  out: join(dir, 'ppo'),
  steps: 6,
  batchSize: 16,
  miniBatchSize: 8,
  maxNewTokens: 16,
  evalEvery: 0,
  checkpointEvery: 6,
};
validatePPOConfig(ppoConfig); // throws a PPOConfigError naming the key on a bad value
const ppo = await trainPPO({
  config: ppoConfig,
  init: distilled.checkpoint,
  tokenizer,
  prompts,
  reward: pmReward,
  gold,
  onEvent: ppoLog.write,
});
for (const log of logs) log.close();

const policyMeta = JSON.parse(readFileSync(join(ppo.checkpoint, 'hhkit.json'), 'utf8')) as {
  kind: string;
  lineage: string[];
};
console.log(
  JSON.stringify({
    lm: { firstLoss: lm.firstLoss, lastLoss: lm.lastLoss },
    pm: { firstLoss: pmRun.firstLoss, lastLoss: pmRun.lastLoss, evalAccuracy: pmRun.evalAccuracy },
    distill: { klBefore: distilled.klBefore, klAfter: distilled.klAfter },
    ppo: { steps: ppo.steps, reward: ppo.lastStep?.reward, kl: ppo.lastStep?.kl, gold: ppo.lastStep?.gold },
    policy: { kind: policyMeta.kind, lineage: policyMeta.lineage, checkpoint: ppo.checkpoint },
    checkpoints: { lm: lm.checkpoint, pm: pmRun.checkpoint, distill: distilled.checkpoint },
    tensorboard: logs.map((log) => log.tensorboardFile),
  }),
);
