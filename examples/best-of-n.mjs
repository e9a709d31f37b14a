// Best-of-N (rejection sampling, the paper's baseline for RLHF): sample N responses per prompt and keep
// the one the reward likes best. bestOfN samples max(N) once and reads every smaller N off the same
// samples, so one call gives the whole curve of reward against N (and the analytic KL, log N − (N−1)/N).
// Plain JavaScript; the policy is a fresh tiny GPT and the reward a rule, to stay self-contained: pass
// loadCheckpoint('runs/ppo/checkpoint').model and a PM scorer (scoreTranscripts) instead.
//   node examples/best-of-n.mjs
import { bestOfN, GPT, Tokenizer } from 'hhkit';

const prompts = Array.from({ length: 16 }, (_, i) => `\n\nHuman: Name a number near ${i}.\n\nAssistant:`);
const tokenizer = Tokenizer.train(
  prompts.map((p, i) => `${p} ${i + 1}, or maybe ${i * 7}. Quiet queue, quick quiz.`),
  { vocabSize: 300 },
);
const policy = new GPT(
  { nLayer: 1, nHead: 2, nEmbd: 32, nPositions: 64, vocabSize: tokenizer.vocabSize, dropout: 0 },
  { seed: 1 },
);

// The reward: how many digits the response has (any (prompts, responses) => number[] works).
const digits = (_prompts, responses) => responses.map((r) => (r.match(/[0-9]/g) ?? []).length);

const report = await bestOfN(policy, tokenizer, prompts, {
  ns: [1, 4, 16],
  reward: digits,
  maxNewTokens: 8,
  seed: 1,
});
console.log(JSON.stringify(report.rows.map(({ n, reward, kl }) => ({ n, reward, kl }))));
