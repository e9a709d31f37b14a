// Shared by the nn tests (families, hf, readout) and the transformers check scripts beside the fixtures: the
// folders and goldens written by test/fixtures/nn/gen_families.py.
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { loadSafetensors, type Tensor, tidy } from '../engine/index.ts';

/** Every family fixture folder (families/<name>/, each with <name>.golden.safetensors beside it). */
export const FAMILY_FIXTURES = [
  'smollm2',
  'qwen2',
  'qwen3',
  'llama3',
  'mistral',
  'pythia',
  'pythia-seq',
] as const;

export const familyFixture = (name: string): string =>
  fileURLToPath(new URL(`../../test/fixtures/nn/families/${name}`, import.meta.url));

export function golden(name: string): (key: string) => Tensor {
  const ref = loadSafetensors(familyFixture(`${name}.golden.safetensors`)).tensors;
  return (key) => {
    const t = ref[key];
    if (!t) throw new Error(`${name}.golden.safetensors has no '${key}'`);
    return t;
  };
}

export const maxDiff = (a: Tensor, b: Tensor): number => {
  assert.deepEqual([...a.shape], [...b.shape], 'shapes differ');
  return tidy(() => a.float().sub(b.float()).abs().max().item());
};
