// Deterministic freeing of native tensors. Every Tensor made inside `tidy(fn)` is freed when fn returns,
// except what fn returns (handed to the enclosing scope) and what was passed to `keep`. Tensors made
// outside any scope are freed by `dispose()`, by `using`, or, as a safety net, when V8 collects them.
import { native } from './native.ts';

/** What the scope machinery needs of a tensor (implemented by Tensor). */
export interface Tracked {
  handle: number;
  /** 0 = in a scope, 1 = registered with the finalizer, 2 = kept (registered, ignored by scopes). */
  tracking: number;
}

let current: Tracked[] | null = null;

const finalizer = new FinalizationRegistry<number>((handle) => {
  native.free(handle);
});

/** Called by the Tensor constructor. */
export function track(t: Tracked): void {
  if (current !== null) {
    t.tracking = 0;
    current.push(t);
  } else {
    t.tracking = 1;
    finalizer.register(t, t.handle, t);
  }
}

/** Frees a tensor's native memory now. Safe to call twice. */
export function release(t: Tracked): void {
  if (t.handle === 0) return;
  native.free(t.handle);
  if (t.tracking !== 0) finalizer.unregister(t);
  t.handle = 0;
}

/**
 * Exempts a tensor from every enclosing scope (e.g. a parameter or optimiser state made inside `tidy`).
 * It is then freed by `dispose()` or by the garbage collector.
 */
export function keep<T extends Tracked>(t: T): T {
  if (t.tracking === 0 && t.handle !== 0) {
    finalizer.register(t, t.handle, t);
  }
  t.tracking = 2;
  return t;
}

function isTracked(v: unknown): v is Tracked {
  return typeof v === 'object' && v !== null && 'handle' in v && 'tracking' in v;
}

// Collects the tensors a scope's result refers to (a tensor, or arrays / plain objects holding tensors).
function collect(value: unknown, out: Set<Tracked>, depth = 0): void {
  if (depth > 4 || value === null || typeof value !== 'object') return;
  if (isTracked(value)) {
    out.add(value);
    return;
  }
  if (Array.isArray(value)) {
    for (const v of value) collect(v, out, depth + 1);
  } else if (Object.getPrototypeOf(value) === Object.prototype || value instanceof Map) {
    const values = value instanceof Map ? value.values() : Object.values(value);
    for (const v of values) collect(v, out, depth + 1);
  }
}

function endScope(mine: Tracked[], parent: Tracked[] | null, result: unknown): void {
  const survivors = new Set<Tracked>();
  collect(result, survivors);
  const dead: number[] = [];
  for (const t of mine) {
    if (t.handle === 0 || t.tracking !== 0) continue;
    if (survivors.has(t)) {
      if (parent !== null) parent.push(t);
      else {
        t.tracking = 1;
        finalizer.register(t, t.handle, t);
      }
    } else {
      dead.push(t.handle);
      t.handle = 0;
    }
  }
  if (dead.length > 0) native.free_many(dead);
}

/**
 * Runs `fn` and frees every tensor it created, except the ones it returns.
 *
 * @example
 * const loss = tidy(() => model.forward(x).crossEntropy(y)); // intermediates are freed here
 */
export function tidy<T>(fn: () => T): T {
  const parent = current;
  const mine: Tracked[] = [];
  current = mine;
  let result: T | undefined;
  try {
    result = fn();
    if (result instanceof Promise) {
      throw new TypeError(
        'tidy() takes a synchronous function; await inside it would free tensors too early',
      );
    }
    return result;
  } finally {
    current = parent;
    endScope(mine, parent, result);
  }
}

/** Number of live native tensors (for leak tests and diagnostics). */
export function liveTensors(): number {
  return native.live_tensors();
}

/** Bytes held by live native tensors (views count their whole storage). */
export function liveBytes(): number {
  return native.live_bytes();
}
