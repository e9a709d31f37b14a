// Text the store can keep exactly. SQLite stores text as UTF-8, which cannot represent an unpaired
// UTF-16 surrogate (a JS string can hold one, e.g. from the JSON escape "\ud800"): better-sqlite3 writes
// it as the invalid bytes ED A0 80, which read back as three U+FFFD, so the text would come back altered.

import { loneSurrogateAt } from '../util/unicode.ts';

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
