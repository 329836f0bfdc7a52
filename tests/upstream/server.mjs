#!/usr/bin/env node
// The test upstream: Medplum's in-memory FHIR R4 repository and router behind a
// small node:http server that adds what a sync client needs and Medplum lacks
// (paging links, ETag/Location headers, a CapabilityStatement), GP Connect
// appointment rules, and fault injection for outage tests.
//
//   node server.mjs --fixtures DIR [--port 0] [--host 127.0.0.1] [--exit-with-stdin] [--verbose]
//                   [--now INSTANT] [--default-count 20] [--max-count 1000]
//
// stdout carries exactly one line, the ready line (JSON); diagnostics go to stderr.
// See README.md for the HTTP API.

import { createServer } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { getStatus, isResourceType, OperationOutcomeError, validateResource } from '@medplum/core';
import { FhirRouter } from '@medplum/fhir-router';
import { Faults } from './lib/faults.mjs';
import { appointmentRules } from './lib/gpconnect.mjs';
import { outcome, reject } from './lib/outcomes.mjs';
import { FastMemoryRepository, indexDefinitions, loadFixtures } from './lib/repo.mjs';
import { Stats } from './lib/stats.mjs';

const FHIR_JSON = 'application/fhir+json; charset=utf-8';
/** Writes from the practice's own system rather than a GP Connect consumer: rules don't apply. */
const BYPASS_HEADER = 'x-bypass-gp-connect';

const { values: args } = parseArgs({
  options: {
    fixtures: { type: 'string' },
    port: { type: 'string', default: '0' },
    host: { type: 'string', default: '127.0.0.1' },
    'exit-with-stdin': { type: 'boolean', default: false },
    verbose: { type: 'boolean', short: 'v', default: false },
    'default-count': { type: 'string', default: '20' },
    'max-count': { type: 'string', default: '1000' },
    now: { type: 'string' },
  },
});
if (!args.fixtures) {
  process.stderr.write('usage: node server.mjs --fixtures DIR [--port 0] [--host 127.0.0.1] [--exit-with-stdin]\n');
  process.stderr.write('       [--verbose] [--now INSTANT] [--default-count 20] [--max-count 1000]\n');
  process.exit(2);
}
const log = args.verbose ? (msg) => process.stderr.write(msg + '\n') : () => {};
function usageError(message) {
  process.stderr.write(`test upstream: ${message}\n`);
  process.exit(2);
}
const DEFAULT_COUNT = Number(args['default-count']);
const MAX_COUNT = Number(args['max-count']);
if (!Number.isInteger(DEFAULT_COUNT) || !Number.isInteger(MAX_COUNT) || DEFAULT_COUNT < 1 || MAX_COUNT < DEFAULT_COUNT) {
  usageError('--default-count and --max-count must be whole numbers, 1 <= default <= max');
}
// The clock the GP Connect "past" rule uses: moved by --now (e.g. to a fixture's
// anchor day) and by POST /$clock, so a test can make a booking past or future.
let clockOffsetMs = 0;
if (args.now) {
  const t = Date.parse(args.now);
  if (Number.isNaN(t)) usageError(`--now ${args.now} is not a date or instant`);
  clockOffsetMs = t - Date.now();
}
const now = () => Date.now() + clockOffsetMs;

// ---- start-up: definitions, repository, fixtures --------------------------------

const started = performance.now();
indexDefinitions();
const indexMs = Math.round(performance.now() - started);
const repo = new FastMemoryRepository();
const router = new FhirRouter();
let loaded;
try {
  loaded = await loadFixtures(repo, args.fixtures);
} catch (err) {
  process.stderr.write(`test upstream: cannot load fixtures from ${args.fixtures}: ${err.message}\n`);
  process.exit(1);
}
const loadMs = Math.round(performance.now() - started);
const loadedTotal = Object.values(loaded).reduce((a, b) => a + b, 0);
log(`test upstream: indexed definitions in ${indexMs} ms, loaded ${loadedTotal} resources in ${loadMs - indexMs} ms`);

const faults = new Faults();
const stats = new Stats();
const rules = appointmentRules({ repo, route, now });
const startedAt = new Date().toISOString();

/** Hand a request to Medplum's router: `url` is relative to the FHIR base, query included. */
async function route(method, url, body, headers) {
  const [oc, resource] = await router.handleRequest({ method, url, query: {}, params: {}, body, headers }, repo);
  return { status: getStatus(oc), body: resource ?? oc };
}

// Every FHIR write runs alone: the appointment rules read a slot, decide, then
// write, and two bookings of one slot must not interleave between those steps.
let writeTail = Promise.resolve();
function serialised(fn) {
  const run = writeTail.then(fn, fn);
  writeTail = run.catch(() => {});
  return run;
}

// ---- FHIR requests ------------------------------------------------------------

/**
 * Answer one FHIR request (path and query relative to /fhir).
 * @returns {Promise<{status: number, body: any, headers?: object}>}
 */
async function fhir(method, fhirUrl, body, headers, base) {
  const qAt = fhirUrl.indexOf('?');
  const path = qAt === -1 ? fhirUrl : fhirUrl.slice(0, qAt);
  const query = qAt === -1 ? '' : fhirUrl.slice(qAt + 1);
  const segments = path.split('/').filter(Boolean);
  const [type, id] = segments;

  if (method === 'GET' && segments.length === 1 && type === 'metadata') {
    return { status: 200, body: capabilityStatement(base) };
  }
  // Medplum routes any word as a resource type (and would store "Patients").
  if (type && !/^[$_]/.test(type) && !isResourceType(type)) {
    return reject(404, 'not-supported', `Unknown resource type: ${type}`);
  }

  if (method === 'GET' && segments.length === 1) {
    return search(type, query, headers, base);
  }
  if (method === 'GET' || method === 'HEAD') {
    return route('GET', fhirUrl, undefined, headers);
  }

  // Writes
  if ((method === 'POST' && segments.length === 1) || (method === 'PUT' && segments.length === 2)) {
    const invalid = validate(type, body);
    if (invalid) return invalid;
  }
  if (method === 'POST' && segments.length === 1) {
    // As the FHIR spec says for create: the server assigns id and version. (Medplum's
    // memory repository would otherwise keep whatever the client sent.)
    delete body.id;
    if (body.meta) {
      delete body.meta.versionId;
      delete body.meta.lastUpdated;
    }
  }
  const bypass = headers[BYPASS_HEADER] === 'true' || headers[BYPASS_HEADER] === '1';
  return serialised(() => {
    if (!bypass && type === 'Appointment') {
      if (method === 'POST' && segments.length === 1) return rules.create(fhirUrl, body, headers);
      if (method === 'PUT' && segments.length === 2) return rules.update(id, fhirUrl, body, headers);
    }
    return route(method, fhirUrl, body, headers);
  });
}

function validate(type, body) {
  if (!body || typeof body !== 'object' || Array.isArray(body)) {
    return reject(400, 'invalid', 'request body must be a FHIR resource');
  }
  if (body.resourceType !== type) {
    return reject(400, 'invalid', `resourceType ${body.resourceType} does not match ${type}`);
  }
  try {
    validateResource(body);
  } catch (err) {
    if (err instanceof OperationOutcomeError) return { status: 400, body: err.outcome };
    return reject(400, 'invalid', String(err?.message ?? err));
  }
  return undefined;
}

/**
 * Search with standard paging. Medplum's memory repository returns every match
 * when no _count is given and never adds Bundle links; a real server pages by
 * default and gives `next` links, which is what a client must follow.
 */
async function search(type, query, headers, base) {
  const params = new URLSearchParams(query);
  const summaryCount = params.get('_summary') === 'count';
  if (params.has('_count')) {
    const n = Number(params.get('_count'));
    if (!Number.isInteger(n) || n < 0) return reject(400, 'invalid', `invalid _count: ${params.get('_count')}`);
    if (n > MAX_COUNT) params.set('_count', String(MAX_COUNT));
  } else if (!summaryCount) {
    params.set('_count', String(DEFAULT_COUNT));
  }
  if (params.has('_offset')) {
    const n = Number(params.get('_offset'));
    if (!Number.isInteger(n) || n < 0) return reject(400, 'invalid', `invalid _offset: ${params.get('_offset')}`);
  }

  const result = await route('GET', `${type}?${params}`, undefined, headers);
  if (result.status !== 200 || result.body?.resourceType !== 'Bundle') return result;

  // The total is always known here: FastMemoryRepository counts every match.
  const bundle = result.body;
  const count = summaryCount ? 0 : Number(params.get('_count'));
  const offset = Number(params.get('_offset') ?? 0);
  const pageUrl = (o) => {
    const p = new URLSearchParams(params);
    if (o === 0) p.delete('_offset');
    else p.set('_offset', String(o));
    return `${base}/${type}?${p}`;
  };
  const link = [{ relation: 'self', url: `${base}/${type}?${params}` }];
  if (count > 0 && offset + count < bundle.total) {
    link.push({ relation: 'next', url: pageUrl(offset + count) });
  }
  if (count > 0 && offset > 0) {
    link.push({ relation: 'previous', url: pageUrl(Math.max(0, offset - count)) });
  }
  const entry = bundle.entry?.map((e) => ({
    fullUrl: `${base}/${e.resource.resourceType}/${e.resource.id}`,
    resource: e.resource,
    search: { mode: 'match' },
  }));
  return {
    status: 200,
    body: { resourceType: 'Bundle', type: 'searchset', total: bundle.total, link, ...(entry ? { entry } : {}) },
  };
}

function capabilityStatement(base) {
  const interactions = ['read', 'vread', 'update', 'delete', 'history-instance', 'create', 'search-type'];
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: startedAt,
    kind: 'instance',
    software: { name: 'Lifeboat test upstream (Medplum fhir-router 4.5.2, in memory)' },
    implementation: { description: 'Lifeboat test upstream', url: base },
    fhirVersion: '4.0.1',
    format: ['application/fhir+json', 'json'],
    rest: [
      {
        mode: 'server',
        resource: repo.resourceTypes().map((t) => ({
          type: t,
          interaction: interactions.map((code) => ({ code })),
          versioning: 'versioned-update',
          conditionalCreate: true,
        })),
        interaction: [{ code: 'transaction' }, { code: 'batch' }],
      },
    ],
  };
}

/** ETag, Last-Modified and (on create) Location, from the resource's meta. */
function resourceHeaders(status, body, base) {
  const headers = {};
  const meta = body?.meta;
  if (!meta?.versionId || body.resourceType === 'Bundle' || body.resourceType === 'OperationOutcome') return headers;
  headers.ETag = `W/"${meta.versionId}"`;
  if (meta.lastUpdated) headers['Last-Modified'] = new Date(meta.lastUpdated).toUTCString();
  if (status === 201) headers.Location = `${base}/${body.resourceType}/${body.id}/_history/${meta.versionId}`;
  return headers;
}

// ---- HTTP ---------------------------------------------------------------------

function send(res, status, body, headers = {}, contentType = FHIR_JSON) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

async function readBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const text = Buffer.concat(chunks).toString('utf8');
  if (!text.trim()) return { body: undefined };
  try {
    return { body: JSON.parse(text) };
  } catch (err) {
    return { error: `request body is not JSON: ${err.message}` };
  }
}

async function handleFhir(req, res) {
  const entry = stats.start(req.method, req.url);
  const fault = faults.take(req.url);
  const base = `http://${req.headers.host ?? `${publicHost}:${port}`}/fhir`;
  const { body, error } = await readBody(req);

  if (fault?.mode === 'error') {
    const headers = fault.retryAfter !== undefined ? { 'Retry-After': String(fault.retryAfter) } : {};
    const code = fault.status === 429 ? 'throttled' : fault.status === 503 ? 'transient' : 'exception';
    stats.finish(entry, fault.status, 'error');
    return send(res, fault.status, outcome(code, `injected fault: HTTP ${fault.status}`), headers);
  }
  if (fault?.mode === 'hang') {
    // A hung request whose client gave up never reaches Medplum: as if the
    // server had never seen it.
    if (!(await faults.hang(res))) return stats.finish(entry, 0, 'hang');
  }
  if (fault?.mode === 'slow') {
    // Unlike hang, a slow request is processed even if the client has timed out,
    // as a real slow server would: the write happens, the client never hears.
    await sleep(fault.delayMs);
  }

  let result;
  if (error) {
    result = reject(400, 'invalid', error);
  } else {
    try {
      result = await fhir(req.method, req.url.slice('/fhir'.length), body, req.headers, base);
    } catch (err) {
      process.stderr.write(`test upstream: ${req.method} ${req.url}: ${err?.stack ?? err}\n`);
      result = reject(500, 'exception', String(err?.message ?? err));
    }
  }
  const headers = { ...resourceHeaders(result.status, result.body, base), ...result.headers };
  log(`${req.method} ${req.url} -> ${result.status}${fault ? ` [${fault.mode}]` : ''}`);
  if (res.destroyed) return stats.finish(entry, 0, fault?.mode);

  if (fault?.mode === 'drop') {
    // The request has been processed (a write is committed); the client gets
    // the headers and half the body, then the connection is cut.
    const text = Buffer.from(JSON.stringify(result.body));
    stats.finish(entry, result.status, 'drop');
    res.writeHead(result.status, { 'Content-Type': FHIR_JSON, 'Content-Length': text.length, ...headers });
    res.write(text.subarray(0, Math.floor(text.length / 2)), () => res.destroy());
    return;
  }
  if (fault?.mode === 'malformed') {
    // Processed too; the body is cut mid-JSON but framed correctly, so only a
    // JSON parser notices.
    const text = JSON.stringify(result.body);
    const cut = text.slice(0, Math.max(1, Math.floor(text.length / 2)));
    stats.finish(entry, 200, 'malformed');
    res.writeHead(200, { 'Content-Type': FHIR_JSON, 'Content-Length': Buffer.byteLength(cut) });
    return res.end(cut);
  }
  stats.finish(entry, result.status, fault?.mode);
  send(res, result.status, result.body, headers);
}

async function handleControl(req, res) {
  const path = req.url.split('?')[0];
  const json = (status, body) => send(res, status, body, {}, 'application/json');
  const key = `${req.method} ${path}`;
  if (key === 'GET /$fault') return json(200, faults.describe());
  if (key === 'GET /$stats') return json(200, stats);
  if (key === 'GET /$clock') return json(200, clock());
  if (!['POST /$fault', 'POST /$stats/reset', 'POST /$clock'].includes(key)) {
    return json(404, { error: `no such endpoint: ${key}` });
  }
  const { body, error } = await readBody(req);
  if (error) return json(400, { error });
  if (key === 'POST /$fault') {
    const result = faults.set(body);
    log(`fault: ${JSON.stringify(body)}`);
    return result.ok ? json(200, result.setting) : json(400, { error: result.error });
  }
  if (key === 'POST /$stats/reset') {
    stats.reset();
    return json(200, stats);
  }
  // POST /$clock {"now": "<instant>"} | {"offsetMs": n} | {} to reset
  if (body?.now !== undefined && body.now !== null) {
    const t = Date.parse(body.now);
    if (Number.isNaN(t)) return json(400, { error: 'now must be an instant' });
    clockOffsetMs = t - Date.now();
  } else if (body?.offsetMs !== undefined) {
    if (!Number.isFinite(body.offsetMs)) return json(400, { error: 'offsetMs must be a number' });
    clockOffsetMs = body.offsetMs;
  } else {
    clockOffsetMs = 0;
  }
  return json(200, clock());
}

function clock() {
  return { now: new Date(now()).toISOString(), offsetMs: clockOffsetMs };
}

const server = createServer((req, res) => {
  const isFhir = req.url === '/fhir' || req.url.startsWith('/fhir/') || req.url.startsWith('/fhir?');
  const handler = isFhir ? handleFhir : handleControl;
  handler(req, res).catch((err) => {
    process.stderr.write(`test upstream: ${req.method} ${req.url}: ${err?.stack ?? err}\n`);
    if (!res.headersSent) send(res, 500, outcome('exception', String(err?.message ?? err)));
    else res.destroy();
  });
});

// ---- lifecycle ------------------------------------------------------------------

function shutdown(why) {
  log(`test upstream: stopping (${why})`);
  faults.hung.clear();
  server.close();
  server.closeAllConnections();
  process.exit(0);
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
if (args['exit-with-stdin']) {
  // The harness holds our stdin; if it dies, the pipe closes and so do we.
  process.stdin.on('end', () => shutdown('stdin closed'));
  process.stdin.on('close', () => shutdown('stdin closed'));
  process.stdin.on('error', () => shutdown('stdin error'));
  process.stdin.resume();
}

const publicHost = args.host === '0.0.0.0' || args.host === '::' ? '127.0.0.1' : args.host;
let port;
server.listen(Number(args.port), args.host, () => {
  port = server.address().port;
  const ready = {
    ready: true,
    port,
    base: `http://${publicHost}:${port}/fhir`,
    loaded,
    ms: loadMs,
  };
  process.stdout.write(JSON.stringify(ready) + '\n');
});
