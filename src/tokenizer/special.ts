/**
 * hhkit's special tokens and turn markers.
 *
 * The preference model's score is read at END_OF_CONTEXT appended to a transcript (as in Askell et al.
 * 2021 and Bai et al. 2022); END_OF_TEXT is GPT-2's EOS, kept under GPT-2's spelling so
 * a GPT-2 tokenizer.json provides it; PAD fills batches and is always masked out.
 */
export const END_OF_TEXT = '<|endoftext|>';
export const END_OF_CONTEXT = '<|endofcontext|>';
export const PAD = '<|pad|>';

/**
 * The HH-RLHF turn markers. A tokenizer trained by hhkit (with `turnMarkers`, the default) holds each as
 * ONE non-special token, so that (1) the prompt, which ends with "\n\nAssistant:", and the response
 * always meet at a token boundary: tokens(prompt) + tokens(response) = tokens(prompt + response), which
 * PPO and SFT masks rely on; (2) a sampler can stop on a single id at the next "\n\nHuman:".
 * Plain byte-level BPE cannot learn them: its pre-tokenizer splits them into "\n", "\n", "Human", ":".
 */
export const HUMAN_TURN = '\n\nHuman:';
export const ASSISTANT_TURN = '\n\nAssistant:';

/** Special tokens in the order hhkit appends them after the BPE vocabulary. */
export const SPECIAL_TOKENS: readonly string[] = [END_OF_TEXT, END_OF_CONTEXT, PAD];
export const TURN_MARKERS: readonly string[] = [HUMAN_TURN, ASSISTANT_TURN];
