"""One timed PPO step in eager PyTorch, shared by bench/ppo_ref.py and bench/families_ppo_ref.py (the twin of
bench/ppo.ts's timePPOSteps): generation, PM scoring (trunk + linear head read at the last token), the
reference's log-probs with the rollout policy's log-probs and values (full forwards), then training: K passes
over minibatches of M, clipped policy + 0.1 x clipped value loss, backward, clip_grad_norm_, AdamW step (as
src/rl/ppo-update.ts), on stand-in advantages (the work is what is timed)."""
import time

import torch
import torch.nn.functional as F


def masked_mean(x, m):
    return (x * m).sum() / m.sum().clamp(min=1)


def time_ppo_steps(policy, reference, pm, pm_head, value_head, lm_head, sample, shape, steps):
    """Mean seconds per phase over `steps` steps after one warm-up step (it allocates AdamW's state, the
    allocator's pools, BLAS buffers). `lm_head(model)` is a model's output embedding, `sample(prompts)` the
    (B, N) sampled tokens; `shape` is (B, P, N, K, M, V): prompts of P random tokens in [1, V)."""
    B, P, N, K, M, V = shape
    params = list(policy.parameters()) + list(value_head.parameters())
    opt = torch.optim.AdamW(params, lr=1e-5, weight_decay=0.0)

    def response_logits(model, seq, mask):
        hidden, _ = model.forward_hidden(seq, mask)  # (B, P+N, C)
        h = hidden[:, P - 1:P - 1 + N]  # (B, N, C): column P-1+t predicts response token t
        return F.linear(h, lm_head(model)), h

    times = {'generation': 0.0, 'scoring': 0.0, 'reference': 0.0, 'training': 0.0}
    for step in range(steps + 1):
        prompts = torch.randint(1, V, (B, P))
        t0 = time.perf_counter()
        with torch.no_grad():
            responses = sample(prompts)
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
            continue  # warm-up
        times['generation'] += (t1 - t0) / steps
        times['scoring'] += (t2 - t1) / steps
        times['reference'] += (t3 - t2) / steps
        times['training'] += (t4 - t3) / steps
    return dict(times, total=sum(times.values()))
