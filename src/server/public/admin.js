// The admin page: invites, workers, rounds, models, counts, Elo and export, over /api/admin.
import { $, api, el, say } from './api.js';

const KEY = 'hhkit-admin-token';
let token = sessionStorage.getItem(KEY);

/** Fills a table from rows; `columns` are [heading, row => value]. */
function table(selector, columns, rows) {
  const head = el('tr');
  for (const [heading] of columns) head.append(el('th', {}, heading));
  const body = rows.map((row) => {
    const tr = el('tr');
    for (const [, cell] of columns) {
      const value = cell(row) ?? '';
      const td = el('td');
      // A cell is text, or an element built with el() (a button): never HTML from a string.
      if (value instanceof Node) td.append(value);
      else td.textContent = String(value);
      tr.append(td);
    }
    return tr;
  });
  if (rows.length === 0) {
    const empty = el('tr');
    empty.append(el('td', { colspan: columns.length, class: 'note' }, 'none yet'));
    body.push(empty);
  }
  const thead = el('thead');
  const tbody = el('tbody');
  thead.append(head);
  tbody.append(...body);
  $(selector).replaceChildren(thead, tbody);
}

const time = (ms) => (ms ? new Date(ms).toLocaleString() : '—');
const num = (x) => (typeof x === 'number' ? x.toFixed(0) : '');

async function refresh() {
  const get = (path) => api('GET', path, token);
  const [workers, rounds, models, counts] = await Promise.all([
    get('/api/admin/workers'),
    get('/api/admin/rounds'),
    get('/api/admin/models'),
    get('/api/admin/counts'),
  ]);
  table(
    '#workers',
    [
      ['name', (w) => w.name],
      ['role', (w) => w.role],
      ['comparisons', (w) => w.comparisons],
      ['since', (w) => time(w.createdAt)],
      ['sign-in', (w) => workerActions(w)],
    ],
    workers,
  );
  table(
    '#rounds',
    [
      ['round', (r) => (r.id === rounds.current ? `${r.id} (collecting)` : r.id)],
      ['started', (r) => time(r.startedAt)],
      ['finished', (r) => time(r.finishedAt)],
      ['comparisons', (r) => r.comparisons],
    ],
    rounds.rounds,
  );
  table(
    '#models',
    [
      ['model', (m) => m.name],
      ['path', (m) => m.path],
      ['responses', (m) => m.responses],
      ['running', (m) => m.running],
      ['waiting', (m) => m.waiting],
      ['up', (m) => (m.alive ? 'yes' : 'no')],
    ],
    models,
  );
  table(
    '#counts',
    [
      ['round', (c) => c.round ?? '—'],
      ['task', (c) => c.task],
      ['comparisons', (c) => c.comparisons],
      ['workers', (c) => c.workers],
      ['edits', (c) => c.edits],
    ],
    counts,
  );
  await refreshElo();
}

/** Shows a token once, as the invite form does. */
function showToken(name, newTokenValue, what) {
  const box = $('#invite-result');
  box.replaceChildren(
    el('span', {}, `${what} for ${name} (shown once; send it privately): `),
    el('code', {}, newTokenValue),
  );
  box.hidden = false;
}

/** Revoke / new-token buttons for a worker row: a revoked token stops working at once. */
function workerActions(w) {
  const box = el('span', { class: 'row' });
  const act = async (path, confirmText) => {
    if (!confirm(confirmText)) return;
    try {
      const res = await api('POST', `/api/admin/workers/${encodeURIComponent(w.name)}/${path}`, token);
      if (res.token) showToken(w.name, res.token, 'New token');
      else say(`${w.name}'s token is revoked.`);
      await refresh();
    } catch (err) {
      say(err.message, true);
    }
  };
  const revoke = el('button', { type: 'button', class: 'secondary', 'data-action': 'revoke' }, 'Revoke');
  revoke.disabled = !w.canSignIn;
  revoke.addEventListener('click', () =>
    act('revoke', `Revoke ${w.name}'s token? Every session with it stops working now.`),
  );
  const reissue = el('button', { type: 'button', class: 'secondary', 'data-action': 'token' }, 'New token');
  reissue.addEventListener('click', () =>
    act('token', `Give ${w.name} a new token? The old one stops working now.`),
  );
  box.append(el('span', {}, w.canSignIn ? 'yes ' : 'revoked '), revoke, reissue);
  return box;
}

async function refreshElo() {
  const elo = await api('GET', `/api/admin/elo?task=${encodeURIComponent($('#elo-task').value)}`, token);
  table(
    '#elo',
    [
      ['model', (r) => r.model],
      ['Elo', (r) => num(r.elo)],
      ['95% interval', (r) => `${num(r.lower)} … ${num(r.upper)}`],
      ['comparisons', (r) => r.comparisons],
      ['wins', (r) => r.wins],
    ],
    elo.rows,
  );
  $('#elo-note').textContent =
    elo.rows.length === 0
      ? `Elo needs comparisons between two different models (${elo.comparisons} usable so far).`
      : `${elo.comparisons} comparisons; Elo 0 = ${elo.anchor}; ${elo.skipped} skipped (same model on both sides).`;
}

async function start() {
  try {
    const me = await api('GET', '/api/me', token);
    if (me.role !== 'admin')
      throw Object.assign(new Error('this token is not an admin token'), { status: 403 });
    $('#who').textContent = `${me.name} · round ${me.round}`;
    $('#signin').hidden = true;
    $('#panels').hidden = false;
    $('#signout').hidden = false;
    await refresh();
  } catch (err) {
    if (err.status === 401 || err.status === 403) signOut();
    say(err.message, true);
  }
}

function signOut() {
  sessionStorage.removeItem(KEY);
  token = null;
  $('#signin').hidden = false;
  $('#panels').hidden = true;
  $('#signout').hidden = true;
  $('#who').textContent = '';
}

$('#signin-form').addEventListener('submit', (event) => {
  event.preventDefault();
  token = $('#token').value.trim();
  sessionStorage.setItem(KEY, token);
  $('#token').value = '';
  start();
});
$('#signout').addEventListener('click', signOut);
$('#invite-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  try {
    const invite = await api('POST', '/api/admin/invites', token, {
      name: $('#invite-name').value.trim(),
      role: $('#invite-role').value,
    });
    showToken(invite.name, invite.token, 'Token');
    $('#invite-name').value = '';
    await refresh();
  } catch (err) {
    say(err.message, true);
  }
});
$('#next-round').addEventListener('click', async () => {
  if (!confirm('Finish the current round? New comparisons will go to the next round.')) return;
  try {
    const { current } = await api('POST', '/api/admin/rounds/next', token);
    say(`Now collecting round ${current}.`);
    await refresh();
  } catch (err) {
    say(err.message, true);
  }
});
$('#elo-task').addEventListener('change', () => refreshElo().catch((err) => say(err.message, true)));
$('#export-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const params = new URLSearchParams({ task: $('#export-task').value });
  if ($('#export-round').value !== '') params.set('round', $('#export-round').value);
  const res = await fetch(`/api/admin/export?${params}`, { headers: { authorization: `Bearer ${token}` } });
  if (!res.ok) return say(`export failed: ${res.status}`, true);
  const name =
    /filename="([^"]+)"/.exec(res.headers.get('content-disposition') ?? '')?.[1] ?? 'comparisons.jsonl';
  const link = el('a', { href: URL.createObjectURL(await res.blob()), download: name });
  link.click();
  URL.revokeObjectURL(link.href);
});
if (token) start();
