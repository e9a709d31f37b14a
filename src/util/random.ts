// Seeded random streams that give the same numbers on every machine (Math.random cannot be seeded).
// mulberry32 for shuffles and test data; mix32, the finaliser of splitmix32, is the core of the world's and
// the analyses' streams (src/world/rng.ts, src/eval/rng.ts), which add forks, normals and sampling.

/**
 * Uniforms in [0, 1) from a 32-bit seed.
 *
 * @example const random = mulberry32(7); random(); // the same number every run
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** splitmix32's output function: a well-mixed 32-bit value from a 32-bit state (one stream step is `state + 0x9e3779b9`). */
export function mix32(x: number): number {
  let z = x >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return (z ^ (z >>> 16)) >>> 0;
}
