// Module: the base of every layer. Parameters, buffers and submodules are registered explicitly, in
// construction order, so names and order are deterministic (torch.nn.Module without the __setattr__
// magic): `this.weight = this.param('weight', t)`, `this.attn = this.module('attn', new Attention(…))`.
import {
  cudaAvailable,
  type DType,
  getRngState,
  keep,
  manualSeed,
  noGrad,
  setRngState,
  type Tensor,
  tidy,
} from '../engine/index.ts';

/** A state dict that does not fit the module; the message lists every missing/unexpected/mis-shaped key. */
export class StateDictError extends Error {
  override name = 'StateDictError';
  constructor(
    message: string,
    readonly missing: string[] = [],
    readonly unexpected: string[] = [],
    readonly mismatched: string[] = [],
  ) {
    super(message);
  }
}

export interface LoadStateDictOptions {
  /** Error on missing or unexpected keys (default true). Shape mismatches are always errors. */
  strict?: boolean;
}

export interface LoadStateDictResult {
  missing: string[];
  unexpected: string[];
}

interface BufferEntry {
  tensor: Tensor;
  /** Part of stateDict() (a causal-mask cache is not). */
  persistent: boolean;
  /** Moves with the module but keeps its dtype when the module is converted (rotary inv_freq stays float32). */
  keepDtype: boolean;
}

const shapeText = (s: readonly number[]): string => `(${s.join(', ')})`;

export abstract class Module {
  /** Training mode: dropout active. Set with train()/eval(), which recurse into submodules. */
  training = true;
  private readonly ownParams = new Map<string, Tensor>();
  private readonly ownBuffers = new Map<string, BufferEntry>();
  private readonly children = new Map<string, Module>();

  /**
   * Registers a parameter: made a kept leaf with requiresGrad, so it outlives every `tidy` scope.
   *
   * @example this.weight = this.param('weight', zeros([out, inp]));
   */
  protected param(name: string, value: Tensor): Tensor {
    this.checkName(name);
    let t = value;
    if (!t.isLeaf) {
      t = value.detach();
      value.dispose();
    }
    keep(t).requiresGrad_(true);
    this.ownParams.set(name, t);
    return t;
  }

  /**
   * Registers a buffer (state that is not trained); non-persistent buffers are left out of stateDict().
   * A `keepDtype` buffer follows the module's device in to() but not its dtype.
   */
  protected buffer(name: string, value: Tensor, persistent = true, keepDtype = false): Tensor {
    this.checkName(name);
    this.ownBuffers.set(name, { tensor: keep(value), persistent, keepDtype });
    return value;
  }

  /** Registers a submodule under `name` (its parameters are named `name.…`). */
  protected module<M extends Module>(name: string, child: M): M {
    this.checkName(name);
    this.children.set(name, child);
    return child;
  }

  private checkName(name: string): void {
    if (name === '' || name.includes('.')) throw new TypeError(`invalid name '${name}' (empty or dotted)`);
    if (this.ownParams.has(name) || this.ownBuffers.has(name) || this.children.has(name)) {
      throw new TypeError(`'${name}' is already registered on ${this.constructor.name}`);
    }
  }

  /** Submodules with dotted names, depth first in registration order (the root is ''). */
  namedModules(prefix = ''): [string, Module][] {
    const out: [string, Module][] = [[prefix, this]];
    for (const [name, child] of this.children) {
      out.push(...child.namedModules(prefix ? `${prefix}.${name}` : name));
    }
    return out;
  }

  /** Parameters with dotted names, in registration order; a tensor shared by two modules is listed once. */
  namedParameters(): [string, Tensor][] {
    const seen = new Set<Tensor>();
    const out: [string, Tensor][] = [];
    for (const [path, m] of this.namedModules()) {
      for (const [name, t] of m.ownParams) {
        if (seen.has(t)) continue;
        seen.add(t);
        out.push([path ? `${path}.${name}` : name, t]);
      }
    }
    return out;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }

  /** Buffers with dotted names (persistent or not). */
  namedBuffers(): [string, Tensor][] {
    return this.namedBufferEntries().map(([name, e]) => [name, e.tensor]);
  }

  private namedBufferEntries(): [string, BufferEntry][] {
    const out: [string, BufferEntry][] = [];
    for (const [path, m] of this.namedModules()) {
      for (const [name, e] of m.ownBuffers) out.push([path ? `${path}.${name}` : name, e]);
    }
    return out;
  }

  /** Total number of parameter elements (tied weights counted once). */
  numParameters(): number {
    return this.parameters().reduce((n, t) => n + t.numel, 0);
  }

  train(mode = true): this {
    for (const [, m] of this.namedModules()) m.training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Clears every parameter's `.grad`. */
  zeroGrad(): void {
    for (const p of this.parameters()) p.grad = null;
  }

  /**
   * Named tensors to save: parameters then persistent buffers. The values are detached aliases of the
   * live tensors (same memory, no grad), which the caller may dispose.
   */
  stateDict(): Record<string, Tensor> {
    const sd: Record<string, Tensor> = {};
    for (const [name, t] of this.namedParameters()) sd[name] = t.detach();
    for (const [name, e] of this.namedBufferEntries()) if (e.persistent) sd[name] = e.tensor.detach();
    return sd;
  }

  /**
   * Copies values into the parameters and persistent buffers in place (under noGrad), converting dtype
   * and device. Shape mismatches always throw; missing/unexpected keys throw when `strict` (default).
   *
   * @example model.loadStateDict(loadSafetensors('w.safetensors').tensors);
   */
  loadStateDict(sd: Record<string, Tensor>, opts: LoadStateDictOptions = {}): LoadStateDictResult {
    const strict = opts.strict ?? true;
    const targets = new Map<string, Tensor>(this.namedParameters());
    for (const [name, e] of this.namedBufferEntries()) if (e.persistent) targets.set(name, e.tensor);
    const missing = [...targets.keys()].filter((k) => !(k in sd));
    const unexpected = Object.keys(sd).filter((k) => !targets.has(k));
    const mismatched: string[] = [];
    for (const [name, target] of targets) {
      const src = sd[name];
      if (src && shapeText(src.shape) !== shapeText(target.shape)) {
        mismatched.push(`${name}: checkpoint ${shapeText(src.shape)} vs model ${shapeText(target.shape)}`);
      }
    }
    const problems: string[] = [];
    if (mismatched.length) problems.push(`shape mismatch: ${mismatched.join('; ')}`);
    if (strict && missing.length) problems.push(`missing keys: ${missing.join(', ')}`);
    if (strict && unexpected.length) problems.push(`unexpected keys: ${unexpected.join(', ')}`);
    if (problems.length) {
      throw new StateDictError(
        `loadStateDict into ${this.constructor.name}: ${problems.join('. ')}`,
        missing,
        unexpected,
        mismatched,
      );
    }
    noGrad(() =>
      tidy(() => {
        for (const [name, target] of targets) {
          const src = sd[name];
          if (src) target.copy_(src);
        }
      }),
    );
    return { missing, unexpected };
  }

  /**
   * Moves/converts every parameter and buffer (new leaf tensors replace the old, which are disposed;
   * gradients are dropped). Create optimisers after this. Fields that pointed at a replaced tensor are
   * updated, so layers may keep `this.weight`.
   *
   * @example model.to({ device: 'cuda' });
   */
  to(target: DType | { dtype?: DType; device?: string }): this {
    const replaced = new Map<Tensor, Tensor>();
    const device = typeof target === 'string' ? undefined : target.device;
    const deviceOnly = device === undefined ? {} : { device };
    const convert = (t: Tensor, isParam: boolean, keepDtype = false): Tensor => {
      const done = replaced.get(t);
      if (done) return done;
      const moved = noGrad(() => t.to(keepDtype ? deviceOnly : target));
      const fresh = keep(isParam && moved.isLeaf ? moved : moved.detach());
      if (fresh !== moved) moved.dispose();
      if (isParam) fresh.requiresGrad_(true);
      replaced.set(t, fresh);
      return fresh;
    };
    for (const [, m] of this.namedModules()) {
      for (const [name, t] of m.ownParams) m.ownParams.set(name, convert(t, true));
      for (const [, e] of m.ownBuffers) e.tensor = convert(e.tensor, false, e.keepDtype);
    }
    // Refresh fields that held old tensors (e.g. this.weight), then free the old tensors.
    for (const [, m] of this.namedModules()) {
      const fields = m as unknown as Record<string, unknown>;
      for (const key of Object.keys(fields)) {
        const v = fields[key];
        if (v && typeof v === 'object' && replaced.has(v as Tensor)) fields[key] = replaced.get(v as Tensor);
      }
    }
    for (const [old, fresh] of replaced) if (old !== fresh) old.dispose();
    this.afterMove();
    return this;
  }

  /** Hook for modules holding derived tensors outside the registries (called after to()). */
  protected afterMove(): void {}
}

/**
 * `sd` with every key prefixed by `prefix.` (e.g. a head's state dict stored as `score.weight`).
 *
 * @example saveCheckpoint(dir, { model, extra: prefixKeys(head.stateDict(), 'score'), meta })
 */
export function prefixKeys(sd: Record<string, Tensor>, prefix: string): Record<string, Tensor> {
  return Object.fromEntries(Object.entries(sd).map(([k, v]) => [`${prefix}.${k}`, v]));
}

/**
 * The entries of `sd` under `prefix.`, with the prefix removed.
 *
 * @example head.loadStateDict(stripPrefix(loadCheckpoint(dir).extra, 'score'))
 */
export function stripPrefix(sd: Record<string, Tensor>, prefix: string): Record<string, Tensor> {
  const p = `${prefix}.`;
  return Object.fromEntries(
    Object.entries(sd)
      .filter(([k]) => k.startsWith(p))
      .map(([k, v]) => [k.slice(p.length), v]),
  );
}

/**
 * Runs `fn` (typically parameter initialisation) with the global generators seeded by `seed`, then puts
 * their previous states back, so seeding a model does not disturb the caller's random stream. Without a
 * seed, `fn` simply draws from the global generators.
 *
 * @example const layer = withSeed(7, () => new Linear(16, 4));
 */
export function withSeed<T>(seed: number | undefined, fn: () => T): T {
  if (seed === undefined) return fn();
  const devices = cudaAvailable() ? ['cpu', 'cuda'] : ['cpu'];
  const saved = devices.map((d) => getRngState(d));
  try {
    manualSeed(seed);
    return fn();
  } finally {
    devices.forEach((d, i) => {
      setRngState(saved[i]!, d);
      saved[i]!.dispose();
    });
  }
}
