#!/usr/bin/python3
"""PyTorch reference for bench/engine.ts: the same measurements, same threads. Prints one JSON object."""
import json, sys, time
import torch

threads = int(sys.argv[1])
torch.set_num_threads(threads)  # OpenBLAS's own pool is sized by OPENBLAS_NUM_THREADS, set by the caller

# Best of the trials: on a shared machine the fastest trial is the one least disturbed by other work.
best = min

def gemm(m, k, n, reps):
    a, b = torch.randn(m, k), torch.randn(k, n)
    for _ in range(3):
        a @ b
    trials = []
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(reps):
            a @ b
        trials.append((time.perf_counter() - t) / reps)
    return 2 * m * k * n / best(trials) / 1e9

def tiny_add(n):
    x, y = torch.zeros(1), torch.zeros(1)
    for _ in range(20000):
        x + y
    trials = []
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(n):
            x + y
        trials.append((time.perf_counter() - t) / n * 1e6)
    return best(trials)

print(json.dumps({
    'sgemm_1024': gemm(1024, 1024, 1024, 10),
    'sgemm_64x768x3072': gemm(64, 768, 3072, 100),
    'tiny_add_us': tiny_add(100000),
    'torch': torch.__version__,
}))
