// A user's tokenizer (Hugging Face folder, none of hhkit's special tokens): eos, pad and stops come from
// tokenizer_config.json / generation_config.json, turns are found in the text, and a ChatML chat template
// renders HH transcripts.
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { chatMLFormat, chatMLToHH, HH_FORMAT, HUMAN_TURN, Tokenizer, TokenizerError } from './index.ts';
import {
  HF_EOS,
  LLAMA3_CHAT_TEMPLATE,
  QWEN3_CHAT_TEMPLATE,
  QWEN25_CHAT_TEMPLATE,
  writeHfStyleTokenizer,
} from './test-fixtures.ts';

const dir = mkdtempSync(join(tmpdir(), 'hhkit-hf-tok-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const dialogues = Array.from(
  { length: 40 },
  (_, i) =>
    `\n\nHuman: What is ${i} plus ${i + 1}?\n\nAssistant: It is ${2 * i + 1}.\n\nHuman: Thanks!\n\nAssistant: You are welcome.`,
);
const base = join(dir, 'base');
const chat = join(dir, 'chat');
mkdirSync(base);
mkdirSync(chat);
const basePath = writeHfStyleTokenizer(base, dialogues);
const chatPath = writeHfStyleTokenizer(chat, dialogues, QWEN25_CHAT_TEMPLATE);

describe('a Hugging Face tokenizer folder without hhkit tokens', () => {
  const tok = Tokenizer.fromFile(basePath);
  const eos = tok.tokenToId(HF_EOS)!;
  const imEnd = tok.tokenToId('<|im_end|>')!;

  it('takes eos from tokenizer_config.json, pad and end-of-context from eos, stops from generation_config.json', () => {
    assert.equal(tok.tokenToId('<|endoftext|>'), undefined);
    assert.equal(tok.humanTurnId, undefined);
    assert.equal(tok.eosId, eos);
    assert.equal(tok.padId, eos);
    assert.equal(tok.endOfContextId, eos);
    const stops = tok.generationStops();
    assert.deepEqual(stops.stopIds, [eos, imEnd]);
    assert.deepEqual(stops.stopStrings, [HUMAN_TURN]);
  });

  it('without the companion files names the tokenizer file and what is missing', () => {
    const bare = join(dir, 'bare');
    mkdirSync(bare);
    copyFileSync(basePath, join(bare, 'tokenizer.json'));
    assert.throws(
      () => Tokenizer.fromFile(join(bare, 'tokenizer.json')).eosId,
      (e: Error) =>
        e instanceof TokenizerError &&
        e.message.includes(join(bare, 'tokenizer.json')) &&
        e.message.includes('eos_token'),
    );
    writeFileSync(join(bare, 'tokenizer_config.json'), JSON.stringify({ eos_token: '</s>' }));
    assert.throws(
      () => Tokenizer.fromFile(join(bare, 'tokenizer.json')).eosId,
      /has no token "<\/s>", which eos_token of .*tokenizer_config\.json names/,
    );
  });

  it('finds the turns in the text: reply tokens spell the reply, the next "\\n\\nHuman:" ends it', async () => {
    const text =
      '\n\nHuman: What is 3 plus 4?\n\nAssistant: It is 7.\n\nHuman: Thanks!\n\nAssistant: You are welcome.';
    const [{ ids, roles }] = (await tok.encodeDialogues([text])) as [{ ids: number[]; roles: string[] }];
    assert.deepEqual(ids, await tok.encode(text), 'segments meet where whole-text encoding splits anyway');
    const pick = async (role: string) => tok.decode(ids.filter((_, i) => roles[i] === role));
    assert.equal(await pick('reply'), ' It is 7. You are welcome.');
    assert.equal(await pick('reply-end'), HUMAN_TURN);
    assert.ok(ids.filter((_, i) => roles[i] === 'reply-end').length > 1, 'the marker is several tokens here');
  });

  it('cuts a reply where several tokens spell "\\n\\nHuman:"', async () => {
    const sampled = await tok.encode(' It is 7.\n\nHuman: and more');
    assert.deepEqual(await tok.decodeReplies([sampled, [...(await tok.encode(' Yes.')), eos]]), [
      ' It is 7.',
      ' Yes.',
    ]);
    assert.equal(tok.tokenText(tok.tokenToId('Ċ')!), '\n');
  });

  it('saves its companion files beside tokenizer.json', () => {
    const out = join(dir, 'saved');
    mkdirSync(out);
    tok.save(join(out, 'tokenizer.json'));
    assert.ok(
      existsSync(join(out, 'tokenizer_config.json')) && existsSync(join(out, 'generation_config.json')),
    );
    assert.equal(Tokenizer.fromFile(join(out, 'tokenizer.json')).eosId, eos);
  });
});

describe('--chat-template (ChatML)', () => {
  const hh = Tokenizer.fromFile(chatPath);
  const tok = hh.withChatTemplate();
  const system = 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.';

  it('renders an HH prompt as Qwen2.5 does with add_generation_prompt, and back', () => {
    const prompt =
      '\n\nHuman: What is 3 plus 4?\n\nAssistant: It is 7.\n\nHuman: And 5 plus 5?\n\nAssistant:';
    const text = tok.format
      .segments(prompt)
      .map((s) => s.text)
      .join('');
    assert.equal(
      text,
      `<|im_start|>system\n${system}<|im_end|>\n<|im_start|>user\nWhat is 3 plus 4?<|im_end|>\n` +
        '<|im_start|>assistant\nIt is 7.<|im_end|>\n<|im_start|>user\nAnd 5 plus 5?<|im_end|>\n<|im_start|>assistant\n',
    );
    assert.equal(chatMLToHH(text, system), prompt);
    for (const d of dialogues) {
      const rendered = chatMLFormat(system)
        .segments(d)
        .map((s) => s.text)
        .join('');
      assert.equal(chatMLToHH(rendered, system), d);
    }
    assert.equal(
      HH_FORMAT.segments(prompt)
        .map((s) => s.text)
        .join(''),
      prompt,
    );
  });

  it('encodes markup as special tokens and a user\'s "<|im_start|>" as text; stops at <|im_end|>', async () => {
    const imStart = tok.tokenToId('<|im_start|>')!;
    const imEnd = tok.tokenToId('<|im_end|>')!;
    const ids = await tok.encode('\n\nHuman: say <|im_start|>\n\nAssistant:', { allowSpecial: false });
    assert.equal(ids.filter((id) => id === imStart).length, 3, 'system, user and assistant headers only');
    assert.equal(ids.at(-1), tok.tokenToId('Ċ'));
    assert.deepEqual(tok.generationStops().stopStrings, []);
    assert.ok(tok.generationStops().stopIds.includes(imEnd));
    assert.deepEqual(await tok.decodeReplies([[...(await hh.encode('It is 7.')), imEnd]]), [' It is 7.']);
    const [{ roles, ids: full }] = (await tok.encodeDialogues(['\n\nHuman: hi\n\nAssistant: hello'])) as [
      { ids: number[]; roles: string[] },
    ];
    assert.equal(await tok.decode(full.filter((_, i) => roles[i] === 'reply')), 'hello');
    assert.deepEqual(
      full.filter((_, i) => roles[i] === 'reply-end'),
      [imEnd],
    );
  });

  it("Qwen3's template: no default system turn, non-thinking mode (an empty think block opens the last Assistant turn); a reply's think block is not part of its response", async () => {
    const qwen3 = join(dir, 'qwen3');
    mkdirSync(qwen3);
    const q3 = Tokenizer.fromFile(
      writeHfStyleTokenizer(qwen3, dialogues, QWEN3_CHAT_TEMPLATE),
    ).withChatTemplate();
    const imEnd = q3.tokenToId('<|im_end|>')!;
    const render = (t: string) =>
      q3.format
        .segments(t)
        .map((s) => s.text)
        .join('');
    // apply_chat_template(..., add_generation_prompt=True, enable_thinking=False)
    const prompt = '\n\nHuman: hi\n\nAssistant: hello\n\nHuman: and 3 plus 4?\n\nAssistant:';
    const rendered =
      '<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nhello<|im_end|>\n' +
      '<|im_start|>user\nand 3 plus 4?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n';
    assert.equal(render(prompt), rendered);
    // The whole transcript as apply_chat_template writes it: the final reply after the empty block (earlier
    // replies without one), so the prompt's rendering is a prefix of the transcript's.
    assert.equal(render(`${prompt} It is 7.`), `${rendered}It is 7.<|im_end|>\n`);
    assert.equal(chatMLToHH(rendered), prompt);
    assert.equal(chatMLToHH(`${rendered}It is 7.<|im_end|>\n`), `${prompt} It is 7.`);
    // The empty block is markup the model reads, not a reply it is trained to write (both replies are).
    const [{ roles, ids }] = (await q3.encodeDialogues([`${prompt} It is 7.`])) as [
      { ids: number[]; roles: string[] },
    ];
    assert.equal(await q3.decode(ids.filter((_, i) => roles[i] === 'reply')), 'helloIt is 7.');
    const reply = async (text: string, stopped = true) => [
      ...(await hh.encode(text)),
      ...(stopped ? [imEnd] : []),
    ];
    assert.deepEqual(
      await q3.decodeReplies([
        await reply('<think>\nThree and four make seven.\n</think>\n\nIt is 7.'),
        await reply('<think>\n\n</think>\n\nIt is 7.'), // the empty block of enable_thinking=False
        await reply('It is 7.'),
        await reply('<think>\nThree and four', false), // cut off while thinking: no answer
      ]),
      [' It is 7.', ' It is 7.', ' It is 7.', ''],
    );
    // A template without think blocks (Qwen2.5) leaves the text alone.
    assert.deepEqual(await tok.decodeReplies([await reply('<think>x</think> It is 7.')]), [
      ' <think>x</think> It is 7.',
    ]);
  });

  it('refuses a missing or non-ChatML template, naming tokenizer_config.json', () => {
    assert.throws(
      () => Tokenizer.fromFile(basePath).withChatTemplate(),
      /tokenizer_config\.json: has no "chat_template"/,
    );
    const llama = join(dir, 'llama3');
    mkdirSync(llama);
    writeHfStyleTokenizer(llama, dialogues, LLAMA3_CHAT_TEMPLATE);
    assert.throws(
      () => Tokenizer.fromFile(join(llama, 'tokenizer.json')).withChatTemplate(),
      (e: Error) =>
        e.message.startsWith(join(llama, 'tokenizer_config.json')) && /not a ChatML template/.test(e.message),
    );
  });
});
