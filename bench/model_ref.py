#!/usr/bin/python3
"""PyTorch eager reference for bench/model.ts: the same GPT (test/fixtures/nn/gpt_ref.py), the same work,
the same threads. Usage: model_ref.py THREADS JSON, JSON = [{"name", "config", "train": {...}, "gen": {...}}].
Prints one JSON object {name: {"train_tok_s", "gen_tok_s", ...}}.

Training step: forward, cross-entropy, backward, torch.optim.AdamW step, zero_grad (as hhkit's).
Generation: the loop of src/nn/generate.ts written in eager PyTorch: preallocated KV cache (gpt_ref's, written
in place), attention mask and position ids every step, logits for the last position only, log-softmax at
temperature 1, multinomial sampling, stop check (one .item() per step).
"""
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'nn'))
from gpt_ref import GPT, GPTConfig, KVCache  # noqa: E402

device = os.environ.get('HHKIT_BENCH_DEVICE', 'cpu')
bf16 = os.environ.get('HHKIT_BENCH_PRECISION', 'bf16' if device != 'cpu' else 'fp32') == 'bf16'


def sync():
    if device != 'cpu':
        torch.cuda.synchronize()


def amp():
    return torch.autocast(device_type='cuda' if device != 'cpu' else 'cpu', dtype=torch.bfloat16, enabled=bf16)


threads = int(sys.argv[1])
torch.set_num_threads(threads)  # OpenBLAS's own pool is sized by OPENBLAS_NUM_THREADS, set by the caller
suites = json.loads(sys.argv[2])


def make_model(c):
    cfg = GPTConfig(n_layer=c['nLayer'], n_head=c['nHead'], n_embd=c['nEmbd'], n_positions=c['nPositions'],
                    vocab_size=c['vocabSize'], dropout=0.0)
    torch.manual_seed(0)
    return GPT(cfg).to(device)


def train_tok_s(model, batch, seq, steps):
    V = model.config.vocab_size
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.1)
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, V, (batch, seq), generator=g).to(device)
    y = torch.randint(0, V, (batch, seq), generator=g).to(device)

    def step():
        with amp():
            logits = model(x)
        loss = F.cross_entropy(logits.float().view(-1, V), y.view(-1))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    step()  # warm-up: allocates optimiser state
    best = float('inf')
    for _ in range(steps):
        sync()
        t = time.perf_counter()
        step()
        sync()
        best = min(best, time.perf_counter() - t)
    return batch * seq / best


@torch.no_grad()
def generate(model, prompt, max_new, stop_ids, pad_id=0):
    B, P = prompt.shape
    V = model.config.vocab_size
    dt = torch.bfloat16 if bf16 and device != 'cpu' else torch.float32
    cache = KVCache(model.config, B, P + max_new, device=device, dtype=dt)
    mask = torch.zeros(B, P + max_new, dtype=torch.bool, device=device)
    mask[:, :P] = True
    prompt_mask = mask[:, :P]
    responses = torch.full((B, max_new), pad_id, dtype=torch.long, device=device)
    logprobs = torch.zeros(B, max_new, device=device)
    done = torch.zeros(B, 1, dtype=torch.bool, device=device)
    is_stop = torch.zeros(V, dtype=torch.bool, device=device)
    is_stop[stop_ids] = True
    positions = (prompt_mask.long().cumsum(1) - 1).clamp(min=0)
    next_pos = prompt_mask.long().sum(1, keepdim=True)
    hidden, _ = model.forward_hidden(prompt, prompt_mask, positions, cache)
    wte = model.transformer.wte.weight
    logits = F.linear(hidden[:, -1], wte)  # (B, V): the last position only, as hhkit's logits: 'last'
    steps = 0
    while steps < max_new:
        logp = logits.log_softmax(-1)
        token = torch.multinomial(logits.softmax(-1), 1).masked_fill(done, pad_id)
        responses[:, steps:steps + 1] = token
        logprobs[:, steps:steps + 1] = logp.gather(1, token).masked_fill(done, 0)
        mask[:, P + steps:P + steps + 1] = ~done
        done |= is_stop[token]
        steps += 1
        if bool(done.all()) or steps == max_new:
            break
        hidden, _ = model.forward_hidden(token, mask[:, :P + steps].contiguous(), next_pos, cache)
        logits = F.linear(hidden[:, -1], wte)
        next_pos += 1
    return responses[:, :steps], logprobs[:, :steps]


def gen_tok_s(model, batch, prompt_len, max_new, reps):
    model.eval()
    V = model.config.vocab_size
    g = torch.Generator().manual_seed(2)
    prompt = torch.randint(1, V, (batch, prompt_len), generator=g).to(device)
    torch.manual_seed(3)
    with amp():
        generate(model, prompt, 8, [])  # warm-up
    best = float('inf')
    for _ in range(reps):
        sync()
        t = time.perf_counter()
        with amp():
            out, _ = generate(model, prompt, max_new, [])
        sync()
        best = min(best, time.perf_counter() - t)
        assert out.shape == (batch, max_new)
    return batch * max_new / best


out = {'torch': torch.__version__, 'threads': torch.get_num_threads()}
if device != 'cpu':
    out['device_name'] = torch.cuda.get_device_name(device)
for s in suites:
    model = make_model(s['config'])
    r = {}
    if 'train' in s:
        r['train_tok_s'] = train_tok_s(model, s['train']['batch'], s['train']['seq'], s['train']['steps'])
    if 'gen' in s:
        gg = s['gen']
        r['gen_tok_s'] = gen_tok_s(model, gg['batch'], gg['prompt'], gg['newTokens'], gg['reps'])
    out[s['name']] = r
print(json.dumps(out))
