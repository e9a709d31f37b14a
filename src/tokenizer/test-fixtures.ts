// A tokenizer folder shaped like a real model's on the Hugging Face Hub (for tests): byte-level BPE whose
// pre-tokenizer splits digits first (SmolLM2's and Qwen's do), its own special tokens and none of hhkit's —
// no "\n\nHuman:"/"\n\nAssistant:" tokens, no "<|endoftext|>", no "<|endofcontext|>", no pad — the eos
// named only by tokenizer_config.json and the stop ids by generation_config.json, as HF folders do.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from './tokenizer.ts';

/** Qwen2.5-Instruct's chat template (transformers' tokenizer_config.json), without its tool-call branches. */
export const QWEN25_CHAT_TEMPLATE =
  "{%- if messages[0]['role'] == 'system' %}\n    {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}\n" +
  "{%- else %}\n    {{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}\n{%- endif %}\n" +
  '{%- for message in messages %}\n    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant") %}\n' +
  "        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}\n    {%- endif %}\n{%- endfor %}\n" +
  "{%- if add_generation_prompt %}\n    {{- '<|im_start|>assistant\\n' }}\n{%- endif %}\n";

/**
 * Qwen3's chat template (transformers' tokenizer_config.json) without its tool branches: no default system
 * message; think blocks on the replies after the last user turn; with enable_thinking false, the
 * generation prompt closes an empty think block.
 */
export const QWEN3_CHAT_TEMPLATE =
  "{%- if messages[0].role == 'system' %}\n    {{- '<|im_start|>system\\n' + messages[0].content + '<|im_end|>\\n' }}\n{%- endif %}\n" +
  '{%- set ns = namespace(last_query_index=messages|length - 1) %}\n' +
  "{%- for message in messages[::-1] %}\n    {%- if message.role == 'user' and ns.last_query_index == messages|length - 1 %}\n" +
  '        {%- set ns.last_query_index = messages|length - 1 - loop.index0 %}\n    {%- endif %}\n{%- endfor %}\n' +
  '{%- for message in messages %}\n    {%- set content = message.content %}\n' +
  '    {%- if (message.role == "user") or (message.role == "system" and not loop.first) %}\n' +
  "        {{- '<|im_start|>' + message.role + '\\n' + content + '<|im_end|>' + '\\n' }}\n" +
  '    {%- elif message.role == "assistant" %}\n        {%- set reasoning_content = \'\' %}\n' +
  "        {%- if '</think>' in content %}\n" +
  "            {%- set reasoning_content = content.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') %}\n" +
  "            {%- set content = content.split('</think>')[-1].lstrip('\\n') %}\n        {%- endif %}\n" +
  '        {%- if loop.index0 > ns.last_query_index and (loop.last or reasoning_content) %}\n' +
  "            {{- '<|im_start|>' + message.role + '\\n<think>\\n' + reasoning_content.strip('\\n') + '\\n</think>\\n\\n' + content.lstrip('\\n') }}\n" +
  "        {%- else %}\n            {{- '<|im_start|>' + message.role + '\\n' + content }}\n        {%- endif %}\n" +
  "        {{- '<|im_end|>\\n' }}\n    {%- endif %}\n{%- endfor %}\n" +
  "{%- if add_generation_prompt %}\n    {{- '<|im_start|>assistant\\n' }}\n" +
  "    {%- if enable_thinking is defined and enable_thinking is false %}\n        {{- '<think>\\n\\n</think>\\n\\n' }}\n    {%- endif %}\n{%- endif %}\n";

/** Llama 3's template (not ChatML): hhkit must refuse it by name. */
export const LLAMA3_CHAT_TEMPLATE =
  "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";

export const HF_EOS = '<|end_of_text|>';
export const HF_SPECIALS = [HF_EOS, '<|im_start|>', '<|im_end|>'] as const;

/**
 * Writes tokenizer.json, tokenizer_config.json and generation_config.json into `dir`: a BPE trained on
 * `texts` without turn markers, its three special ids renamed to HF_SPECIALS (eos "<|end_of_text|>",
 * generation also stopping at "<|im_end|>"), with `chatTemplate` when given. Returns the tokenizer.json path.
 */
export function writeHfStyleTokenizer(dir: string, texts: readonly string[], chatTemplate?: string): string {
  const trained = JSON.parse(
    Tokenizer.train(texts, { vocabSize: 400, turnMarkers: false }).toJSONString(),
  ) as {
    added_tokens: { id: number; content: string }[];
    pre_tokenizer: unknown;
    model: { vocab: Record<string, number> };
  };
  const vocab: Record<string, number> = {};
  const renamed = new Map(trained.added_tokens.map((t, i) => [t.content, HF_SPECIALS[i]!]));
  for (const [token, id] of Object.entries(trained.model.vocab)) vocab[renamed.get(token) ?? token] = id;
  const json = {
    ...trained,
    added_tokens: trained.added_tokens.map((t, i) => ({ ...t, content: HF_SPECIALS[i]! })),
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [{ type: 'Digits', individual_digits: true }, trained.pre_tokenizer],
    },
    model: { ...trained.model, vocab },
  };
  const path = join(dir, 'tokenizer.json');
  writeFileSync(path, JSON.stringify(json));
  const id = (token: string) => vocab[token]!;
  writeFileSync(
    join(dir, 'tokenizer_config.json'),
    JSON.stringify({
      add_prefix_space: false,
      bos_token: null,
      eos_token: HF_EOS,
      pad_token: null,
      model_max_length: 8192,
      tokenizer_class: 'GPT2Tokenizer',
      ...(chatTemplate ? { chat_template: chatTemplate } : {}),
    }),
  );
  writeFileSync(
    join(dir, 'generation_config.json'),
    JSON.stringify({ eos_token_id: [id(HF_EOS), id('<|im_end|>')], transformers_version: '4.46.0' }),
  );
  return path;
}
