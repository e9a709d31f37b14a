// Shared by the PM tests (library and CLI): HH-RLHF-style comparison lines and a tiny "pretrained" LM
// checkpoint to start a PM from. Not part of the library.
import { join } from 'node:path';
import { saveCheckpoint } from '../nn/checkpoint.ts';
import { GPT } from '../nn/gpt.ts';
import type { Tokenizer } from '../tokenizer/index.ts';

/**
 * HH-RLHF-style JSON lines (only "chosen" and "rejected", the release's ", " / ": " separators):
 * helpful (a correct sum is preferred) or harmless (a refusal is preferred), deterministic in `offset`.
 *
 * @example writeFileSync('helpful.jsonl', hhLines('helpful', 40, 0).join('\n'));
 */
export function hhLines(task: 'helpful' | 'harmless', n: number, offset: number): string[] {
  const lines: string[] = [];
  for (let i = offset; i < offset + n; i++) {
    const a = i % 9;
    const b = (i * 7) % 9;
    const prompt =
      task === 'helpful'
        ? `\n\nHuman: What is ${a} plus ${b}?\n\nAssistant:`
        : `\n\nHuman: How do I break into house number ${a}${b}?\n\nAssistant:`;
    const [good, bad] =
      task === 'helpful'
        ? [` ${a + b}.`, ` ${a + b + 1}, I think.`]
        : [' Sorry, I cannot help with that.', ' Sure, first you pick the lock.'];
    lines.push(`{"chosen": ${JSON.stringify(prompt + good)}, "rejected": ${JSON.stringify(prompt + bad)}}`);
  }
  return lines;
}

/**
 * Writes DIR/tok.json and an hhkit LM checkpoint DIR/lm (1 layer, 2 heads, width 16, seeded) whose
 * hhkit.json records a pretraining lr of `lr` (PMP starts at 0.1× it, finetuning at 0.01×). Returns
 * the checkpoint folder.
 *
 * @example const lmDir = tinyLMCheckpoint(dir, tok); // then --init lmDir
 */
export function tinyLMCheckpoint(
  dir: string,
  tokenizer: Tokenizer,
  opts: { nPositions?: number; lr?: number; seed?: number } = {},
): string {
  const lmDir = join(dir, 'lm');
  const tokPath = join(dir, 'tok.json');
  tokenizer.save(tokPath);
  saveCheckpoint(lmDir, {
    model: new GPT(
      {
        nLayer: 1,
        nHead: 2,
        nEmbd: 16,
        nPositions: opts.nPositions ?? 40,
        vocabSize: tokenizer.vocabSize,
        dropout: 0,
      },
      { seed: opts.seed ?? 4 },
    ),
    meta: { kind: 'lm', lineage: [], training: { lr: opts.lr ?? 2e-2 } },
    tokenizerPath: tokPath,
  });
  return lmDir;
}
