// The crowdworker page: sign in, write a Human turn, compare two Assistant responses, continue.
import { $, api, el, say } from './api.js';

const KEY = 'hhkit-token';
const state = {
  token: sessionStorage.getItem(KEY),
  after: null,
  step: null,
  choice: null,
  strength: null,
  edited: false,
};

function task() {
  return document.querySelector('input[name="task"]:checked').value;
}

function addTurn(role, text) {
  const turn = el('div', { class: `turn ${role}` });
  turn.append(
    el('span', { class: 'speaker' }, role === 'human' ? 'Human' : 'Assistant'),
    el('p', {}, text.trim() || '(empty)'),
  );
  $('#transcript').append(turn);
}

async function refreshMe() {
  const me = await api('GET', '/api/me', state.token);
  $('#who').textContent = `${me.name} · round ${me.round} · ${me.comparisons} comparisons`;
}

async function signedIn() {
  try {
    await refreshMe();
  } catch (err) {
    if (err.status === 401) return signOut();
    return say(err.message, true);
  }
  $('#signin').hidden = true;
  $('#work').hidden = false;
  $('#signout').hidden = false;
  newConversation();
}

function signOut() {
  sessionStorage.removeItem(KEY);
  state.token = null;
  $('#signin').hidden = false;
  $('#work').hidden = true;
  $('#signout').hidden = true;
  $('#who').textContent = '';
}

function newConversation() {
  state.after = null;
  state.step = null;
  $('#transcript').replaceChildren();
  $('#choose').hidden = true;
  $('#compose').hidden = false;
  for (const input of document.querySelectorAll('input[name="task"]')) input.disabled = false;
  say('');
}

function buildScale() {
  const scale = $('#scale');
  scale.replaceChildren();
  // The paper's 8-point scale: A much better … A slightly better | B slightly better … B much better.
  const words = ['much', 'clearly', 'somewhat', 'slightly'];
  for (const [side, order] of [
    ['a', [4, 3, 2, 1]],
    ['b', [1, 2, 3, 4]],
  ]) {
    for (const strength of order) {
      const label = `${side.toUpperCase()} ${words[4 - strength]}`;
      const button = el(
        'button',
        { type: 'button', class: `strength side-${side}`, 'data-choice': side, 'data-strength': strength },
        label,
      );
      button.addEventListener('click', () => choose(side, strength, button));
      scale.append(button);
    }
  }
}

function choose(side, strength, button) {
  state.choice = side;
  state.strength = strength;
  for (const b of document.querySelectorAll('.strength')) b.classList.toggle('selected', b === button);
  // Only typing counts as an edit: a textarea normalises some characters (e.g. \r), so comparing texts
  // would store edits nobody made.
  $('#edit').value = state.step.responses[side === 'a' ? 0 : 1].trim();
  state.edited = false;
  $('#edit-box').hidden = false;
}

async function send(event) {
  event.preventDefault();
  const text = $('#message').value.trim();
  if (!text) return;
  $('#send').disabled = true;
  say('The assistant is writing two responses…');
  try {
    const step = await api('POST', '/api/turns', state.token, {
      task: task(),
      text,
      ...(state.after ? { after: state.after } : {}),
    });
    for (const input of document.querySelectorAll('input[name="task"]')) input.disabled = true;
    state.step = step;
    addTurn('human', text);
    $('#message').value = '';
    $('#resp-a').textContent = step.responses[0].trim() || '(empty)';
    $('#resp-b').textContent = step.responses[1].trim() || '(empty)';
    $('#question').textContent =
      step.task === 'red-team'
        ? 'Which response is more harmful?'
        : 'Which response is more helpful and honest?';
    buildScale();
    $('#edit-box').hidden = true;
    $('#choose').hidden = false;
    $('#compose').hidden = true;
    say('');
  } catch (err) {
    say(err.message, true);
  } finally {
    $('#send').disabled = false;
  }
}

async function submitChoice() {
  const { step, choice, strength } = state;
  const original = step.responses[choice === 'a' ? 0 : 1];
  const edited = $('#edit').value.trim();
  const body = { conversationId: step.conversationId, choice, strength };
  if (state.edited && edited && edited !== original.trim()) body.edit = edited;
  $('#submit-choice').disabled = true;
  try {
    const { comparisonId } = await api('POST', '/api/comparisons', state.token, body);
    state.after = comparisonId;
    addTurn('assistant', body.edit ?? original);
    $('#choose').hidden = true;
    $('#compose').hidden = false;
    $('#message').focus();
    say('Saved. Continue the conversation, or start a new one.');
    await refreshMe();
  } catch (err) {
    say(err.message, true);
  } finally {
    $('#submit-choice').disabled = false;
  }
}

$('#signin-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  try {
    const token = $('#token').value.trim();
    await api('POST', '/api/signin', null, { token });
    sessionStorage.setItem(KEY, token);
    state.token = token;
    $('#token').value = '';
    await signedIn();
  } catch (err) {
    say(err.message, true);
  }
});
$('#signout').addEventListener('click', signOut);
$('#compose').addEventListener('submit', send);
$('#new-conversation').addEventListener('click', newConversation);
$('#submit-choice').addEventListener('click', submitChoice);
$('#edit').addEventListener('input', () => {
  state.edited = true;
});
if (state.token) signedIn();
