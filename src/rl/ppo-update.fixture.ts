// Child process for src/cli/ppo-launch.test.ts: PPO's update (ppoUpdate) on fixed rollouts, either as one
// rank of a gloo process group (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT set: each rank updates on its
// half of the rows with the default minibatch plan) or as one process on all the rows with the minibatches
// the ranks form together. Every process samples the same rollouts (same init, same seed), so the rows are
// given, not drawn per rank. Writes the updated weights to OUT-rank<R>.safetensors and prints one JSON line.
//   INIT=<checkpoint> PROMPTS=<JSON list> OUT=<prefix> [SCENARIO=nan: rank 1's scores are NaN] node --import tsx ppo-update.fixture.ts
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  AdamW,
  destroyProcessGroup,
  encodeSafetensors,
  initProcessGroup,
  parameterDrift,
  tensor,
  tidy,
} from '../engine/index.ts';
import { loadCheckpoint } from '../nn/checkpoint.ts';
import { prefixKeys } from '../nn/module.ts';
import { Tokenizer } from '../tokenizer/index.ts';
import { ActorCritic } from './policy.ts';
import { defaultPPOConfig, type PPOConfig } from './ppo-config.ts';
import { miniBatchPlan, miniBatchSeed, type ResponseBatch, ppoUpdate } from './ppo-update.ts';
import { sampleRollout } from './rollout.ts';

const init = process.env.INIT!;
const outPrefix = process.env.OUT!;
const { rank, worldSize } = initProcessGroup();
const B = 8; // the global batch
const M = 4; // the global minibatch
const config: PPOConfig = {
  ...defaultPPOConfig,
  batchSize: B,
  miniBatchSize: M,
  ppoEpochs: 2,
  maxNewTokens: 8,
  lr: 5e-3,
  klCoef: 0.05,
  whitenRewards: true, // exercises the global reward whitening too
};

const tokenizer = Tokenizer.fromFile(join(init, 'tokenizer.json'));
const reference = loadCheckpoint(init).model.eval();
const ac = new ActorCritic(loadCheckpoint(init).model, 'shared', null, { seed: 1 }).eval();
const optimizer = new AdamW(ac.parameters(), { lr: config.lr, weightDecay: 0, eps: 1e-5 });
const prompts = JSON.parse(process.env.PROMPTS!) as string[];
const promptTokens = await tokenizer.encodeBatch(prompts.slice(0, B), { allowSpecial: false });
// The given rollouts: all B rows, identical in every process.
const all = await sampleRollout(ac.policy, tokenizer, promptTokens, { maxNewTokens: 8, seed: 123 });
// Given scores with a spread (a toy reward: length and position), so advantages are not all zero.
const allScores = all.texts.map((t, i) => (i % 3) - 1 + t.length / 40);

// This process's rows: rank r holds rows [r·B/W, (r+1)·B/W).
const local = B / worldSize;
const rows = Array.from({ length: local }, (_, i) => rank * local + i);
const index = tensor(BigInt64Array.from(rows, BigInt));
const batch: ResponseBatch = {
  sequences: all.sequences.indexSelect(0, index),
  attentionMask: all.attentionMask.indexSelect(0, index),
  responses: all.responses.indexSelect(0, index),
  mask: all.mask.indexSelect(0, index),
  promptWidth: all.promptWidth,
  responseWidth: all.responseWidth,
};
const scores = rows.map((r) => (process.env.SCENARIO === 'nan' && rank === 1 ? Number.NaN : allScores[r]!));

// One process: the minibatches the two ranks form together (each rank's slice of M/2 rows, side by side).
const unionOfTwoRanks = (step: number) => (epoch: number) =>
  miniBatchPlan(B / 2, M / 2, miniBatchSeed(config, step, epoch)).map((slice) => [
    ...slice,
    ...slice.map((i) => i + B / 2),
  ]);

const stats = [];
try {
  for (let step = 1; step <= 2; step++) {
    const r = ppoUpdate(ac, reference, optimizer, batch, scores, {
      config,
      klCoef: config.klCoef,
      step,
      lastGood: 'nowhere',
      ...(worldSize === 1 ? { plan: unionOfTwoRanks(step) } : {}),
    });
    stats.push({
      policyLoss: r.policyLoss,
      valueLoss: r.valueLoss,
      clipFraction: r.clipFraction,
      approxKL: r.approxKL,
      entropy: r.entropy,
    });
  }
} catch (err) {
  console.log(JSON.stringify({ rank, error: (err as Error).name, message: (err as Error).message }));
  destroyProcessGroup();
  process.exit(0);
}
const drift = parameterDrift(ac.parameters());
tidy(() => {
  const weights = { ...ac.policy.stateDict(), ...prefixKeys(ac.valueHead.stateDict(), 'value_head') };
  writeFileSync(`${outPrefix}-rank${rank}.safetensors`, encodeSafetensors(weights));
});
console.log(JSON.stringify({ rank, worldSize, drift, stats }));
all.dispose();
destroyProcessGroup();
