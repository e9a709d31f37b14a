#!/usr/bin/python3
"""PyTorch eager reference for bench/families-ppo.ts: one PPO step with three models of one config on
test/fixtures/nn/llama_ref.py's model, random weights, float32, the phases of bench/ppo_ref.py:
generation (families_ref.py's KV-cache loop, every row runs to the end), PM scoring (trunk + linear head read
at the last token), the reference's and the rollout policy's log-probs and values (full forwards), then
training: K passes over minibatches, clipped policy + 0.1 x clipped value loss, backward, clip_grad_norm_,
AdamW step (as src/rl/ppo-update.ts).
Usage: families_ppo_ref.py THREADS WORK_JSON. Prints one JSON object: seconds per phase (mean over the
measured steps, after one warm-up step) and the process's peak RSS in KiB (VmHWM of /proc/self/status:
Linux keeps ru_maxrss across exec, so it would report the peak of a parent that had grown)."""
import json
import os
import resource
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from families_ref import generate  # noqa: E402  (also puts test/fixtures/nn on the path)
from llama_ref import LlamaForCausalLM  # noqa: E402
from ppo_step_ref import time_ppo_steps  # noqa: E402

torch.set_num_threads(int(sys.argv[1]))  # OpenBLAS's pool is sized by OPENBLAS_NUM_THREADS, set by the caller
w = json.loads(sys.argv[2])


def peak_rss_kib():
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('VmHWM:'):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


baseline_kib = peak_rss_kib()  # interpreter + torch, before any model
B, P, N = w['batch'], w['promptTokens'], w['newTokens']
M, K = w['miniBatch'], w['ppoEpochs']
V, C = w['config']['vocab_size'], w['config']['hidden_size']
torch.manual_seed(1)
policy, reference, pm = (LlamaForCausalLM(w['config']).float() for _ in range(3))
for m in (policy, reference, pm):
    m.eval()  # no dropout anywhere (llama has none at attention_dropout 0)
pm_head = torch.nn.Linear(C, 1)
value_head = torch.nn.Linear(C, 1)
seconds = time_ppo_steps(
    policy, reference, pm, pm_head, value_head,
    lm_head=lambda model: model.lm_head_weight(),
    sample=lambda prompts: generate(policy, prompts, N)[0],
    shape=(B, P, N, K, M, V),
    steps=w['steps'],
)
print(json.dumps({
    'seconds': seconds,
    'peakRssKiB': peak_rss_kib(),
    'baselineRssKiB': baseline_kib,
}))
