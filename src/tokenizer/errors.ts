/** A tokenizer.json (or a file beside it) that cannot be used, or a token the tokenizer lacks; the message says which. */
export class TokenizerError extends Error {
  override name = 'TokenizerError';
}
