/**
 * Cutting long text into pieces that tokenize exactly as the whole.
 *
 * Why: the native library encodes one long string about 2× slower per byte than ~8k-character pieces,
 * and a batch of pieces runs on all cores. It is also how training bounds the memory of one native
 * pre-tokenizer call.
 */

/**
 * A cut point: right after a non-whitespace character that is followed by "\n", or by a space and a
 * non-whitespace character. Under GPT-2's pre-tokenizer regex
 * ('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+) no word contains a
 * non-whitespace character followed by whitespace, so a word always ends there, and the next word's match
 * depends only on the text after the cut. Not after a "\n": a whitespace run at the very end of a string
 * is one word, but in mid-text its last character is split off.
 */
const CUT = /\S(?=\n| \S)/gu;

/**
 * Splits text into pieces of at least `chunkChars` characters (the last may be shorter) at cut points
 * where GPT-2's pre-tokenizer has a word boundary anyway; joined, the pieces are the text.
 *
 * @example [...safeChunks('ab cd\nef', 1)] // ['ab', ' cd', '\nef']
 */
export function* safeChunks(text: string, chunkChars: number): Generator<string> {
  let start = 0;
  const cut = new RegExp(CUT.source, CUT.flags);
  while (text.length - start > chunkChars) {
    cut.lastIndex = start + chunkChars - 1;
    const match = cut.exec(text);
    if (!match) break;
    const end = match.index + match[0].length;
    yield text.slice(start, end);
    start = end;
  }
  yield text.slice(start);
}

/**
 * Whether a tokenizer.json's pipeline keeps {@link safeChunks} exact: no normalizer, GPT-2's ByteLevel
 * regex pre-tokenizer, and added tokens that are matched literally and contain no cut point (so a cut
 * never falls inside one). True for hhkit-trained and GPT-2 tokenizers.
 *
 * @example canChunk(JSON.parse(readFileSync('tokenizer.json', 'utf8')))
 */
export function canChunk(tokenizerJSON: Record<string, unknown>): boolean {
  const preTokenizer = tokenizerJSON['pre_tokenizer'];
  const addedTokens = tokenizerJSON['added_tokens'] ?? [];
  if (tokenizerJSON['normalizer'] != null || !isRecord(preTokenizer) || !Array.isArray(addedTokens))
    return false;
  if (preTokenizer['type'] !== 'ByteLevel' || preTokenizer['use_regex'] === false) return false;
  return addedTokens.every(
    (token) =>
      isRecord(token) &&
      typeof token['content'] === 'string' &&
      !new RegExp(CUT.source, 'u').test(token['content']) &&
      token['lstrip'] !== true &&
      token['rstrip'] !== true &&
      token['single_word'] !== true,
  );
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
