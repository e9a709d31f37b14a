// Shared by the train tests: a tiny, learnable transcript corpus and a tokenizer trained on it.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tokenizer } from '../tokenizer/index.ts';
import { type LMTrainConfig, resolveLMTrainConfig } from './config.ts';

/** `n` arithmetic dialogues (deterministic): short, regular, so a tiny GPT's loss falls fast. */
export function arithmeticTranscripts(n: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const a = i % 10;
    const b = Math.floor(i / 10) % 10;
    out.push(`\n\nHuman: What is ${a} plus ${b}?\n\nAssistant: ${a} plus ${b} is ${a + b}.`);
  }
  return out;
}

export interface TinyCorpus {
  dir: string;
  /** corpus.jsonl, one {"text": …} per line */
  path: string;
  texts: string[];
  tokenizer: Tokenizer;
}

/** Writes `n` transcripts as JSONL into a fresh temp folder, with a tokenizer trained on them. */
export function tinyCorpus(n = 400, extraLines: string[] = []): TinyCorpus {
  const dir = mkdtempSync(join(tmpdir(), 'hhkit-train-'));
  const texts = arithmeticTranscripts(n);
  const path = join(dir, 'corpus.jsonl');
  writeFileSync(path, [...texts.map((text) => JSON.stringify({ text })), ...extraLines].join('\n') + '\n');
  const tokenizer = Tokenizer.train(texts, { vocabSize: 300 });
  return { dir, path, texts, tokenizer };
}

/** A GPT small enough for a test to take a few dozen steps in seconds on one thread. */
export function tinyConfig(corpus: TinyCorpus, overrides: Record<string, unknown> = {}): LMTrainConfig {
  return resolveLMTrainConfig({
    data: corpus.path,
    out: join(corpus.dir, 'run'),
    blockSize: 32,
    nLayer: 1,
    nHead: 2,
    nEmbd: 32,
    batchSize: 8,
    steps: 20,
    lr: 3e-3,
    minLr: 3e-4,
    warmupSteps: 2,
    evalEvery: 10,
    evalBatches: 2,
    checkpointEvery: 10,
    evalFraction: 0.1,
    ...overrides,
  });
}
