#!/usr/bin/python3
"""PyTorch eager reference for bench/ppo.ts: one PPO step of the same shape on the same GPT (gpt_ref.py),
same threads. Usage: ppo_ref.py THREADS [small|6x512] [STEPS]. Prints one JSON object with the time split and
samples/s.

Generation is bench/model_ref.py's loop (KV cache, mask and positions per step, multinomial sampling);
scoring is a same-size GPT + linear head read at the last position; the reference and old log-probs are
full forwards; training is K = 2 passes over minibatches of 16: clipped policy + 0.1 x clipped value loss,
backward, clip_grad_norm_, AdamW step (as src/rl/ppo.ts).
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'nn'))
ARGS = list(sys.argv)
sys.argv = [sys.argv[0], sys.argv[1] if len(sys.argv) > 1 else '2', '[]']
from gpt_ref import GPT, GPTConfig  # noqa: E402
from model_ref import generate  # noqa: E402  (runs nothing with an empty suite list)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ppo_step_ref import time_ppo_steps  # noqa: E402

size = ARGS[2] if len(ARGS) > 2 else 'small'
steps = int(ARGS[3]) if len(ARGS) > 3 else 3
threads = int(sys.argv[1])
torch.set_num_threads(threads)
SIZES = {
    'small': dict(n_layer=4, n_head=4, n_embd=128, vocab_size=4096),  # gptPresets.small
    '6x512': dict(n_layer=6, n_head=8, n_embd=512, vocab_size=8192),  # bench/model.ts's gpt-6x512
}
cfg = GPTConfig(**SIZES[size], n_positions=256, dropout=0.0)
torch.manual_seed(0)
policy, reference, pm = GPT(cfg), GPT(cfg), GPT(cfg)
for m in (policy, reference, pm):
    m.eval()
pm_head = torch.nn.Linear(cfg.n_embd, 1)
value_head = torch.nn.Linear(cfg.n_embd, 1)
B, P, N = 32, 24, 32
seconds = time_ppo_steps(
    policy, reference, pm, pm_head, value_head,
    lm_head=lambda model: model.transformer.wte.weight,
    sample=lambda prompts: generate(policy, prompts, N, [])[0],
    shape=(B, P, N, 2, 16, cfg.vocab_size),
    steps=steps,
)
print(json.dumps({'samples_s': B / seconds['total'], 'seconds': seconds}))
