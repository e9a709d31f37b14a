#!/usr/bin/python3
"""PyTorch eager reference for bench/ppo.ts: one PPO step of the same shape on the same GPT (gpt_ref.py),
same threads. Usage: ppo_ref.py THREADS. Prints one JSON object with the time split and samples/s.

Generation is bench/model_ref.py's loop (KV cache, mask and positions per step, multinomial sampling);
scoring is a same-size GPT + linear head read at the last position; the reference and old log-probs are
full forwards; training is K = 2 passes over minibatches of 16: clipped policy + 0.1 x clipped value loss,
backward, clip_grad_norm_, AdamW step (as src/rl/ppo.ts).
"""
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'nn'))
sys.argv = [sys.argv[0], sys.argv[1] if len(sys.argv) > 1 else '2', '[]']
from gpt_ref import GPT, GPTConfig  # noqa: E402
from model_ref import generate  # noqa: E402  (runs nothing with an empty suite list)

threads = int(sys.argv[1])
torch.set_num_threads(threads)
cfg = GPTConfig(n_layer=4, n_head=4, n_embd=128, n_positions=256, vocab_size=4096, dropout=0.0)
torch.manual_seed(0)
policy, reference, pm = GPT(cfg), GPT(cfg), GPT(cfg)
for m in (policy, reference, pm):
    m.eval()
pm_head = torch.nn.Linear(128, 1)
value_head = torch.nn.Linear(128, 1)
params = list(policy.parameters()) + list(value_head.parameters())
opt = torch.optim.AdamW(params, lr=1e-5, weight_decay=0.0)
B, P, N = 32, 24, 32


def response_logits(model, seq, mask):
    hidden, _ = model.forward_hidden(seq, mask)
    h = hidden[:, P - 1:P - 1 + N]
    return F.linear(h, model.transformer.wte.weight), h


def masked_mean(x, m):
    return (x * m).sum() / m.sum().clamp(min=1)


times = {'generation': 0.0, 'scoring': 0.0, 'reference': 0.0, 'training': 0.0}
steps = 3
for step in range(steps + 1):
    prompts = torch.randint(0, cfg.vocab_size, (B, P))
    t0 = time.perf_counter()
    with torch.no_grad():
        responses, _ = generate(policy, prompts, N, [])
    seq = torch.cat([prompts, responses], 1)
    mask = torch.ones_like(seq, dtype=torch.bool)
    t1 = time.perf_counter()
    with torch.no_grad():
        hidden, _ = pm.forward_hidden(seq, mask)
        float(pm_head(hidden[:, -1]).sum())
    t2 = time.perf_counter()
    with torch.no_grad():
        ref_logp = response_logits(reference, seq, mask)[0].log_softmax(-1).gather(2, responses[..., None])[..., 0]
        logits, h = response_logits(policy, seq, mask)
        old_logp = logits.log_softmax(-1).gather(2, responses[..., None])[..., 0]
        old_values = value_head(h)[..., 0]
    t3 = time.perf_counter()
    adv = -(old_logp - ref_logp)
    m = torch.ones(B, N)
    for epoch in range(2):
        for s in range(0, B, 16):
            sl = slice(s, s + 16)
            logits, h = response_logits(policy, seq[sl], mask[sl])
            logp = logits.log_softmax(-1).gather(2, responses[sl][..., None])[..., 0]
            values = value_head(h)[..., 0]
            ratio = (logp - old_logp[sl]).exp()
            pg = torch.max(-adv[sl] * ratio, -adv[sl] * ratio.clamp(0.8, 1.2))
            vclip = old_values[sl] + (values - old_values[sl]).clamp(-0.2, 0.2)
            vf = torch.max((values - adv[sl]) ** 2, (vclip - adv[sl]) ** 2)
            loss = masked_mean(pg, m[sl]) + 0.1 * 0.5 * masked_mean(vf, m[sl])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
    t4 = time.perf_counter()
    if step == 0:
        continue
    times['generation'] += (t1 - t0) / steps
    times['scoring'] += (t2 - t1) / steps
    times['reference'] += (t3 - t2) / steps
    times['training'] += (t4 - t3) / steps
total = sum(times.values())
print(json.dumps({'samples_s': B / total, 'seconds': dict(times, total=total)}))
