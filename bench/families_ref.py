#!/usr/bin/python3
"""PyTorch eager reference for bench/families.ts: the same work on test/fixtures/nn/llama_ref.py's model (the
port of transformers' Llama/Qwen2 modeling code the parity tests use), random weights, float32.
Usage: families_ref.py THREADS WORK_JSON. Prints {"tok_s": …}. bench/families_ppo_ref.py imports `generate`."""
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'nn'))
from llama_ref import KVCache, LlamaForCausalLM  # noqa: E402


def best(steps, fn):
    fn()  # warm-up
    m = float('inf')
    for _ in range(steps):
        t = time.perf_counter()
        fn()
        m = min(m, time.perf_counter() - t)
    return m


@torch.no_grad()
def generate(model, prompt, n):
    """hhkit's loop (src/nn/generate.ts) in eager PyTorch: preallocated cache, mask and positions every step,
    last-position logits, log-softmax and multinomial sampling at temperature 1, no stop tokens.
    prompt (B, T) int64 → responses (B, n) int64, their log-probs (B, n)."""
    c = model.config
    B, T = prompt.shape
    cache = KVCache(c.num_hidden_layers, c.num_key_value_heads, c.head_dim, B, T + n, dtype=torch.float32)
    mask = torch.zeros(B, T + n, dtype=torch.bool)
    mask[:, :T] = True
    responses = torch.zeros(B, n, dtype=torch.long)
    logprobs = torch.zeros(B, n)
    hidden, _ = model.forward_hidden(prompt, mask[:, :T], None, cache)
    logits = F.linear(hidden[:, -1], model.lm_head_weight())
    for step in range(n):
        logp = logits.log_softmax(-1)
        token = torch.multinomial(logits.softmax(-1), 1)
        responses[:, step:step + 1] = token
        logprobs[:, step:step + 1] = logp.gather(1, token)
        mask[:, T + step] = True
        if step == n - 1:
            break
        positions = torch.full((B, 1), T + step, dtype=torch.long)
        hidden, _ = model.forward_hidden(token, mask[:, :T + step + 1], positions, cache)
        logits = F.linear(hidden[:, -1], model.lm_head_weight())
    return responses, logprobs


def main():
    torch.set_num_threads(int(sys.argv[1]))  # OpenBLAS's pool is sized by OPENBLAS_NUM_THREADS, set by the caller
    w = json.loads(sys.argv[2])
    torch.manual_seed(1)
    model = LlamaForCausalLM(w['config']).float()
    V = w['config']['vocab_size']
    B, T = w['batch'], w['seq']
    if w['kind'] == 'generate':
        model.eval()
        n = w.get('newTokens', 32)
        print(json.dumps({'tok_s': B * n / best(w['steps'], lambda: generate(model, torch.randint(1, V, (B, T)), n))}))
        return
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, weight_decay=0) if w['kind'] == 'train' else None
    x = torch.randint(0, V, (B, T))
    y = torch.randint(0, V, (B, T))

    def step():
        F.cross_entropy(model(x).view(-1, V), y.view(-1)).backward()
        if opt:
            opt.step()
        model.zero_grad(set_to_none=True)

    print(json.dumps({'tok_s': B * T / best(w['steps'], step)}))


if __name__ == '__main__':
    main()
