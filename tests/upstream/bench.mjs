// How fast the test upstream itself is, on any fixture directory: start-up
// (index + load), then paging through every type by following `next` links.
// This is the "server's own share" baseline to set beside a client benchmark.
//
//   node bench.mjs DIR [--count 1000]

import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { count: { type: 'string', default: '1000' } },
});
const [dir] = positionals;
if (!dir) {
  console.error('usage: node bench.mjs FIXTURE_DIR [--count 1000]');
  process.exit(2);
}

const t0 = performance.now();
const proc = spawn(
  process.execPath,
  [fileURLToPath(new URL('server.mjs', import.meta.url)), '--fixtures', dir, '--exit-with-stdin'],
  { stdio: ['pipe', 'pipe', 'inherit'] }
);
const ready = JSON.parse(await new Promise((resolve) => createInterface({ input: proc.stdout }).once('line', resolve)));
const startMs = Math.round(performance.now() - t0);
console.log(`ready in ${startMs} ms wall (server reports ${ready.ms} ms to index and load)`);

let grand = 0;
for (const type of Object.keys(ready.loaded)) {
  const t = performance.now();
  let url = `${ready.base}/${type}?_count=${values.count}`;
  let n = 0;
  let pages = 0;
  let bytes = 0;
  while (url) {
    const res = await fetch(url);
    const text = await res.text();
    if (res.status !== 200) throw new Error(`${url}: ${res.status} ${text.slice(0, 200)}`);
    const bundle = JSON.parse(text);
    bytes += text.length;
    n += bundle.entry?.length ?? 0;
    pages++;
    url = bundle.link.find((l) => l.relation === 'next')?.url;
  }
  const ms = performance.now() - t;
  grand += ms;
  console.log(
    `${type.padEnd(22)} ${String(n).padStart(7)} resources ${String(pages).padStart(4)} pages ` +
      `${(ms / 1000).toFixed(2).padStart(7)} s  ${(ms / pages).toFixed(1).padStart(6)} ms/page  ${(bytes / 1e6).toFixed(1)} MB` +
      (n === ready.loaded[type] ? '' : `  MISMATCH: loaded ${ready.loaded[type]}`)
  );
}
console.log(`all types paged in ${(grand / 1000).toFixed(2)} s`);

// An incremental sync with nothing new: one _lastUpdated scan per type.
const t = performance.now();
for (const type of Object.keys(ready.loaded)) {
  const res = await fetch(`${ready.base}/${type}?_lastUpdated=gt${encodeURIComponent(new Date().toISOString())}`);
  if (res.status !== 200) throw new Error(`${type}: ${res.status}`);
  await res.text();
}
console.log(`empty incremental pass (_lastUpdated=gt<now>, every type) in ${((performance.now() - t) / 1000).toFixed(2)} s`);
proc.stdin.end();
