// Driving the real app through tauri-driver: sessions, waits, screenshots, and axe-core.

import { createRequire } from 'node:module';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { remote } from 'webdriverio';

const require = createRequire(import.meta.url);
const axePath = require.resolve('axe-core/axe.min.js');

export const env = {
  app: need('E2E_APP'),
  upstream: need('E2E_UPSTREAM'),
  practice: need('E2E_PRACTICE'),
  artifacts: process.env.E2E_ARTIFACTS ?? 'artifacts/e2e',
};
mkdirSync(env.artifacts, { recursive: true });

function need(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run the suite with scripts/e2e.sh`);
  return v;
}

/** Launches the app (a new process) and opens a WebDriver session on its window. */
export async function launch() {
  return remote({
    hostname: '127.0.0.1',
    port: 4444,
    logLevel: 'warn',
    connectionRetryCount: 0,
    capabilities: { 'tauri:options': { application: env.app } },
  });
}

/** Waits until `fn` returns something truthy (polling), or fails with `what`. */
export async function until(browser, fn, what, timeout = 15_000) {
  let last;
  await browser.waitUntil(
    async () => {
      last = await fn();
      return last;
    },
    { timeout, interval: 100, timeoutMsg: `timed out waiting for ${what}` },
  );
  return last;
}

/** Waits for two animation frames (a screenshot right after a DOM change can lag), then saves one. */
export async function screenshot(browser, name) {
  await browser.executeAsync((done) => requestAnimationFrame(() => requestAnimationFrame(() => done())));
  const file = join(env.artifacts, `${name}.png`);
  await browser.saveScreenshot(file);
  return file;
}

let axeSource;
/** Runs axe-core in the page; returns the serious and critical violations. */
export async function axe(browser, name) {
  axeSource ??= (await import('node:fs')).readFileSync(axePath, 'utf8');
  const loaded = await browser.execute(() => typeof window.axe === 'object');
  if (!loaded) await browser.execute(axeSource);
  const violations = await browser.executeAsync((done) => {
    window.axe
      .run(document, { resultTypes: ['violations'] })
      .then((r) => done(r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 5) }))))
      .catch((e) => done([{ id: 'axe-error', impact: 'critical', help: String(e), nodes: [] }]));
  });
  const bad = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  const minor = violations.length - bad.length;
  console.log(`axe ${name}: ${bad.length} serious/critical, ${minor} minor/moderate${violations.length ? ` (${violations.map((v) => `${v.id}:${v.impact}`).join(', ')})` : ''}`);
  return bad;
}

/** Text of the first element matching `selector`, or null. */
export async function textOf(browser, selector) {
  const el = await browser.$(selector);
  return (await el.isExisting()) ? el.getText() : null;
}

/** Goes to a route of the app (hash routing). */
export async function go(browser, route) {
  await browser.execute((r) => {
    location.hash = `#/${r}`;
  }, route);
}
