// Shared by the worker and admin pages: JSON calls with the bearer token, and DOM helpers that only ever
// set text (never HTML), so nothing a worker or a model writes can become markup.

/** Calls the API; throws an Error with the server's message on a non-2xx status. */
export async function api(method, path, token, body) {
  const headers = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) {
    const err = new Error(data.message || `${res.status} ${res.statusText}`);
    err.status = res.status;
    throw err;
  }
  return data;
}

/** Creates an element with text content and attributes (class, data-*, …). */
export function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = String(text);
  return node;
}

export const $ = (selector) => document.querySelector(selector);

/** Shows a message in the page's status line (errors in red). */
export function say(message, isError = false) {
  const status = $('#status');
  status.textContent = message;
  status.classList.toggle('error', isError);
}
