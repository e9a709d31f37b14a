// How a dialogue is written for the model. hhkit's transcripts are HH-RLHF text ("\n\nHuman: …
// \n\nAssistant: …") everywhere in the pipeline; a format turns one into the text a model reads, cut into
// segments so that callers know which tokens are an Assistant reply (the SFT loss mask) and which are
// the template's own markup (encoded with special tokens matched, while the turns' text is not).
//
// Two formats: HH (the text as it is) and ChatML, the chat template of Qwen2/2.5/3 and SmolLM2-Instruct
// (transformers renders it with apply_chat_template; hhkit recognises the template instead of running
// Jinja): "<|im_start|>system\n…<|im_end|>\n<|im_start|>user\n…<|im_end|>\n<|im_start|>assistant\n…<|im_end|>\n",
// a prompt ending in the generation prompt "<|im_start|>assistant\n" (add_generation_prompt=True).
import { TokenizerError } from './errors.ts';
import { ASSISTANT_TURN, HUMAN_TURN } from './special.ts';

/** context: read, not trained on; reply: an Assistant turn's text; reply-end: what ends a reply (trained on). */
export type SegmentRole = 'context' | 'reply' | 'reply-end';

export interface Segment {
  text: string;
  role: SegmentRole;
  /** Written by the format (template markup): special-token strings in it are special tokens. */
  markup: boolean;
  /** Part of the system turn the format writes (ChatML's; HH text has none). */
  system?: boolean;
}

export interface DialogueTurn {
  speaker: 'human' | 'assistant';
  /** The turn's text after its marker, as written (HH keeps the space after the colon). */
  body: string;
}

/**
 * An HH transcript's turns (bodies exactly as written) and any text before the first marker. Turns start
 * where data/transcript.ts's parseTranscript starts them (a marker after "\n\n", or opening the text);
 * that one trims the space after the colon and cannot be imported here (data is tokenizer's sibling).
 */
export function parseTurns(transcript: string): { preamble: string; turns: DialogueTurn[] } {
  const marker = /\n\n(?:Human|Assistant):|^(?:Human|Assistant):/g;
  const turns: DialogueTurn[] = [];
  let preamble = transcript;
  let last: { speaker: DialogueTurn['speaker']; from: number } | null = null;
  for (const m of transcript.matchAll(marker)) {
    if (last) turns.push({ speaker: last.speaker, body: transcript.slice(last.from, m.index) });
    else preamble = transcript.slice(0, m.index);
    last = { speaker: m[0].endsWith('Human:') ? 'human' : 'assistant', from: m.index + m[0].length };
  }
  if (last) turns.push({ speaker: last.speaker, body: transcript.slice(last.from) });
  return { preamble, turns };
}

export interface DialogueFormat {
  readonly name: 'hh' | 'chatml';
  /**
   * An HH transcript as the model reads it, in segments (joined: the text). A transcript whose last turn
   * is an empty Assistant turn is a prompt: it ends where the model starts writing. Text without turn
   * markers is not a dialogue and comes back as one context segment, unchanged. With `continues`, more
   * turns follow in the same context (e.g. the HHH prompt before a dialogue in context distillation): the
   * last turn is written as an earlier one, not as the final one (Qwen3 marks only the final reply).
   */
  segments(transcript: string, opts?: { continues?: boolean }): Segment[];
  /** Token strings that end a reply (besides the tokenizer's eos ids), e.g. "<|im_end|>". */
  readonly stopTokens: readonly string[];
  /** Text that ends a reply wherever the model writes it, e.g. the next "\n\nHuman:". */
  readonly stopStrings: readonly string[];
  /** A decoded reply (stops removed) as the response of an HH transcript: ChatML's gets HH's leading space. */
  responseText(decoded: string): string;
  /**
   * Text this format rendered (decoded ids) back as an HH transcript: HH's is itself; ChatML's goes through
   * chatMLToHH, a turn cut at its start dropped.
   */
  transcriptOf(rendered: string): string;
}

/** The HH-RLHF text itself. A Human marker after a reply ends that reply. */
export const HH_FORMAT: DialogueFormat = {
  name: 'hh',
  segments(transcript) {
    const { preamble, turns } = parseTurns(transcript);
    const out: Segment[] = preamble ? [{ text: preamble, role: 'context', markup: false }] : [];
    let at = preamble.length;
    turns.forEach((turn, i) => {
      const afterReply = turns[i - 1]?.speaker === 'assistant';
      const start = transcript.indexOf(':', at) + 1; // the marker as written ("\n\nHuman:" or an opening "Human:")
      const marker = transcript.slice(at, start);
      at = start + turn.body.length;
      out.push({
        text: marker,
        role: turn.speaker === 'human' && afterReply ? 'reply-end' : 'context',
        markup: false,
      });
      if (turn.body)
        out.push({
          text: turn.body,
          role: turn.speaker === 'assistant' ? 'reply' : 'context',
          markup: false,
        });
    });
    return out;
  },
  stopTokens: [],
  stopStrings: [HUMAN_TURN],
  responseText: (decoded) => decoded,
  transcriptOf: (rendered) => rendered,
};

const IM_START = '<|im_start|>';
const IM_END = '<|im_end|>';

/**
 * ChatML. `defaultSystem` is the system message the template writes when the dialogue has none (Qwen2.5:
 * "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."; SmolLM2: "You are a helpful AI
 * assistant named SmolLM, …"; Qwen3: none). Text before the first turn (e.g. a prompt prepended for
 * context distillation) becomes the system message. Turn texts are trimmed, as chat messages carry no
 * HH spacing. With `thinkBlocks` (a template that has them: Qwen3) the dialogue is written in non-thinking
 * mode, as apply_chat_template(enable_thinking=False) writes it: the last Assistant turn — the generation
 * prompt or, in a whole transcript, the final reply — opens with an empty "<think>\n\n</think>\n\n"
 * (template markup, not trained on; earlier replies have none, as the template strips them), so a prompt's
 * rendering is a prefix of its transcript's, and replies answer at once instead of spending the token
 * budget thinking. A reply's leading "<think>…</think>" is still dropped from its response text (the PM,
 * the gold judge and the store see the answer only), and a reply still inside its think block when it
 * stopped has no answer.
 *
 * @example chatMLFormat().segments('\n\nHuman: hi\n\nAssistant:').map((s) => s.text).join('')
 * // '<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n'
 */
export function chatMLFormat(defaultSystem?: string, opts: { thinkBlocks?: boolean } = {}): DialogueFormat {
  return {
    name: 'chatml',
    segments(transcript, { continues = false } = {}) {
      const { preamble, turns } = parseTurns(transcript);
      if (turns.length === 0) return [{ text: transcript, role: 'context', markup: false }];
      const final = continues ? -1 : turns.length - 1; // the turn that gets Qwen3's empty think block
      const out: Segment[] = [];
      const markup = (text: string, role: SegmentRole = 'context') => out.push({ text, role, markup: true });
      const system = preamble.trim() || defaultSystem;
      if (system) {
        out.push({ text: `${IM_START}system\n`, role: 'context', markup: true, system: true });
        out.push({ text: system, role: 'context', markup: false, system: true });
        out.push({ text: `${IM_END}\n`, role: 'context', markup: true, system: true });
      }
      turns.forEach((turn, i) => {
        const content = turn.body.trim();
        if (turn.speaker === 'human') {
          markup(`${IM_START}user\n`);
          if (content) out.push({ text: content, role: 'context', markup: false });
          markup(`${IM_END}\n`);
          return;
        }
        markup(`${IM_START}assistant\n`);
        if (opts.thinkBlocks && i === final) markup(EMPTY_THINK_BLOCK);
        if (i === turns.length - 1 && !content) return; // the generation prompt
        if (content) out.push({ text: content, role: 'reply', markup: false });
        markup(IM_END, 'reply-end');
        markup('\n');
      });
      return out;
    },
    stopTokens: [IM_END],
    stopStrings: [],
    responseText: (decoded) => {
      const answer = opts.thinkBlocks ? withoutThinkBlock(decoded) : decoded;
      return answer ? ` ${answer.trimStart()}` : '';
    },
    transcriptOf: (rendered) => chatMLToHH(rendered, defaultSystem),
  };
}

/** What Qwen3's template writes before the final reply (and after the generation prompt without thinking). */
export const EMPTY_THINK_BLOCK = '<think>\n\n</think>\n\n';

// A reply without its leading think block (Qwen3: "<think>\nreasoning\n</think>\n\nanswer"); '' when the
// block never closed (the reply stopped while thinking).
function withoutThinkBlock(reply: string): string {
  const open = /^\s*<think>/.exec(reply);
  if (!open) return reply;
  const close = reply.indexOf('</think>', open[0].length);
  return close < 0 ? '' : reply.slice(close + '</think>'.length);
}

/**
 * A ChatML rendering back to an HH transcript (`defaultSystem` dropped, another system message kept as
 * the text before the first turn, an Assistant turn's leading think block dropped). The inverse of
 * chatMLFormat's segments for transcripts in HH's canonical spacing ("\n\nHuman: text", no surrounding blanks).
 *
 * @example chatMLToHH('<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n') // '\n\nHuman: hi\n\nAssistant:'
 */
export function chatMLToHH(text: string, defaultSystem?: string): string {
  const block = /<\|im_start\|>(\w+)\n([\s\S]*?)(?:<\|im_end\|>\n?|$)/g;
  let out = '';
  for (const m of text.matchAll(block)) {
    const [, role, content = ''] = m;
    if (role === 'system') {
      if (content !== defaultSystem) out = content + out;
    } else if (role === 'user') out += `${HUMAN_TURN} ${content}`;
    else if (role === 'assistant') {
      const answer = withoutThinkBlock(content).trimStart();
      out += answer ? `${ASSISTANT_TURN} ${answer}` : ASSISTANT_TURN;
    } else throw new TokenizerError(`chatMLToHH: role ${JSON.stringify(role)} has no HH turn`);
  }
  return out;
}

/**
 * The format a tokenizer_config.json `chat_template` asks for: ChatML when the template writes each
 * message as "<|im_start|>" + role + "\n" … "<|im_end|>" (Qwen2/2.5/3, SmolLM2-Instruct), its default
 * system message read from the template, and think blocks dropped from replies when the template has them
 * (Qwen3). Any other template is refused, naming `file`.
 *
 * @example formatOfChatTemplate(qwen25Template, 'Qwen2.5/tokenizer_config.json').name // 'chatml'
 */
export function formatOfChatTemplate(template: string, file: string): DialogueFormat {
  const perMessage = /'<\|im_start\|>'\s*\+\s*message(?:\[\s*['"]role['"]\s*\]|\.role)\s*\+\s*'\\n'/;
  if (
    !perMessage.test(template) ||
    !template.includes(IM_END) ||
    !template.includes("'<|im_start|>assistant\\n'")
  ) {
    throw new TokenizerError(
      `${file}: chat_template is not a ChatML template ("<|im_start|>" + role + "\\n" … "<|im_end|>", as Qwen2/2.5/3 ` +
        'and SmolLM2-Instruct write); hhkit renders only ChatML, not Llama 3, Mistral, Gemma or other templates (no Jinja engine)',
    );
  }
  const system = /'<\|im_start\|>system\\n((?:[^'\\<]|\\.)+)<\|im_end\|>\\n'/.exec(template)?.[1];
  return chatMLFormat(system === undefined ? undefined : unescapeJinja(system), {
    thinkBlocks: template.includes('<think>'),
  });
}

function unescapeJinja(literal: string): string {
  return literal.replace(/\\(.)/g, (_, ch: string) => ({ n: '\n', t: '\t' })[ch] ?? ch);
}
