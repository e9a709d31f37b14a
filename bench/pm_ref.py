#!/usr/bin/python3
"""PyTorch eager reference for bench/pm.ts: PM scoring of a batch of transcripts — the same task (hhkit runs its
last block at the readout token only, which this does not), the same threads. Usage: pm_ref.py THREADS JSON, JSON = [{"name", "config", "lengths": [...], "batch", "reps"}].
Prints one JSON object {name: {"seq_s": transcripts scored per second}}.

The PM as Hugging Face's GPT2ForSequenceClassification scores: the GPT trunk (test/fixtures/nn/gpt_ref.py)
over every position of the right-padded batch, the final hidden state gathered at each row's last real
token, a linear head to one number; under torch.no_grad() in eval mode. The transcripts are grouped by
length before batching, as hhkit's scoreSequences groups them, so both sides pad alike.
"""
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'nn'))
from gpt_ref import GPT, GPTConfig  # noqa: E402

threads = int(sys.argv[1])
torch.set_num_threads(threads)  # OpenBLAS's own pool is sized by OPENBLAS_NUM_THREADS, set by the caller
suites = json.loads(sys.argv[2])


class PM(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        cfg = GPTConfig(n_layer=c['nLayer'], n_head=c['nHead'], n_embd=c['nEmbd'], n_positions=c['nPositions'],
                        vocab_size=c['vocabSize'], dropout=0.0)
        self.trunk = GPT(cfg)
        self.score = torch.nn.Linear(c['nEmbd'], 1)

    def forward(self, ids, mask, readout):
        hidden, _ = self.trunk.forward_hidden(ids, mask)
        picked = hidden[torch.arange(ids.shape[0]), readout]  # (B, C)
        return self.score(picked).squeeze(-1)


def batches(lengths, batch, vocab):
    g = torch.Generator().manual_seed(4)
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    out = []
    for at in range(0, len(order), batch):
        group = [lengths[i] for i in order[at:at + batch]]
        T = max(group)
        ids = torch.zeros(len(group), T, dtype=torch.long)
        mask = torch.zeros(len(group), T, dtype=torch.long)
        for r, n in enumerate(group):
            ids[r, :n] = torch.randint(1, vocab, (n,), generator=g)
            mask[r, :n] = 1
        out.append((ids, mask))
    return out


def seq_s(s):
    torch.manual_seed(0)
    pm = PM(s['config']).eval()
    data = batches(s['lengths'], s['batch'], s['config']['vocabSize'])

    def run():
        with torch.no_grad():
            for ids, mask in data:
                readout = mask.sum(1) - 1
                pm(ids, mask, readout).tolist()

    run()  # warm-up
    best = float('inf')
    for _ in range(s['reps']):
        t = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - t)
    return len(s['lengths']) / best


out = {'torch': torch.__version__, 'threads': torch.get_num_threads()}
for s in suites:
    out[s['name']] = {'seq_s': seq_s(s)}
print(json.dumps(out))
