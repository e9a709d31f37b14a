// mulberry32: a small, fast, well-mixed 32-bit PRNG, seeded by one integer, the same stream on every
// machine (Math.random cannot be seeded). Enough for shuffles and test data; the world and the analyses
// have their own streams with forks and normals (src/world/rng.ts, src/eval/rng.ts).

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
