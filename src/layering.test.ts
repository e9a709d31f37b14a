// The import rules of src/README.md, checked: every library file's relative imports point down the layering
// (tests and test fixtures may reach further to build what they check), and nothing outside src/nn names a
// model family's file.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { test } from 'node:test';

const src = dirname(new URL(import.meta.url).pathname);

/** eval is two layers in one folder (src/README.md, 6 and 8): its statistics, and its model-level files. */
const evalStats = new Set([
  'calibration',
  'elo',
  'fit',
  'intervals',
  'ood',
  'outlier-exposure',
  'rng',
  'nlp-data',
  'student',
]);
const layerOf = (file: string): string => {
  const [folder, name] = file.split(sep);
  if (name === undefined) return 'root';
  if (folder === 'eval') return evalStats.has(name.replace(/\.ts$/, '')) ? 'eval-stats' : 'eval';
  return folder!;
};

const below: Record<string, string[]> = {
  util: [],
  engine: ['util'],
  tokenizer: ['util'],
  data: ['util'],
  nn: ['engine', 'util'],
  train: ['nn', 'data', 'tokenizer', 'engine', 'util'],
  'eval-stats': ['data', 'engine', 'util'],
  pm: ['train', 'nn', 'eval-stats', 'data', 'tokenizer', 'engine', 'util'],
  rl: ['train', 'nn', 'eval-stats', 'data', 'tokenizer', 'engine', 'util'],
  world: ['data', 'tokenizer', 'util'],
  store: ['data', 'tokenizer', 'util'],
  // Model-level evaluations read the world's judge and (elo-data) the store: src/README.md says so.
  eval: ['eval-stats', 'nn', 'world', 'store', 'data', 'tokenizer', 'engine', 'util'],
  online: [
    'pm',
    'rl',
    'eval',
    'eval-stats',
    'train',
    'store',
    'world',
    'nn',
    'data',
    'tokenizer',
    'engine',
    'util',
  ],
};
const shells = new Set(['server', 'report', 'cli', 'root']);
const families = /^nn\/(gpt|llama|gpt-neox)\.ts$/;

function libraryFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return libraryFiles(path);
    const testOnly = /\.(test|fuzz\.test|fixture)\.ts$/.test(e.name) || e.name === 'test-fixtures.ts';
    return e.name.endsWith('.ts') && !testOnly ? [relative(src, path)] : [];
  });
}

test('imports follow src/README.md: down the layers only, and no stage outside nn names a model family', () => {
  const files = libraryFiles(src);
  assert.ok(files.length > 100, `found ${files.length} library files`);
  const broken: string[] = [];
  for (const file of files) {
    const from = layerOf(file);
    const text = readFileSync(join(src, file), 'utf8');
    for (const m of text.matchAll(/^(?:import|export)\b[^;]*?from '(\.{1,2}\/[^']+)'/gms)) {
      const target = relative(src, join(src, dirname(file), m[1]!));
      const to = layerOf(target);
      if (target.startsWith('..')) broken.push(`${file}: imports ${m[1]} from outside src`);
      else if (to !== from && !shells.has(from) && !below[from]?.includes(to))
        broken.push(`${file} (${from}) imports ${target} (${to})`);
      if (from !== 'nn' && families.test(target.split(sep).join('/')))
        broken.push(`${file} names a model family: ${target}`);
    }
  }
  assert.deepEqual(broken, []);
});
