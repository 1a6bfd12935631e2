#!/usr/bin/env node
// Screenshots of a KFP run in the UI, taken with headless Chromium over the DevTools protocol.
//
//   usage: node scripts/kfp/ui-shots.mjs UI_URL RUN_ID OUTDIR [TASK]   (TASK default: evaluate)
//   env:   CHROMIUM (default chromium), SHOT_SIZE (default 1600x1000), SHOT_WAIT_S (default 6:
//          seconds a panel gets to load its artifacts after a click)
//
// Writes OUTDIR/run-graph.png (the run's graph), OUTDIR/<TASK>.png (the task's Input/Output tab)
// and OUTDIR/<TASK>-<artifact>.png (the Visualization tab of each output artifact of TASK: metrics,
// confusion matrix, HTML, markdown). The UI is a single-page app that loads after the page does
// and a node's details open on a click, which `chromium --screenshot` cannot do: this waits for
// graph nodes by their React Flow ids (task.<task>, artifact.<task>.<output>) and clicks them.
// Needs Node >= 22 (its built-in WebSocket); no packages.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const [uiUrl, runId, outDir, task = 'evaluate'] = process.argv.slice(2);
if (!uiUrl || !runId || !outDir) {
  console.error('usage: ui-shots.mjs UI_URL RUN_ID OUTDIR [TASK]');
  process.exit(2);
}
const [width, height] = (process.env.SHOT_SIZE || '1600x1000').split('x').map(Number);
const settleMs = Number(process.env.SHOT_WAIT_S || 6) * 1000;
const runUrl = `${uiUrl.replace(/\/$/, '')}/#/runs/details/${runId}`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const profile = mkdtempSync(path.join(tmpdir(), 'kfp-ui-shots-'));
const browser = spawn(
  process.env.CHROMIUM || 'chromium',
  [
    '--headless',
    '--no-sandbox', // root in a container: Chromium's sandbox needs user namespaces
    '--disable-gpu',
    '--hide-scrollbars',
    '--remote-debugging-port=0',
    `--user-data-dir=${profile}`,
    'about:blank',
  ],
  { stdio: ['ignore', 'ignore', 'pipe'] },
);

const wsUrl = await new Promise((resolve, reject) => {
  let seen = '';
  browser.stderr.on('data', (d) => {
    seen += d;
    const m = seen.match(/DevTools listening on (ws:\/\/\S+)/);
    if (m) resolve(m[1]);
  });
  browser.on('exit', (code) => reject(new Error(`chromium exited (${code}): ${seen.slice(-500)}`)));
});

const ws = new WebSocket(wsUrl);
await new Promise((r, j) => ((ws.onopen = r), (ws.onerror = j)));
let nextId = 0;
const pending = new Map();
ws.onmessage = (ev) => {
  const msg = JSON.parse(ev.data);
  const p = pending.get(msg.id);
  if (!p) return;
  pending.delete(msg.id);
  msg.error ? p.reject(new Error(JSON.stringify(msg.error))) : p.resolve(msg.result);
};
function cdp(method, params = {}, sessionId) {
  const id = ++nextId;
  ws.send(JSON.stringify({ id, method, params, sessionId }));
  return new Promise((resolve, reject) => pending.set(id, { resolve, reject }));
}

const { targetId } = await cdp('Target.createTarget', { url: 'about:blank' });
const { sessionId } = await cdp('Target.attachToTarget', { targetId, flatten: true });
const page = (method, params) => cdp(method, params, sessionId);
await page('Emulation.setDeviceMetricsOverride', {
  width,
  height,
  deviceScaleFactor: 1,
  mobile: false,
});

async function js(expression) {
  const { result, exceptionDetails } = await page('Runtime.evaluate', {
    expression,
    returnByValue: true,
  });
  if (exceptionDetails) throw new Error(exceptionDetails.text);
  return result.value;
}

async function until(expression, what, timeoutMs = 60000) {
  for (const end = Date.now() + timeoutMs; Date.now() < end; await sleep(500)) {
    const value = await js(expression);
    if (value) return value;
  }
  throw new Error(`timed out waiting for ${what}`);
}

// A real mouse click at the element's centre: React Flow selects nodes on pointer events.
async function click(selectorExpr, what) {
  const box = await until(
    `(() => { const e = ${selectorExpr}; if (!e) return null;
       const r = e.getBoundingClientRect(); return { x: r.x + r.width / 2, y: r.y + r.height / 2 }; })()`,
    what,
  );
  for (const type of ['mouseMoved', 'mousePressed', 'mouseReleased']) {
    await page('Input.dispatchMouseEvent', { type, ...box, button: 'left', clickCount: 1 });
  }
}

async function shot(name) {
  const { data } = await page('Page.captureScreenshot', { format: 'png' });
  const file = path.join(outDir, `${name}.png`);
  writeFileSync(file, Buffer.from(data, 'base64'));
  console.log(file);
}

async function openRun() {
  await page('Page.navigate', { url: 'about:blank' });
  await page('Page.navigate', { url: runUrl });
  await until(`!!document.querySelector('[data-id="task.${task}"]')`, `the graph's ${task} node`);
  await sleep(2000); // execution states arrive from ML Metadata after the graph is drawn
}

const tab = (label) =>
  `[...document.querySelectorAll('button')].find((b) => b.textContent.trim() === '${label}')`;

try {
  mkdirSync(outDir, { recursive: true });
  await openRun();
  await shot('run-graph');

  await click(`document.querySelector('[data-id="task.${task}"]')`, `task node ${task}`);
  await until(`!!${tab('Input/Output')}`, 'the task panel');
  await sleep(settleMs);
  await shot(task);

  const artifacts = await js(
    `[...document.querySelectorAll('[data-id^="artifact.${task}."]')].map((e) => e.dataset.id)`,
  );
  for (const id of artifacts) {
    await openRun(); // a fresh page: the open panel would cover other nodes
    await click(`document.querySelector('[data-id="${id}"]')`, `artifact node ${id}`);
    // The tab is a plain button: a DOM click, as the panel may still be sliding in.
    await until(`!!${tab('Visualization')}`, `${id}'s panel`);
    await js(`${tab('Visualization')}.click()`);
    await sleep(settleMs);
    await shot(`${task}-${id.split('.').pop()}`);
  }
} finally {
  ws.close();
  browser.kill();
  await new Promise((r) => browser.once('exit', r));
  rmSync(profile, { recursive: true, force: true });
}
