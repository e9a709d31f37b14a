#!/usr/bin/python3
"""PyTorch reference for bench/ddp.ts: one rank of data-parallel GPT training. Usage: ddp_ref.py JSON,
JSON = {"model": {nLayer, nHead, nEmbd, nPositions, vocabSize}, "work": {batch, seq, warmup, steps}}.
With WORLD_SIZE > 1 in the environment (torchrun's variables, set by bench/ddp.ts) it opens a gloo process
group via env:// and wraps the model in DistributedDataParallel (default 25 MiB buckets, all-reduce
overlapping backward); without, it trains the plain model. Prints one JSON object with the same fields as
hhkit's rank (bench/ddp.ts RankFigures).

Step: forward, cross-entropy, backward (DDP averages the gradients), torch.optim.AdamW step, zero_grad.
"""
import json
import os
import sys
import time

import torch
import torch.distributed as dist
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'nn'))
from gpt_ref import GPT, GPTConfig  # noqa: E402

torch.set_num_threads(1)  # OpenBLAS's own pool is sized by OPENBLAS_NUM_THREADS=1, set by the caller
spec = json.loads(sys.argv[1])
m, work = spec['model'], spec['work']
world_size = int(os.environ.get('WORLD_SIZE', '1'))
rank = int(os.environ.get('RANK', '0'))
if world_size > 1:
    dist.init_process_group('gloo', init_method='env://')


def cpu_jiffies():
    """Busy and total jiffies of the whole machine from /proc/stat (as bench/ddp.ts), or None."""
    try:
        with open('/proc/stat') as f:
            lines = f.read().split('\n')
    except OSError:
        return None
    fields = [int(v) for v in lines[0].split()[1:]]
    total = sum(fields[:8])
    return total - fields[3] - fields[4], total, sum(1 for l in lines if l[:3] == 'cpu' and l[3:4].isdigit())


def busy_cores(before, after):
    if before is None or after is None or after[1] == before[1]:
        return None
    return (after[0] - before[0]) / (after[1] - before[1]) * after[2]


cfg = GPTConfig(n_layer=m['nLayer'], n_head=m['nHead'], n_embd=m['nEmbd'], n_positions=m['nPositions'],
                vocab_size=m['vocabSize'], dropout=0.0)
torch.manual_seed(0)
model = GPT(cfg)
model.train()
V = cfg.vocab_size
net = torch.nn.parallel.DistributedDataParallel(model) if world_size > 1 else model  # DDP broadcasts rank 0's weights
opt = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.1)
g = torch.Generator().manual_seed(1 + rank)  # each rank its own batch
x = torch.randint(0, V, (work['batch'], work['seq']), generator=g)
y = torch.randint(0, V, (work['batch'], work['seq']), generator=g)


step_seconds = []


def step():
    t = time.perf_counter()
    logits = net(x)  # (B, T, V)
    F.cross_entropy(logits.view(-1, V), y.view(-1)).backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    step_seconds.append(time.perf_counter() - t)


for _ in range(work['warmup']):
    step()
if world_size > 1:
    dist.barrier()
step_seconds.clear()
jiffies0 = cpu_jiffies() if rank == 0 else None
cpu0 = time.process_time()
for _ in range(work['steps']):
    step()
cpu = time.process_time() - cpu0
machine = busy_cores(jiffies0, cpu_jiffies()) if rank == 0 else None

# The all-reduce alone, without peer skew: one flat tensor of all the gradients' elements, after a barrier.
all_reduce = None
if world_size > 1:
    flat = torch.zeros(sum(p.numel() for p in model.parameters()))
    for _ in range(3):
        dist.barrier()
        t = time.perf_counter()
        dist.all_reduce(flat)
        s = time.perf_counter() - t
        all_reduce = s if all_reduce is None else min(all_reduce, s)
    dist.destroy_process_group()

print(json.dumps({
    'rank': rank, 'worldSize': world_size, 'stepSeconds': step_seconds,
    'syncSeconds': None,  # overlapped with backward inside DDP: not separable
    'cpuSeconds': cpu, 'allReduceSeconds': all_reduce, 'machineBusyCores': machine,
    'torch': torch.__version__,
}))
