// The labeler web page: one self-contained HTML document (no build step), served by the
// labeling API. It keeps the labeler's token in the browser, pulls a task, shows the click and
// its session, and answers the configured question with buttons or the keys 1 (yes), 0 (no),
// S (skip) and U (unclear); validity flags toggle with their own keys (B, N, M, ...).
import type { ValidityFlag } from './config.js';

/** Keys that toggle the flags, in order (none of 1, 0, S, U). */
export const FLAG_KEYS = ['b', 'n', 'm', 'k', 'j', 'h'] as const;

const escape = (text: string) =>
  text.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c] as string);

export function labelerPage(options: {
  guidelines: string;
  question: string;
  flags: readonly ValidityFlag[];
}): string {
  const flagGuidelines = options.flags
    .filter((f) => f.guideline)
    .map((f) => `<li><em>${escape(f.text)}</em>: ${escape(f.guideline)}</li>`)
    .join('');
  const guidelines = `<span>${escape(options.guidelines)}</span>${flagGuidelines ? `<ul>${flagGuidelines}</ul>` : ''}`;
  const flags = options.flags
    .map(
      (f, i) =>
        `<label><input type="checkbox" data-flag="${escape(f.id)}" data-key="${FLAG_KEYS[i] ?? ''}"> ${escape(f.text)}<kbd>${(FLAG_KEYS[i] ?? '').toUpperCase()}</kbd></label>`,
    )
    .join(' ');
  return PAGE.replace('GUIDELINES_HERE', () => guidelines)
    .replace('QUESTION_HERE', () => escape(options.question))
    .replace('FLAGS_HERE', () => flags);
}

// The guidelines, question and flags go where GUIDELINES_HERE, QUESTION_HERE and FLAGS_HERE
// stand, escaped.
const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Flywheel · labeling</title>
<style>
  body { font: 15px/1.45 system-ui, sans-serif; margin: 0; background: #f5f6f8; color: #1d2330; }
  header { background: #1d2330; color: #fff; padding: 10px 20px; display: flex; justify-content: space-between; align-items: center; }
  main { max-width: 760px; margin: 24px auto; padding: 0 16px; }
  .card { background: #fff; border-radius: 8px; padding: 18px 22px; box-shadow: 0 1px 3px rgba(0,0,0,.08); margin-bottom: 16px; }
  dl { display: grid; grid-template-columns: 150px 1fr; gap: 6px 12px; margin: 0; }
  dt { color: #667; } dd { margin: 0; font-weight: 500; }
  table { border-collapse: collapse; font-size: 14px; }
  th, td { text-align: left; padding: 2px 12px 2px 0; }
  .score { font-size: 28px; font-weight: 700; }
  .bar { height: 8px; background: #e3e6ec; border-radius: 4px; overflow: hidden; margin-top: 6px; }
  .bar > div { height: 100%; background: #3a7bd5; }
  .actions { display: flex; gap: 10px; flex-wrap: wrap; }
  button { font: inherit; padding: 10px 16px; border-radius: 6px; border: 1px solid #c8cdd6; background: #fff; cursor: pointer; }
  button.yes { background: #2e8b57; color: #fff; border-color: #2e8b57; }
  button.no { background: #b33a3a; color: #fff; border-color: #b33a3a; }
  kbd { font: 12px monospace; background: #eef0f4; border: 1px solid #ccd; border-radius: 3px; padding: 1px 5px; margin-left: 6px; color: #334; }
  .muted { color: #667; } .error { color: #b33a3a; } [hidden] { display: none !important; }
</style>
</head>
<body>
<header><strong>Flywheel · labeling</strong><span id="who" class="muted"></span><button id="logout" hidden>Log out</button></header>
<main>
  <section id="login" class="card">
    <p>Paste your labeler token.</p>
    <p id="login-error" class="error"></p>
    <form id="login-form"><input id="token" type="password" size="40" autocomplete="off" aria-label="token"> <button type="submit">Start</button></form>
  </section>
  <section id="guidelines" class="card" hidden><strong>Guidelines.</strong> GUIDELINES_HERE</section>
  <section id="task" class="card" hidden>
    <div class="muted" id="reason"></div>
    <dl>
      <dt>Item</dt><dd id="item"></dd>
      <dt>Category</dt><dd id="category"></dd>
      <dt>Price</dt><dd id="price"></dd>
      <dt>Clicked at</dt><dd id="time"></dd>
      <dt>Page</dt><dd id="page-type"></dd>
      <dt>Came from</dt><dd id="referrer"></dd>
      <dt>Device / country</dt><dd id="device"></dd>
      <dt>User / session</dt><dd id="user"></dd>
      <dt>Model</dt><dd id="model"></dd>
    </dl>
    <div id="score-block">
      <p>Model's purchase probability: <span class="score" id="score"></span></p>
      <div class="bar"><div id="score-bar"></div></div>
    </div>
    <h3>Earlier in this session</h3>
    <table id="session"><thead><tr><th>time</th><th>item</th><th>category</th><th>price</th></tr></thead><tbody></tbody></table>
    <p id="session-empty" class="muted">This is the session's first click.</p>
  </section>
  <section id="controls" class="card" hidden>
    <h3 id="question">QUESTION_HERE</h3>
    <div class="actions">
      <button class="yes" data-answer="1">Yes<kbd>1</kbd></button>
      <button class="no" data-answer="0">No<kbd>0</kbd></button>
      <button data-answer="skip">Skip<kbd>S</kbd></button>
      <button data-answer="unclear">Unclear<kbd>U</kbd></button>
    </div>
    <p class="flags muted">Flag, with the answer: FLAGS_HERE</p>
  </section>
  <section id="empty" class="card muted" hidden><span id="empty-why">No task right now.</span> This page checks again every few seconds.</section>
  <p id="status" class="muted"></p>
</main>
<script>
const $ = (id) => document.getElementById(id);
let token = localStorage.getItem('flywheel.token') || '';
let current = null;
let busy = false;
// Agreement with other labelers, this session; the labeled count is the server's (kept across reloads).
const stats = { agreed: 0, completedMulti: 0 };
let labeled = 0;

async function api(method, path, body) {
  const response = await fetch(path, {
    method,
    headers: { authorization: 'Bearer ' + token, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  if (response.status === 204) return null;
  const data = await response.json();
  if (response.status === 401 || response.status === 403) {
    logout('That token was refused (' + (data.error ? data.error.message : response.status) + '). Paste it again.');
    throw new Error('refused');
  }
  if (!response.ok) throw new Error(data.error ? data.error.code + ': ' + data.error.message : response.statusText);
  return data;
}

function counter() {
  const agreement = stats.completedMulti ? ' · agreement ' + (100 * stats.agreed / stats.completedMulti).toFixed(0) + '%' : '';
  $('who').textContent = labeled + ' labeled' + agreement;
}

// Who I am, my count so far, and why the queue may be empty (the hourly budget).
async function me() {
  const data = await api('GET', '/v1/me');
  labeled = data.labeled;
  counter();
  const b = data.budget;
  $('empty-why').textContent = b.spent
    ? 'No task: the hourly budget of ' + b.perHour + ' new tasks is spent; new ones come after ' + new Date(b.resetsAt).toLocaleTimeString() + '.'
    : 'No task right now: the queue is empty.';
}

function show(task) {
  current = task;
  $('task').hidden = $('controls').hidden = !task;
  $('empty').hidden = !!task;
  if (!task) return;
  $('reason').textContent = 'Why you see this: ' + task.reason;
  $('item').textContent = task.itemId;
  $('category').textContent = task.category;
  $('price').textContent = task.price.toFixed(2);
  $('time').textContent = new Date(task.eventTime).toLocaleString();
  $('page-type').textContent = task.pageType || '?';
  $('referrer').textContent = task.referrer || '?';
  $('device').textContent = (task.device || '?') + ' / ' + (task.country || '?');
  $('user').textContent = task.userId + ' / ' + task.sessionId;
  $('model').textContent = task.modelVersion;
  // Blind review: no score comes with the task, so none is shown before the answer.
  $('score-block').hidden = typeof task.score !== 'number';
  if (typeof task.score === 'number') {
    $('score').textContent = (task.score * 100).toFixed(1) + '%';
    $('score-bar').style.width = (task.score * 100).toFixed(1) + '%';
  }
  const earlier = task.session || [];
  const body = $('session').querySelector('tbody');
  body.replaceChildren(...earlier.map((c) => {
    const row = document.createElement('tr');
    const ago = Math.round((task.eventTime - c.eventTime) / 1000);
    for (const text of [ago + ' s before', c.itemId ?? '?', c.category, c.price == null ? '?' : c.price.toFixed(2)]) {
      const cell = document.createElement('td');
      cell.textContent = text;
      row.append(cell);
    }
    return row;
  }));
  $('session').hidden = earlier.length === 0;
  $('session-empty').hidden = earlier.length > 0;
}

function status(text, error) {
  $('status').textContent = text;
  $('status').className = error ? 'error' : 'muted';
}

async function next(resume) {
  try {
    // On (re)start, the task this labeler held already, if any; then new ones.
    const data = (resume && (await api('GET', '/v1/tasks/current'))) || (await api('GET', '/v1/tasks/next'));
    show(data ? data.task : null);
    if (!busy) setBusy(false);
    if (!data) {
      await me();
      setTimeout(next, 3000);
    }
  } catch (e) {
    if (e.message !== 'refused') status(String(e.message || e), true);
  }
}

function setBusy(value) {
  busy = value;
  // Keys pressed while an answer is on its way are ignored, never applied to the next task.
  document.body.dataset.ready = !busy && current ? 'yes' : 'no';
}

async function answer(kind) {
  if (!current || busy) return;
  const task = current;
  setBusy(true);
  try {
    if (kind === '1' || kind === '0') {
      const flags = [...document.querySelectorAll('[data-flag]')].filter((f) => f.checked).map((f) => f.dataset.flag);
      const result = await api('POST', '/v1/tasks/' + encodeURIComponent(task.id) + '/label', { label: Number(kind), ...(flags.length ? { flags } : {}) });
      labeled++;
      if (result.agreement !== null) { stats.completedMulti++; stats.agreed += result.agreement; }
      const said = typeof result.score === 'number' ? ' · the model said ' + (result.score * 100).toFixed(1) + '%' : '';
      status('Labeled ' + labeled + said);
    } else {
      await api('POST', '/v1/tasks/' + encodeURIComponent(task.id) + '/' + kind);
      status(kind === 'skip' ? 'Skipped' : 'Marked unclear');
    }
    counter();
  } catch (e) {
    if (e.message !== 'refused') status(String(e.message || e), true);
  } finally {
    current = null;
    document.querySelectorAll('[data-flag]').forEach((f) => { f.checked = false; });
    await next();
    setBusy(false);
  }
}

document.querySelectorAll('[data-answer]').forEach((b) => b.addEventListener('click', () => answer(b.dataset.answer)));
document.addEventListener('keydown', (e) => {
  if (e.target && e.target.tagName === 'INPUT') return;
  const key = e.key.toLowerCase();
  if (key === '1' || key === '0') answer(key);
  else if (key === 's') answer('skip');
  else if (key === 'u') answer('unclear');
  else {
    const flag = document.querySelector('[data-key="' + key + '"]');
    if (flag && current && !busy) flag.checked = !flag.checked;
  }
});
$('login-form').addEventListener('submit', (e) => {
  e.preventDefault();
  token = $('token').value.trim();
  localStorage.setItem('flywheel.token', token);
  start();
});
// Log out (or a refused token): forget it and ask again; a wrong token is never a dead end.
function logout(message) {
  token = '';
  localStorage.removeItem('flywheel.token');
  $('token').value = '';
  $('login-error').textContent = message || '';
  current = null;
  show(null);
  $('empty').hidden = true;
  $('who').textContent = '';
  start();
}
$('logout').addEventListener('click', () => logout(''));
function start() {
  $('login').hidden = !!token;
  $('guidelines').hidden = !token;
  $('logout').hidden = !token;
  if (token) me().then(() => next(true), (e) => { if (e.message !== 'refused') status(String(e.message || e), true); });
}
start();
</script>
</body>
</html>`;
