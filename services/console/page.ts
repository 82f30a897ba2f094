// The operator console: one page, six views (models, experiments, monitoring, labeling, dead
// letters, pipeline), drawn
// in the browser from the console's JSON with uPlot (inlined: the page needs no network).
// The admin token is kept for the tab's session only, and "log out" forgets it.
import { chartLibrary } from '../common/charts.js';
import { CONSOLE_SCRIPT } from './page-script.js';

const STYLE = `
body { font: 14px system-ui, sans-serif; margin: 0; color: #1d2329; background: #f6f7f9; }
header { display: flex; gap: 1rem; align-items: center; padding: .6rem 1rem; background: #1d2329; color: #fff; }
header h1 { font-size: 1.1rem; margin: 0 1rem 0 0; }
nav button { background: none; border: 0; color: #cfd6dd; font-size: .95rem; padding: .3rem .6rem; cursor: pointer; }
nav button.active { color: #fff; border-bottom: 2px solid #5aa0ff; }
#logout { margin-left: auto; }
main { padding: 1rem; }
section { background: #fff; border: 1px solid #dde2e7; border-radius: 6px; padding: .8rem 1rem; margin-bottom: 1rem; }
h2 { font-size: 1rem; margin: 0 0 .6rem; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .25rem .5rem; border-bottom: 1px solid #eef1f4; font-variant-numeric: tabular-nums; }
th { color: #56616c; font-weight: 600; }
.badge { display: inline-block; padding: 0 .4rem; border-radius: 3px; background: #e4efff; color: #1f5fbf; margin-right: .2rem; }
.bad { color: #b3261e; font-weight: 600; }
.muted { color: #6b7680; }
.charts { display: flex; flex-wrap: wrap; gap: 1rem; }
td button { font-size: .8rem; margin-right: .2rem; }
pre { margin: 0; white-space: pre-wrap; word-break: break-all; max-width: 36rem; font-size: .8rem; }
#login { max-width: 26rem; margin: 4rem auto; }
#login input { width: 100%; padding: .4rem; margin: .4rem 0; box-sizing: border-box; }
`;

export async function consolePage(): Promise<string> {
  const chart = await chartLibrary();
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Flywheel console</title>
<style>${chart.style}</style><style>${STYLE}</style></head>
<body>
<header><h1>Flywheel</h1>
<nav id="tabs">
<button data-view="models" class="active">Models</button>
<button data-view="experiments">Experiments</button>
<button data-view="monitoring">Monitoring</button>
<button data-view="labeling">Labeling</button>
<button data-view="dead-letters">Dead letters</button>
<button data-view="pipeline">Pipeline</button>
</nav><button id="logout" hidden>Log out</button></header>
<main>
<section id="login"><h2>Admin token</h2>
<form id="login-form"><input id="token" type="password" autocomplete="off" placeholder="FW_ADMIN_TOKEN">
<button type="submit">Open the console</button></form><p id="login-error" class="bad"></p></section>
<div id="view" hidden></div>
</main>
<script>${chart.script}</script>
<script>${CONSOLE_SCRIPT}</script>
</body></html>`;
}
