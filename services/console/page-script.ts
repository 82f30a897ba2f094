// The console page's script (plain browser JavaScript, no build step): it fetches one JSON route
// per view with the admin token and draws tables and uPlot charts from it.
export const CONSOLE_SCRIPT = String.raw`
'use strict';
var TOKEN_KEY = 'flywheel.console.token';
var view = document.getElementById('view');
var current = 'models';

function el(tag, attrs, children) {
  var node = document.createElement(tag);
  Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
  (children || []).forEach(function (c) { node.append(c instanceof Node ? c : String(c)); });
  return node;
}
function fmt(x, digits) {
  if (x === null || x === undefined || Number.isNaN(x)) return '–';
  return typeof x === 'number' ? x.toFixed(digits === undefined ? 4 : digits) : String(x);
}
function time(ms) { return ms ? new Date(ms).toISOString().replace('T', ' ').slice(0, 19) + ' UTC' : '–'; }
// A step with no record is a gap in the lines, not a straight line across it.
function withGaps(points, stepMs) {
  var out = [];
  points.forEach(function (p, i) {
    var prev = points[i - 1];
    if (prev && p.at - prev.at > 1.5 * stepMs) out.push({ at: prev.at + stepMs, gap: true });
    out.push(p);
  });
  return out;
}
function table(headers, rows, id) {
  var head = el('tr', {}, headers.map(function (h) { return el('th', {}, [h]); }));
  var body = rows.map(function (r) { return el('tr', {}, r.map(function (c) { return el('td', {}, [c]); })); });
  return el('table', id ? { id: id } : {}, [el('thead', {}, [head]), el('tbody', {}, body)]);
}
function section(title, children) { return el('section', {}, [el('h2', {}, [title])].concat(children)); }
function chart(title, times, series, width) {
  var box = el('div', { class: 'chart' });
  var colors = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
  new uPlot({
    // Times in UTC, as in the tables.
    tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1e3), 'Etc/UTC'); },
    title: title, width: width || 460, height: 220,
    // One point alone would stretch the time axis over years: give it an hour either side.
    scales: { x: times.length === 1 ? { time: true, range: [times[0] - 3600, times[0] + 3600] } : { time: true } },
    series: [{}].concat(series.map(function (s, i) {
      return { label: s.label, stroke: s.color || colors[i % colors.length], dash: s.dash, width: 1.5, spanGaps: false };
    })),
  }, [times].concat(series.map(function (s) { return s.values; })), box);
  return box;
}

async function api(path, body) {
  var headers = { authorization: 'Bearer ' + sessionStorage.getItem(TOKEN_KEY) };
  if (body) headers['content-type'] = 'application/json';
  var response = await fetch(path, body ? { method: 'POST', headers: headers, body: JSON.stringify(body) } : { headers: headers });
  if (response.status === 401 || response.status === 403) { logout('That token is not an admin token.'); throw new Error('unauthorized'); }
  if (!response.ok) {
    var answer = await response.json().catch(function () { return null; });
    throw new Error(path + ' answered ' + response.status + (answer && answer.error ? ': ' + answer.error.message : ''));
  }
  return response.json();
}

// An alias move asks for its reason (kept in the alias history), then redraws the view.
function action(label, path, body) {
  var b = el('button', { 'data-action': path + (body && body.alias ? '#' + body.alias : '') }, [label]);
  b.addEventListener('click', async function () {
    var reason = window.prompt(label + ': why?');
    if (!reason) return;
    try {
      await api(path, Object.assign({}, body || {}, { reason: reason }));
      show(current);
    } catch (error) {
      if (error.message !== 'unauthorized') window.alert(error.message);
    }
  });
  return b;
}

function models(data) {
  var r = data.routing;
  var aliasesOf = function (v) {
    var names = [];
    if (r.champion === v) names.push('champion');
    (r.challengers || []).forEach(function (c) { if (c.version === v) names.push('challenger ' + fmt(c.weight, 2)); });
    if (r.challenger === v && !(r.challengers || []).length) names.push('challenger');
    if (r.shadow === v) names.push('shadow');
    return el('span', {}, names.map(function (n) { return el('span', { class: 'badge' }, [n]); }));
  };
  var rows = data.versions.slice().reverse().map(function (v) {
    var m = v.metrics || {};
    // A rejected version cannot take an alias, nor a version the one it already holds.
    var possible = v.status !== 'rejected' ? ['champion', 'challenger'].filter(function (a) {
      return a === 'champion' ? r.champion !== v.version : r.challenger !== v.version;
    }) : [];
    var actions = el('span', {}, possible.map(function (a) {
      return action(a, '/v1/console/models/' + v.version + '/promote', { alias: a });
    }));
    return [v.version, aliasesOf(v.version), v.kind, v.parent || '–', v.createdBy, v.createdAt.slice(0, 19),
      v.status, fmt(m.logLoss), fmt(m.baselineLogLoss), fmt(m.championLogLoss), fmt(m.auc), fmt(m.calibrationError), fmt(m.lift, 2), fmt(m.examples, 0), actions];
  });
  var rollbacks = ['champion', 'challenger', 'shadow'].filter(function (a) { return r[a]; }).map(function (a) {
    return action('roll back ' + a, '/v1/console/aliases/' + a + '/rollback');
  });
  var moves = data.history.slice().reverse().slice(0, 50).map(function (h) {
    return [h.at.slice(0, 19), h.alias, h.from || '–', h.to || '–', h.actor, h.reason];
  });
  return [
    section('Model versions', [table(['version', 'aliases', 'kind', 'parent', 'by', 'created', 'status', 'log loss', 'baseline', 'champion then', 'AUC', 'ECE', 'lift', 'holdout', 'make it'], rows, 'versions')]),
    section('Alias history (newest ' + moves.length + ' of ' + (data.historyTotal || moves.length) + ')', [el('p', {}, rollbacks), table(['at', 'alias', 'from', 'to', 'by', 'why'], moves, 'alias-history')]),
  ];
}

function experiments(data) {
  var rows = data.experiments.slice().reverse().map(function (e) {
    var steps = e.config.steps || [];
    var share = e.state === 'running' || e.state === 'paused' ? fmt(steps[e.step], 2) : '–';
    return [e.id, e.candidate, e.control || '–', e.state, share, time(e.startedAt), e.endReason || '–'];
  });
  var out = [section('Experiments', [table(['id', 'candidate', 'control', 'state', 'share', 'started', 'ended because'], rows, 'experiments')])];
  data.experiments.filter(function (e) { return e.timeline.length > 1; }).forEach(function (e) {
    var times = e.timeline.map(function (p) { return p.at / 1000; });
    var charts = Object.keys(e.config.metrics).map(function (m) {
      // Before both arms have outcomes there is no difference to draw (not a zero).
      var pick = function (key) { return e.timeline.map(function (p) { var i = p.intervals[m]; return i && p.arms.control.n > 0 && p.arms.candidate.n > 0 ? i[key] : null; }); };
      return chart(m + ': candidate − control', times, [
        { label: 'estimate', values: pick('estimate') },
        { label: 'lower', values: pick('lower'), dash: [4, 4], color: '#888' },
        { label: 'upper', values: pick('upper'), dash: [4, 4], color: '#888' },
      ]);
    });
    charts.push(chart('candidate share', times, [{ label: 'share', values: e.timeline.map(function (p) { return p.share; }) }]));
    out.push(section(e.id + ' (' + e.candidate + ' against ' + (e.control || '–') + ')', [el('div', { class: 'charts' }, charts)]));
  });
  return out;
}

function unavailable(what, upstream) { return section(what, [el('p', { class: 'bad' }, [upstream.error])]); }

function monitoring(data) {
  if (!data.series.available) return [unavailable('Monitoring', data.series)];
  var out = [];
  data.series.body.series.forEach(function (s) {
    var points = withGaps(s.points, s.stepMs);
    var times = points.map(function (p) { return p.at / 1000; });
    var col = function (k) { return points.map(function (p) { return p.gap ? null : p[k]; }); };
    out.push(section(s.version + ' · ' + s.arm + ' (realised figures from ' + fmt(s.labelLagMs / 60000, 0) + ' minutes before the newest click, when its labels have landed)', [el('div', { class: 'charts' }, [
      chart('log loss', times, [{ label: 'realised', values: col('logLoss') }, { label: 'estimated (before labels)', values: col('estimatedLogLoss'), dash: [6, 3] }]),
      chart('purchase rate', times, [{ label: 'actual', values: col('purchaseRate') }, { label: 'predicted', values: col('predictedRate'), dash: [6, 3] }]),
      chart('predictions per step', times, [{ label: 'predictions', values: col('predictions') }, { label: 'labels', values: col('labels') }]),
    ])]));
  });
  if (data.look.available) {
    (data.look.body.observations || []).forEach(function (o) {
      if (!o.drift) return;
      var groups = o.drift.groups.slice().sort(function (a, b) { return b.distance - a.distance; });
      var rows = groups.map(function (g) {
        return [g.group, fmt(g.records, 0), fmt(g.distance, 3), fmt(g.psi, 3), g.pValue.toExponential(2), fmt(g.newValueRate, 3),
          g.drifted ? el('span', { class: 'bad' }, ['drifted']) : 'no'];
      });
      out.push(section('Drift of ' + o.version + ' · ' + o.arm + ' against its reference (design effect live ' +
        fmt(o.drift.designEffect.live, 1) + ', reference ' + fmt(o.drift.designEffect.reference, 1) + ', each test at ' + o.drift.level.toExponential(1) + ')',
        [table(['group', 'records', 'JS distance', 'PSI', 'p', 'new values', 'drifted'], rows, 'drift-' + o.version + '-' + o.arm)]));
    });
  }
  if (data.alerts.available) {
    var alerts = data.alerts.body.alerts.slice().reverse().slice(0, 100).map(function (a) {
      return [time(a.at), a.kind, a.version + ' · ' + a.arm, a.subject, a.message];
    });
    out.push(section('Alerts (newest first)', [table(['at', 'kind', 'version', 'subject', 'message'], alerts, 'alerts')]));
  }
  return out;
}

// Each labeler against what happened (the trainer's record): the weight their labels train with.
function reliability(data) {
  if (!data.reliability || !data.reliability.available) return unavailable('Labelers against outcomes (the trainer)', data.reliability || { error: 'not asked' });
  var r = data.reliability.body;
  var c = r.counters;
  // Agreement with the outcomes per day, one line per labeler: a labeler getting worse shows.
  var days = [];
  r.labelers.forEach(function (l) { l.daily.forEach(function (d) { if (days.indexOf(d.day) < 0) days.push(d.day); }); });
  days.sort(function (a, b) { return a - b; });
  var overTime = days.length > 1 ? [chart('agreement with outcomes per day', days.map(function (d) { return d * 86400; }), r.labelers.map(function (l) {
    return { label: l.labeler, values: days.map(function (day) { var d = l.daily.find(function (x) { return x.day === day; }); return d && d.judged ? d.agreed / d.judged : null; }) };
  }))] : [];
  return section('Labelers against outcomes (the trainer): ' + fmt(c.humanExamples, 0) + ' human examples trained, ' + fmt(c.untrustedHumanLabels, 0) + ' from untrusted labelers only, ' + fmt(c.flagged, 0) + ' flagged invalid, ' + fmt(c.censoredTimeouts, 0) + ' censored timeouts left out', [
    table(['labeler', 'judged', 'agreement', 'sensitivity', 'specificity', 'log loss', "model's", 'weight', 'why not trusted'], r.labelers.map(function (l) {
      return [l.labeler, fmt(l.judged, 0), fmt(l.judged ? l.agreed / l.judged : null, 3), fmt(l.sensitivity, 3), fmt(l.specificity, 3), fmt(l.labelerLogLoss, 3), fmt(l.modelLogLoss, 3),
        l.trust > 0 ? fmt(l.trust, 3) : el('span', { class: 'bad' }, ['0']), l.untrusted || ''];
    }), 'reliability')].concat(overTime));
}

function labeling(data) {
  if (!data.queue.available) return [unavailable('Labeling', data.queue), reliability(data)];
  var q = data.queue.body;
  var rows = (q.labelers || []).map(function (l) { return [l.id, fmt(l.labeled, 0), fmt(l.judged, 0), fmt(l.agreement, 2)]; });
  var hours = q.labelsPerHour || [];
  var perHour = hours.length ? [chart('labels per hour', hours.map(function (h) { return h.at / 1000; }), [{ label: 'labels', values: hours.map(function (h) { return h.labels; }) }])] : [el('p', { class: 'muted' }, ['No labels in the last 48 hours.'])];
  return [
    section('Labels per hour', perHour),
    section('Review queue', [table(['ready', 'leased', 'oldest waiting'], [[fmt(q.ready, 0), fmt(q.leased, 0), q.oldestWaitingMs === null ? '–' : fmt(q.oldestWaitingMs / 60000, 1) + ' min']], 'queue')]),
    section('Hourly budget of new tasks', [q.budget ? table(['per hour', 'used this hour', 'refused in all', 'state'], [[q.budget.perHour === null ? 'no limit' : fmt(q.budget.perHour, 0), fmt(q.budget.usedThisHour, 0), fmt(q.budget.refusedTotal, 0),
      q.budget.spent ? el('span', { class: 'bad' }, ['spent: no task is queued until ' + time(q.budget.resetsAt)]) : 'open']], 'budget') : el('p', { class: 'muted' }, ['–'])]),
    section('Labelers', [table(['labeler', 'labels', 'tasks judged by several', 'agreement with the majority'], rows, 'labelers')]),
    section('Agreement beyond chance (' + fmt(q.agreement ? q.agreement.tasks : 0, 0) + " tasks with several labels; Fleiss' kappa " + fmt(q.agreement ? q.agreement.fleissKappa : null, 3) + ')',
      [table(['labelers', 'common tasks', 'observed agreement', "Cohen's kappa"], ((q.agreement && q.agreement.pairs) || []).map(function (p) {
        return [p.a + ' + ' + p.b, fmt(p.tasks, 0), fmt(p.observed, 3), fmt(p.kappa, 3)];
      }), 'kappa')]),
    reliability(data),
  ];
}

function deadLetters(data) {
  if (!data.report.available) return [unavailable('Dead letters', data.report)];
  var d = data.report.body;
  var out = [];
  if (d.points.length) {
    var times = d.points.map(function (p) { return p.at / 1000; });
    out.push(section('Dead letters per ' + (d.stepMs >= 86400000 ? fmt(d.stepMs / 86400000, 0) + ' day(s)' : fmt(d.stepMs / 3600000, 0) + ' hour(s)') + ', by error code', [chart('dead letters', times, d.codes.map(function (code) {
      return { label: code, values: d.points.map(function (p) { return p.counts[code] || 0; }) };
    }), 940)]));
  }
  out.push(section('By source and reason', [table(['source topic', 'error code', 'service', 'letters', 'last'],
    d.totals.map(function (t) { return [t.sourceTopic, t.errorCode, t.service, fmt(t.n, 0), time(t.lastAt)]; }), 'dead-letter-totals')]));
  out.push(section('Newest letters', [table(['failed at', 'where', 'code', 'service', 'reason', 'key', 'value (first bytes)'],
    d.newest.map(function (l) {
      return [time(l.failedAt), l.sourceTopic + '/' + l.sourcePartition + '@' + l.sourceOffset, l.errorCode, l.service, l.reason, l.key || '–',
        el('pre', {}, [l.preview === null ? '(none)' : l.preview + (l.size > 240 ? ' … (' + l.size + ' bytes)' : '')])];
    }), 'dead-letters')]));
  return out;
}

function pipeline(data) {
  var kv = function (o, digits) {
    var keys = Object.keys(o);
    return keys.length ? keys.map(function (k) { return k + ': ' + fmt(o[k], digits); }).join('; ') : '–';
  };
  var rows = data.services.map(function (s) {
    var state = s.ready === null ? el('span', { class: 'bad' }, ['unreachable']) : s.ready ? 'ready' : el('span', { class: 'bad' }, ['not ready: ' + (s.reason || '')]);
    var behind = {};
    // A stage a moment ahead of this clock (clocks differ by milliseconds) is not behind it.
    Object.keys(s.behindSeconds).forEach(function (k) { behind[k] = Math.max(0, s.behindSeconds[k]); });
    return [s.name, state, kv(s.lag, 0), kv(behind, 1), fmt(s.outcomeToLiveSeconds, 1), kv(s.consumed, 0), fmt(s.deadLettered, 0), s.error || ''];
  });
  return [section('Services (their own /readyz and /metrics)', [table(['service', 'state', 'consumer lag (messages)', 'behind the clock (s)', 'outcome → live (s)', 'consumed', 'dead-lettered', 'error'], rows, 'pipeline')])];
}

var VIEWS = { models: models, experiments: experiments, monitoring: monitoring, labeling: labeling, 'dead-letters': deadLetters, pipeline: pipeline };

async function show(name) {
  current = name;
  document.querySelectorAll('#tabs button').forEach(function (b) { b.classList.toggle('active', b.dataset.view === name); });
  try {
    var data = await api('/v1/console/' + name);
    view.replaceChildren.apply(view, VIEWS[name](data));
    view.dataset.loaded = name;
  } catch (error) {
    if (error.message !== 'unauthorized') view.replaceChildren(section('Error', [el('p', { class: 'bad' }, [error.message])]));
  }
}
function logout(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  document.getElementById('token').value = '';
  view.hidden = true;
  document.getElementById('logout').hidden = true;
  document.getElementById('login').hidden = false;
  document.getElementById('login-error').textContent = message || '';
}
function login() {
  view.hidden = false;
  document.getElementById('logout').hidden = false;
  document.getElementById('login').hidden = true;
  show(current);
}
document.getElementById('login-form').addEventListener('submit', function (event) {
  event.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, document.getElementById('token').value.trim());
  login();
});
document.getElementById('logout').addEventListener('click', function () { logout(''); });
document.querySelectorAll('#tabs button').forEach(function (b) {
  b.addEventListener('click', function () { if (sessionStorage.getItem(TOKEN_KEY)) show(b.dataset.view); });
});
if (sessionStorage.getItem(TOKEN_KEY)) login();
`;
