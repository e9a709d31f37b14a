// What context distillation's teacher and student read with a chat template: one system turn each (the
// HHH prompt's preamble for the teacher, the template's default for the student), the same dialogue ids
// after it; in HH text, the HHH prompt's ids then the dialogue's, as before chat templates.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Tokenizer } from '../tokenizer/index.ts';
import {
  QWEN3_CHAT_TEMPLATE,
  QWEN25_CHAT_TEMPLATE,
  writeHfStyleTokenizer,
} from '../tokenizer/test-fixtures.ts';
import { hhhPrompt } from '../world/hhh.ts';
import { distillContexts, teacherPrefix, teacherPromptText } from './distill-context.ts';

const dir = mkdtempSync(join(tmpdir(), 'hhkit-distill-context-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const hhh = hhhPrompt();
const dialogues = Array.from(
  { length: 8 },
  (_, i) => `\n\nHuman: What is ${i} plus ${i + 2}?\n\nAssistant: It is ${2 * i + 2}.`,
);
mkdirSync(join(dir, 'chat'));
const path = writeHfStyleTokenizer(join(dir, 'chat'), [...dialogues, hhh], QWEN25_CHAT_TEMPLATE);
const hh = Tokenizer.fromFile(path);
const chat = hh.withChatTemplate();

const SYSTEM = '<|im_start|>system\n';
const QWEN_DEFAULT = 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.';
const systemTurns = (text: string): number => text.split(SYSTEM).length - 1;
const PREAMBLE = hhh.slice(0, hhh.indexOf('\n\n'));

test('chat template: the teacher reads one system turn (the HHH preamble), the student one (the default)', async () => {
  const ctx = await distillContexts(chat, hhh, dialogues, 64);
  assert.equal(await chat.decode(ctx.head), `${SYSTEM}${QWEN_DEFAULT}<|im_end|>\n`);
  for (const [i, example] of ctx.examples.entries()) {
    const teacher = await chat.decode([...teacherPrefix(ctx.hhh, 10_000), ...example]);
    assert.equal(systemTurns(teacher), 1, teacher);
    assert.ok(teacher.startsWith(`${SYSTEM}${PREAMBLE}`), teacher.slice(0, 80));
    assert.ok(!teacher.includes(QWEN_DEFAULT), 'no default system message beside the HHH prompt');
    // The student reads the dialogue exactly as every later stage renders it.
    const student = [...ctx.head, ...example];
    assert.deepEqual(student, await chat.encode(dialogues[i]!, { allowSpecial: false }));
    assert.equal(systemTurns(await chat.decode(student)), 1);
    assert.ok(teacher.endsWith(await chat.decode(example)));
  }
});

test('a template without a default system message (Qwen3): the student reads none, the teacher the HHH one', async () => {
  mkdirSync(join(dir, 'qwen3'));
  const qwen3 = Tokenizer.fromFile(
    writeHfStyleTokenizer(join(dir, 'qwen3'), [...dialogues, hhh], QWEN3_CHAT_TEMPLATE),
  ).withChatTemplate();
  const ctx = await distillContexts(qwen3, hhh, dialogues, 64);
  assert.deepEqual(ctx.head, []);
  const teacher = await qwen3.decode([...teacherPrefix(ctx.hhh, 10_000), ...ctx.examples[0]!]);
  assert.equal(systemTurns(teacher), 1, teacher);
  assert.ok(teacher.startsWith(`${SYSTEM}${PREAMBLE}`));
  // Non-thinking mode marks only the final reply: the HHH prompt's example replies, followed by the
  // dialogue, get no think block; the dialogue's own final reply does (the student reads it the same way).
  assert.equal(teacher.split('<think>').length - 1, 1, teacher);
  assert.ok(teacher.endsWith(await qwen3.decode(ctx.examples[0]!)));
  assert.ok((await qwen3.decode(ctx.examples[0]!)).includes('<think>\n\n</think>\n\nIt is 2.'));
});

test('chat template: cut to fit the context, the HHH prompt keeps its system turn', async () => {
  const ctx = await distillContexts(chat, hhh, dialogues, 64);
  const budget = ctx.hhh.systemTokens + 40;
  assert.ok(ctx.hhh.ids.length > budget, 'the HHH prompt is cut');
  const prefix = teacherPrefix(ctx.hhh, budget);
  assert.equal(prefix.length, budget);
  const teacher = await chat.decode([...prefix, ...ctx.examples[0]!]);
  assert.equal(systemTurns(teacher), 1, teacher);
  assert.ok(teacher.startsWith(`${SYSTEM}${PREAMBLE}`));
  // The teacher's sampling prompts (its gold score): HH text that renders with one system turn, HHH's.
  const text = await teacherPromptText(chat, ctx.hhh, budget);
  const prompt = '\n\nHuman: What is 3 plus 4?\n\nAssistant:';
  const rendered = await chat.decode(await chat.encode(text + prompt, { allowSpecial: false }));
  assert.equal(systemTurns(rendered), 1, rendered);
  assert.ok(rendered.startsWith(`${SYSTEM}${PREAMBLE}`));
  assert.ok(rendered.endsWith('<|im_start|>user\nWhat is 3 plus 4?<|im_end|>\n<|im_start|>assistant\n'));
});

test('HH text: no system turn; the teacher reads the HHH prompt ids then the dialogue ids, cut from the left', async () => {
  const ctx = await distillContexts(hh, hhh, dialogues, 64);
  assert.deepEqual(ctx.head, []);
  assert.equal(ctx.hhh.systemTokens, 0);
  assert.deepEqual(ctx.hhh.ids, await hh.encode(hhh, { allowSpecial: false }));
  assert.deepEqual(ctx.examples[0], await hh.encode(dialogues[0]!, { allowSpecial: false }));
  assert.deepEqual(teacherPrefix(ctx.hhh, 30), ctx.hhh.ids.slice(-30));
  assert.equal(await teacherPromptText(hh, ctx.hhh, 30), await hh.decode(ctx.hhh.ids.slice(-30)));
});

test('a dialogue that brings its own system message is refused with a chat template', async () => {
  await assert.rejects(
    distillContexts(chat, hhh, [dialogues[0]!, `Be terse.${dialogues[1]}`], 64),
    /^RangeError: distill: dialogue 1 brings its own system message/,
  );
});

test('chat template: the HHH prompt\'s "-----" separator lines are not written (the template ends turns); HH text keeps them', async () => {
  const ctx = await distillContexts(chat, hhh, dialogues, 64);
  const teacher = await chat.decode(teacherPrefix(ctx.hhh, 10_000));
  assert.ok(!teacher.includes('-----'), teacher);
  assert.ok(teacher.includes('<|im_end|>\n<|im_start|>user\n'), 'the examples are still separate turns');
  assert.ok(hhh.includes('\n\n-----\n\nHuman:'));
  const plain = await distillContexts(hh, hhh, dialogues, 64);
  assert.equal(await hh.decode(plain.hhh.ids), hhh);
});
