// Text the store can keep exactly. SQLite stores text as UTF-8, which cannot represent an unpaired
// UTF-16 surrogate (a JS string can hold one, e.g. from the JSON escape "\ud800"): better-sqlite3 writes
// it as the invalid bytes ED A0 80, which read back as three U+FFFD, so the text would come back altered.

// With the u flag a surrogate pair is one code point, so this matches only unpaired halves.
const LONE_SURROGATE = /[\ud800-\udfff]/u;

/**
 * Where the first unpaired UTF-16 surrogate of `text` is (a UTF-16 index), or -1 when there is none.
 *
 * @example loneSurrogateAt('ok 😀') // -1
 * @example loneSurrogateAt('ab\ud800') // 2
 */
export function loneSurrogateAt(text: string): number {
  const m = LONE_SURROGATE.exec(text);
  return m ? m.index : -1;
}

/**
 * Why `text` cannot be stored exactly, naming it as `what`, or null when it can.
 *
 * @example unstorableText('\ud83d!', 'your message') // 'your message contains an unpaired UTF-16 surrogate (\\ud83d at character 0) …'
 */
export function unstorableText(text: string, what: string): string | null {
  const at = loneSurrogateAt(text);
  if (at < 0) return null;
  const unit = text.charCodeAt(at).toString(16);
  return `${what} contains an unpaired UTF-16 surrogate (\\u${unit} at character ${at}), which UTF-8 cannot store; send valid Unicode text`;
}
