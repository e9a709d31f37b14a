// Unpaired UTF-16 surrogates: a JS string can hold one (from a JSON escape such as "\ud800"), but UTF-8 —
// files, SQLite, the tokenizers — cannot represent it, so text holding one comes back altered (U+FFFD)
// from wherever it is written. Readers refuse such lines, the store refuses such text.

// With the u flag a surrogate pair is one code point, so this matches only unpaired halves.
const LONE_SURROGATE = /[\ud800-\udfff]/u;
// Valid UTF-8 cannot encode a surrogate, so in text decoded from UTF-8 one can only come from an escape.
const SURROGATE_ESCAPE = /\\u[dD][89a-fA-F]/;

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
 * Whether JSON text decoded from UTF-8 can parse to a string with an unpaired surrogate (it holds a
 * \uD800–\uDFFF escape): a cheap test before scanning every parsed string.
 *
 * @example mayHoldLoneSurrogate('{"a": "\\ud800"}') // true
 */
export function mayHoldLoneSurrogate(jsonText: string): boolean {
  return SURROGATE_ESCAPE.test(jsonText);
}

/**
 * Whether any string in a parsed JSON value (keys included, at any depth) holds an unpaired surrogate.
 *
 * @example holdsLoneSurrogate(JSON.parse('{"a": ["x", "\\udc00"]}')) // true
 */
export function holdsLoneSurrogate(value: unknown): boolean {
  if (typeof value === 'string') return loneSurrogateAt(value) >= 0;
  if (Array.isArray(value)) return value.some(holdsLoneSurrogate);
  if (typeof value === 'object' && value !== null)
    return Object.entries(value).some(([k, v]) => loneSurrogateAt(k) >= 0 || holdsLoneSurrogate(v));
  return false;
}
