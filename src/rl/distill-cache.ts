// The teacher's side of context distillation, computed once and cached on disk: for each training
// dialogue, at every position, the teacher's top-k next-token ids and log-probs plus the log of the
// remaining mass (one bucket for everything outside the top k), as Bai et al. 2022 §3 / Askell et al. 2021.
//   DIR/meta.json     { k, width, examples, lengths, key }
//   DIR/ids.bin       int32   (M, S, K)   S = width − 1 predicted positions per example
//   DIR/logprobs.bin  float32 (M, S, K)
//   DIR/rest.bin      float32 (M, S)
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { autocast, noGrad, type Tensor, tidy } from '../engine/index.ts';
import { leftPad } from '../nn/generate.ts';
import type { CausalLM } from '../nn/causal-lm.ts';
import { writeFileAtomicSync } from '../util/atomic.ts';

export interface TeacherCache {
  k: number;
  /** Tokens per example (the dialogue, truncated); S = width − 1 positions are predicted. */
  width: number;
  /** Dialogue tokens of each example. */
  examples: number[][];
  ids: Int32Array;
  logprobs: Float32Array;
  rest: Float32Array;
}

/** What identifies a cache: the teacher, the prefix and the data (a different key rebuilds it). */
export interface TeacherCacheKey {
  teacher: string;
  prefixTokens: number;
  k: number;
  width: number;
  examples: number;
  dataHash: string;
  /** 'bf16' when the teacher ran under bfloat16 autocast (absent: float32). */
  precision?: string;
}

/** A stable hash (FNV-1a, hex) of token lists, to tell cached data apart. */
export function hashTokens(rows: readonly (readonly number[])[]): string {
  let h = 0x811c9dc5;
  for (const row of rows) {
    for (const id of row) {
      h ^= id & 0xffff;
      h = Math.imul(h, 0x01000193) >>> 0;
      h ^= id >>> 16;
      h = Math.imul(h, 0x01000193) >>> 0;
    }
    h ^= 0xff;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
}

/**
 * Top-k log-probs and the log of the rest of the mass, from logits (..., V).
 *
 * @example const { ids, logprobs, rest } = topKWithRest(logits, 50); // (..., 50), (..., 50), (...)
 */
export function topKWithRest(logits: Tensor, k: number): { ids: Tensor; logprobs: Tensor; rest: Tensor } {
  const total = logits.logsumexp(-1, true); // (..., 1)
  const [top, ids] = logits.topk(k, -1);
  // The rest bucket by logsumexp over the non-top logits: log(1 − Σ p_top) without cancellation.
  const rest = logits.scatter(-1, ids, -1e30).logsumexp(-1, true).sub(total).squeeze(-1);
  return { ids, logprobs: top.sub(total), rest };
}

/**
 * Runs the teacher (prefix + dialogue) over every example in batches and writes the cache; reuses the
 * cache in `dir` when its key matches.
 *
 * @example const cache = buildTeacherCache(teacher, prefixIds, dialogues, { dir: 'runs/distill/teacher', k: 50, width: 64, key });
 */
export function buildTeacherCache(
  teacher: CausalLM,
  prefix: readonly number[],
  examples: number[][],
  opts: {
    dir: string;
    k: number;
    width: number;
    key: TeacherCacheKey;
    padId: number;
    batchSize?: number;
    /** 'bf16': the teacher's forward under bfloat16 autocast (the top-k and log-probs stay float32). */
    precision?: string;
    onBatch?: (done: number) => void;
  },
): TeacherCache {
  const cached = readTeacherCache(opts.dir, opts.key);
  if (cached) return cached;
  const { k, width } = opts;
  const S = width - 1;
  const M = examples.length;
  const ids = new Int32Array(M * S * k);
  const logprobs = new Float32Array(M * S * k);
  const rest = new Float32Array(M * S);
  const batchSize = opts.batchSize ?? 8;
  for (let start = 0; start < M; start += batchSize) {
    const rows = examples.slice(start, start + batchSize);
    noGrad(() =>
      tidy(() => {
        const { ids: input, mask } = leftPad(
          rows.map((r) => [...prefix, ...r]),
          opts.padId,
        );
        const W = input.size(1);
        const device = teacher.device; // padded on the CPU, run where the teacher's weights are
        const logits = autocast(
          { device, enabled: opts.precision === 'bf16' },
          () => teacher.forward(input.to({ device }), { attentionMask: mask.to({ device }) }).logits,
        ).float(); // (b, W, V)
        const out = topKWithRest(logits.narrow(1, W - width, width - 1), k); // the last `width` columns hold the dialogue
        const topIds = out.ids.to('int32').toTypedArray() as Int32Array; // (b, S, K)
        const topLogp = out.logprobs.toTypedArray() as Float32Array;
        const restLogp = out.rest.toTypedArray() as Float32Array; // (b, S)
        rows.forEach((row, b) => {
          // Row b's dialogue is right-aligned: its position j sits at column W − L + j, i.e. S − L + 1 + j here.
          const offset = width - row.length;
          for (let j = 0; j < row.length - 1; j++) {
            const src = b * S + offset + j;
            const dst = (start + b) * S + j;
            ids.set(topIds.subarray(src * k, src * k + k), dst * k);
            logprobs.set(topLogp.subarray(src * k, src * k + k), dst * k);
            rest[dst] = restLogp[src]!;
          }
        });
      }),
    );
    opts.onBatch?.(Math.min(M, start + batchSize));
  }
  const cache: TeacherCache = { k, width, examples, ids, logprobs, rest };
  writeTeacherCache(opts.dir, cache, opts.key);
  return cache;
}

function writeTeacherCache(dir: string, c: TeacherCache, key: TeacherCacheKey): void {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const bytes = (a: Int32Array | Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  writeFileAtomicSync(join(dir, 'ids.bin'), bytes(c.ids));
  writeFileAtomicSync(join(dir, 'logprobs.bin'), bytes(c.logprobs));
  writeFileAtomicSync(join(dir, 'rest.bin'), bytes(c.rest));
  // meta.json last: its presence marks a complete cache.
  writeFileAtomicSync(
    join(dir, 'meta.json'),
    JSON.stringify({ key, k: c.k, width: c.width, examples: c.examples }),
  );
}

/** The cache in `dir` if complete and made with `key`, else null. */
export function readTeacherCache(dir: string, key: TeacherCacheKey): TeacherCache | null {
  const metaPath = join(dir, 'meta.json');
  if (!existsSync(metaPath)) return null;
  const meta = JSON.parse(readFileSync(metaPath, 'utf8')) as {
    key: TeacherCacheKey;
    k: number;
    width: number;
    examples: number[][];
  };
  if (JSON.stringify(meta.key) !== JSON.stringify(key)) return null;
  const read = (name: string) => {
    const b = readFileSync(join(dir, name));
    return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);
  };
  return {
    k: meta.k,
    width: meta.width,
    examples: meta.examples,
    ids: new Int32Array(read('ids.bin')),
    logprobs: new Float32Array(read('logprobs.bin')),
    rest: new Float32Array(read('rest.bin')),
  };
}
