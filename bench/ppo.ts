// PPO step benchmark (issue 6): the wall-clock split of one PPO step — generation, PM scoring, reference
// log-probs, training (K passes over minibatches) — for the world's small policy (gptPresets.small) with a
// same-size PM, and samples/s, beside the same step in eager PyTorch (bench/ppo_ref.py, same threads).
// Wire it into bench/run.ts as `ppo: runPPOBench`.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { AdamW, clipGradNorm, noGrad, randint, setNumThreads, tidy } from '../src/engine/index.ts';
import { generateBatch } from '../src/nn/generate.ts';
import { GPT, gptPresets } from '../src/nn/gpt.ts';
import { ScalarHead } from '../src/nn/heads.ts';
import { clippedPolicyLoss, clippedValueLoss } from '../src/rl/losses.ts';
import { ActorCritic, gatherLogprobs, responseLogits } from '../src/rl/policy.ts';

export interface PPOBenchLine {
  bench: string;
  ours: number;
  unit: string;
  [key: string]: unknown;
}

/** One PPO step on random prompts: B = 32 prompts of 24 tokens, 32 new tokens, K = 2 passes, minibatch 16. */
export function runPPOBench(threads: number): PPOBenchLine[] {
  setNumThreads(threads);
  const config = { ...gptPresets.small, dropout: 0 };
  const policy = new GPT(config, { seed: 1 }).eval();
  const reference = new GPT(config, { seed: 1 }).eval();
  const pm = new GPT(config, { seed: 2 }).eval();
  const pmHead = new ScalarHead(config.nEmbd, { seed: 3 });
  const ac = new ActorCritic(policy, 'shared', null, { seed: 4 });
  const opt = new AdamW(ac.parameters(), { lr: 1e-5, weightDecay: 0 });
  const B = 32;
  const P = 24;
  const N = 32;
  const times = { generation: 0, scoring: 0, reference: 0, training: 0 };
  const steps = 3;
  for (let step = 0; step <= steps; step++) {
    const t = tidy(() => {
      const prompts = randint(0, config.vocabSize, [B, P]);
      const mask = prompts.ge(0);
      const t0 = performance.now();
      // eosId null: every row samples N tokens, so the work per step is fixed.
      const out = generateBatch(policy, prompts, mask, {
        maxNewTokens: N,
        padId: 0,
        eosId: null,
        seed: step,
      });
      const window = {
        sequences: out.sequences,
        attentionMask: out.attentionMask,
        promptWidth: P,
        responseWidth: out.responses.size(1),
      };
      const t1 = performance.now();
      noGrad(() =>
        pmHead
          .forward(pm.forwardHidden(out.sequences, { attentionMask: out.attentionMask }).hidden)
          .select(1, -1)
          .sum()
          .item(),
      );
      const t2 = performance.now();
      const refLogp = noGrad(() => gatherLogprobs(responseLogits(reference, window).logits, out.responses));
      const old = noGrad(() => {
        const { logits, values } = ac.forward(window);
        return { logp: gatherLogprobs(logits, out.responses), values };
      });
      const t3 = performance.now();
      const maskF = out.responseMask.float();
      const advantages = old.logp.sub(refLogp).neg(); // stand-in numbers; the work is what is timed
      for (let epoch = 0; epoch < 2; epoch++) {
        for (let start = 0; start < B; start += 16) {
          tidy(() => {
            const w = {
              ...window,
              sequences: window.sequences.narrow(0, start, 16),
              attentionMask: window.attentionMask.narrow(0, start, 16),
            };
            const { logits, values } = ac.forward(w);
            const logp = gatherLogprobs(logits, out.responses.narrow(0, start, 16));
            const m = maskF.narrow(0, start, 16);
            const loss = clippedPolicyLoss(
              logp,
              old.logp.narrow(0, start, 16),
              advantages.narrow(0, start, 16),
              m,
            ).loss.add(
              clippedValueLoss(
                values,
                old.values.narrow(0, start, 16),
                advantages.narrow(0, start, 16),
                m,
              ).loss.mul(0.1),
            );
            loss.backward();
            clipGradNorm(ac.parameters(), 1);
            opt.step();
            opt.zeroGrad();
          });
        }
      }
      const t4 = performance.now();
      return [t1 - t0, t2 - t1, t3 - t2, t4 - t3] as const;
    });
    if (step === 0) continue; // warm-up
    times.generation += t[0] / 1000 / steps;
    times.scoring += t[1] / 1000 / steps;
    times.reference += t[2] / 1000 / steps;
    times.training += t[3] / 1000 / steps;
  }
  const total = times.generation + times.scoring + times.reference + times.training;
  const torchRef = pytorchReference(threads);
  return [
    {
      bench: 'ppo-step-small',
      ours: B / total,
      reference: torchRef?.samples_s ?? null,
      unit: 'samples/s',
      ratio: torchRef ? B / total / torchRef.samples_s : null,
      threads,
      batch: B,
      promptTokens: P,
      newTokens: N,
      ppoEpochs: 2,
      miniBatch: 16,
      seconds: { ...times, total },
      referenceSeconds: torchRef?.seconds ?? null,
    },
  ];
}

/** The same step in eager PyTorch (Debian's torch under /usr/bin/python3), or null when unavailable. */
function pytorchReference(threads: number): { samples_s: number; seconds: Record<string, number> } | null {
  const script = fileURLToPath(new URL('./ppo_ref.py', import.meta.url));
  const env = { ...process.env, OMP_NUM_THREADS: String(threads), OPENBLAS_NUM_THREADS: String(threads) };
  const r = spawnSync('/usr/bin/python3', [script, String(threads)], { encoding: 'utf8', env });
  if (r.status !== 0) {
    console.error(`ppo_ref.py failed: ${r.stderr.slice(-400)}`);
    return null;
  }
  const last = r.stdout.trim().split('\n').at(-1) ?? '';
  return JSON.parse(last) as { samples_s: number; seconds: Record<string, number> };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const line of runPPOBench(Number(process.argv[2] ?? 2))) console.log(JSON.stringify(line));
}
