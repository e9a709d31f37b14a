#!/usr/bin/python3
"""PyTorch eager reference for bench/families-ppo.ts: one PPO step with three models of one config on
test/fixtures/nn/llama_ref.py's model, random weights, float32, the phases of bench/ppo_ref.py:
generation (families_ref.py's KV-cache loop, every row runs to the end), PM scoring (trunk + linear head read
at the last token), the reference's and the rollout policy's log-probs and values (full forwards), then
training: K passes over minibatches, clipped policy + 0.1 x clipped value loss, backward, clip_grad_norm_,
AdamW step (as src/rl/ppo-update.ts).
Usage: families_ppo_ref.py THREADS WORK_JSON. Prints one JSON object: seconds per phase (mean over the
measured steps, after one warm-up step) and the process's peak RSS in KiB (ru_maxrss)."""
import json
import os
import resource
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from families_ref import generate  # noqa: E402  (also puts test/fixtures/nn on the path)
from llama_ref import LlamaForCausalLM  # noqa: E402

torch.set_num_threads(int(sys.argv[1]))  # OpenBLAS's pool is sized by OPENBLAS_NUM_THREADS, set by the caller
w = json.loads(sys.argv[2])
baseline_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # interpreter + torch, before any model
B, P, N = w['batch'], w['promptTokens'], w['newTokens']
M, K = w['miniBatch'], w['ppoEpochs']
V, C = w['config']['vocab_size'], w['config']['hidden_size']
torch.manual_seed(1)
policy, reference, pm = (LlamaForCausalLM(w['config']).float() for _ in range(3))
for m in (policy, reference, pm):
    m.eval()  # no dropout anywhere (llama has none at attention_dropout 0)
pm_head = torch.nn.Linear(C, 1)
value_head = torch.nn.Linear(C, 1)
params = list(policy.parameters()) + list(value_head.parameters())
opt = torch.optim.AdamW(params, lr=1e-5, weight_decay=0.0)


def response_logits(model, seq, mask):
    hidden, _ = model.forward_hidden(seq, mask)  # (B, P+N, C)
    h = hidden[:, P - 1:P - 1 + N]  # (B, N, C): column P-1+t predicts response token t
    return F.linear(h, model.lm_head_weight()), h


def masked_mean(x, m):
    return (x * m).sum() / m.sum().clamp(min=1)


times = {'generation': 0.0, 'scoring': 0.0, 'reference': 0.0, 'training': 0.0}
steps = w['steps']
for step in range(steps + 1):
    prompts = torch.randint(1, V, (B, P))
    t0 = time.perf_counter()
    responses, _ = generate(policy, prompts, N)
    seq = torch.cat([prompts, responses], 1)  # (B, P+N)
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
    adv = -(old_logp - ref_logp)  # stand-in numbers; the work is what is timed
    m = torch.ones(B, N)
    for epoch in range(K):
        for s in range(0, B, M):
            sl = slice(s, s + M)
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
        continue  # warm-up: allocates AdamW's state, the allocator's pools, BLAS buffers
    times['generation'] += (t1 - t0) / steps
    times['scoring'] += (t2 - t1) / steps
    times['reference'] += (t3 - t2) / steps
    times['training'] += (t4 - t3) / steps
print(json.dumps({
    'seconds': dict(times, total=sum(times.values())),
    'peakRssKiB': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    'baselineRssKiB': baseline_kib,
}))
