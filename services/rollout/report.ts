// An experiment's report as one self-contained HTML file: each arm's rates over time, the
// always-valid interval of each metric's difference, the candidate's share, and every decision
// with the numbers that drove it. Charts are drawn by uPlot, inlined with its stylesheet, so the
// file opens anywhere without a network.
import type { ExperimentRecord } from '../registry/experiments.js';

const escape = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** The series the page draws, by chart: times in seconds, values or null where unbounded. */
export function reportSeries(e: ExperimentRecord) {
  const points = e.timeline;
  const times = points.map((p) => p.at / 1000);
  const metrics = Object.keys(e.config.metrics);
  return {
    times,
    share: points.map((p) => p.share),
    rates: Object.fromEntries(
      metrics.map((m) => [
        m,
        {
          control: points.map((p) => p.arms.control.means[m] ?? null),
          candidate: points.map((p) => p.arms.candidate.means[m] ?? null),
          ...(e.baseline ? { baseline: points.map((p) => p.arms.baseline?.means[m] ?? null) } : {}),
        },
      ]),
    ),
    differences: Object.fromEntries(
      metrics.map((m) => [
        m,
        {
          estimate: points.map((p) => p.intervals[m]?.estimate ?? null),
          lower: points.map((p) => p.intervals[m]?.lower ?? null),
          upper: points.map((p) => p.intervals[m]?.upper ?? null),
        },
      ]),
    ),
  };
}

export function renderReport(e: ExperimentRecord, library: { script: string; style: string }): string {
  const decisions = e.decisions
    .map(
      (d) =>
        `<tr><td>${new Date(d.at).toISOString()}</td><td>${escape(d.action)}</td><td>${escape(d.actor)}</td><td>${(d.share * 100).toFixed(1)}%</td><td>${d.outcomes.control} / ${d.outcomes.candidate}</td><td>${escape(d.reasons.join('; '))}</td></tr>`,
    )
    .join('\n');
  const data = JSON.stringify({ series: reportSeries(e), alpha: e.config.alpha }).replace(/</g, '\\u003c');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Experiment ${escape(e.id)}: ${escape(e.candidate)} against ${escape(e.control ?? '-')}</title>
<style>${library.style}
body { font: 14px system-ui, sans-serif; margin: 24px; color: #222; }
table { border-collapse: collapse; } td, th { padding: 4px 8px; border-bottom: 1px solid #ddd; text-align: left; }
.chart { margin: 16px 0 28px; }
</style></head><body>
<h1>Experiment ${escape(e.id)}</h1>
<p><b>${escape(e.candidate)}</b> against the champion <b>${escape(e.control ?? '-')}</b>: <b>${escape(e.state)}</b>${e.endReason ? ` (${escape(e.endReason)})` : ''}.
Ramp ${e.config.steps.map((s) => `${s * 100}%`).join(' → ')}, ${e.config.minOutcomes} candidate outcomes per step, budget ${e.config.budget}, alpha ${e.config.alpha}.
Created by ${escape(e.createdBy)}: ${escape(e.reason)}</p>
${e.group ? `<p>One of group ${escape(e.group)}: its candidates started together, each at this alpha.</p>` : ''}
${e.baselineShare ? `<p>The heuristic baseline serves ${(e.baselineShare * 100).toFixed(1)}% of users throughout, as a control every model must beat.</p>` : ''}
${e.segments?.length ? `<p>Only in segments ${escape(e.segments.join(', '))}.</p>` : ''}
<p>Intervals are always valid (mixture SPRT confidence sequences): they may be looked at after every outcome.</p>
<div id="charts"></div>
<h2>Decisions</h2>
<table><tr><th>time</th><th>action</th><th>by</th><th>share after</th><th>outcomes (control / candidate)</th><th>why</th></tr>
${decisions}
</table>
<script>${library.script}</script>
<script>
const { series, alpha } = ${data};
${PAGE_SCRIPT}</script>
</body></html>
`;
}

/** Draws the charts from `series` and `alpha` (declared before it on the page). */
const PAGE_SCRIPT = `const charts = document.getElementById('charts');
const width = Math.min(1000, window.innerWidth - 48);
function chart(title, label, lines, y) {
  const box = document.createElement('div');
  box.className = 'chart';
  charts.appendChild(box);
  new uPlot({ title, width, height: 260, scales: { x: { time: true }, ...(y ? { y: { range: y } } : {}) }, axes: [{}, { label }],
    series: [{}, ...lines.map((l) => ({ label: l.label, stroke: l.color, width: l.width ?? 2, dash: l.dash, fill: l.fill }))] },
    [series.times, ...lines.map((l) => l.values)], box);
}
for (const [metric, arms] of Object.entries(series.rates))
  chart(metric + ' by arm', metric, [
    { label: 'control', color: '#1f77b4', values: arms.control },
    { label: 'candidate', color: '#d62728', values: arms.candidate },
    ...(arms.baseline ? [{ label: 'heuristic baseline', color: '#7f7f7f', dash: [6, 3], values: arms.baseline }] : []),
  ]);
// The first looks' intervals are wide: the y axis fits the newer half of them.
const fit = (d) => {
  const half = Math.floor(d.lower.length / 2);
  const finite = [...d.lower.slice(half), ...d.upper.slice(half)].filter((v) => v !== null && isFinite(v));
  if (finite.length === 0) return undefined;
  const [lo, hi] = [Math.min(0, ...finite), Math.max(0, ...finite)];
  return [lo - 0.1 * (hi - lo), hi + 0.1 * (hi - lo)];
};
for (const [metric, d] of Object.entries(series.differences))
  chart(metric + ': candidate − control, always-valid interval (alpha ' + alpha + ')', 'difference', [
    { label: 'upper', color: '#999', width: 1, dash: [4, 4], values: d.upper },
    { label: 'estimate', color: '#222', values: d.estimate },
    { label: 'lower', color: '#999', width: 1, dash: [4, 4], values: d.lower },
    { label: 'zero', color: '#2ca02c', width: 1, values: series.times.map(() => 0) },
  ], fit(d));
chart("candidate's traffic share", 'share', [{ label: 'share', color: '#ff7f0e', values: series.share }]);
`;
