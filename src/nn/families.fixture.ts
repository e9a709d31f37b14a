// Shared by families.test.ts and hf.test.ts: the folders and goldens written by
// test/fixtures/nn/gen_families.py.
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { loadSafetensors, type Tensor, tidy } from '../engine/index.ts';

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
