// Tests of the test upstream, run against the real server as a child process
// and the small practice in testdata/ (see testdata/make.mjs for what is in it).
//
//   cd tests/upstream && npm ci && node --test

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const SPINE = 'https://fhir.nhs.uk/STU3/CodeSystem/Spine-ErrorOrWarningCode-1';
const id = (prefix, n) => `${prefix}0000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
const PATIENT = (n) => id(3, n);
const SLOT = (n) => id(5, n);
const APPOINTMENT = (n) => id(6, n);
const PRACTITIONER = id(1, 1);
const SCHEDULE = id(4, 1);

/** Start server.mjs; resolves once its ready line is read. */
async function startServer(extraArgs = []) {
  const proc = spawn(process.execPath, ['server.mjs', '--fixtures', 'testdata', '--port', '0', ...extraArgs], {
    cwd: HERE,
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: proc.stdout });
  const stdoutLines = [];
  const first = new Promise((resolve, reject) => {
    lines.on('line', (line) => {
      stdoutLines.push(line);
      if (stdoutLines.length === 1) resolve(line);
    });
    proc.on('exit', (code) => reject(new Error(`server exited early (${code})`)));
  });
  const readyLine = await first;
  const ready = JSON.parse(readyLine);
  return { proc, ready, readyLine, stdoutLines, base: ready.base, root: `http://127.0.0.1:${ready.port}` };
}

let srv;
before(async () => {
  srv = await startServer(['--exit-with-stdin']);
});
after(() => {
  srv?.proc.kill('SIGTERM');
});

// ---- small HTTP helpers ----

async function request(method, url, { body, headers = {}, signal } = {}) {
  const res = await fetch(url.startsWith('http') ? url : srv.base + url, {
    method,
    headers: { 'content-type': 'application/fhir+json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, body: text ? JSON.parse(text) : undefined };
}
const get = (url, opts) => request('GET', url, opts);
const post = (url, body, opts = {}) => request('POST', url, { ...opts, body });
const put = (url, body, opts = {}) => request('PUT', url, { ...opts, body });
const control = (method, path, body) => request(method, srv.root + path, { body });
const setFault = (setting) => control('POST', '/$fault', setting);

function booking(slotN, patientN, extra = {}) {
  // Slots 1-8 start at 09:00 + 15 min * (n-1) on 2 March 2099.
  const start = new Date(Date.UTC(2099, 2, 2, 9, (slotN - 1) * 15)).toISOString();
  const end = new Date(Date.UTC(2099, 2, 2, 9, slotN * 15)).toISOString();
  return {
    resourceType: 'Appointment',
    status: 'booked',
    start,
    end,
    slot: [{ reference: `Slot/${SLOT(slotN)}` }],
    participant: [
      { actor: { reference: `Patient/${PATIENT(patientN)}` }, status: 'accepted' },
      { actor: { reference: `Practitioner/${PRACTITIONER}` }, status: 'accepted' },
    ],
    description: 'Blood pressure review',
    ...extra,
  };
}

async function slotStatus(n) {
  return (await get(`/Slot/${SLOT(n)}`)).body.status;
}

function issueOf(outcome) {
  assert.equal(outcome.resourceType, 'OperationOutcome');
  return outcome.issue[0];
}

// ---- start-up ----

describe('start-up', () => {
  test('prints exactly one JSON ready line with counts', async () => {
    const { ready, readyLine } = srv;
    assert.equal(ready.ready, true);
    assert.ok(Number.isInteger(ready.port) && ready.port > 0);
    assert.equal(ready.base, `http://127.0.0.1:${ready.port}/fhir`);
    assert.deepEqual(ready.loaded, { Practitioner: 3, Location: 1, Patient: 25, Schedule: 1, Slot: 10, Appointment: 2 });
    assert.ok(Number.isFinite(ready.ms));
    assert.deepEqual(Object.keys(ready), ['ready', 'port', 'base', 'loaded', 'ms']);
    assert.ok(!readyLine.includes('\n'));
    await get('/Patient?_count=1'); // serving requests prints nothing more
    assert.equal(srv.stdoutLines.length, 1);
  });

  test('keeps fixture ids, versionId and lastUpdated', async () => {
    const patient = (await get(`/Patient/${PATIENT(3)}`)).body;
    assert.equal(patient.id, PATIENT(3));
    assert.deepEqual(patient.meta, { versionId: '1', lastUpdated: '2024-01-03T10:00:00.000Z' });
    const slot = (await get(`/Slot/${SLOT(9)}`)).body;
    assert.deepEqual(slot.meta, { versionId: '1', lastUpdated: '2024-01-01T09:00:00.000Z' });
  });

  test('metadata serves a minimal CapabilityStatement', async () => {
    const { status, body, headers } = await get('/metadata');
    assert.equal(status, 200);
    assert.match(headers.get('content-type'), /^application\/fhir\+json/);
    assert.equal(body.resourceType, 'CapabilityStatement');
    assert.equal(body.fhirVersion, '4.0.1');
    assert.equal(body.status, 'active');
    const types = body.rest[0].resource.map((r) => r.type);
    for (const t of ['Practitioner', 'Location', 'Patient', 'Schedule', 'Slot', 'Appointment']) assert.ok(types.includes(t));
  });

  test('unknown resource types are 404, not silently empty', async () => {
    const { status, body } = await get('/Patients');
    assert.equal(status, 404);
    assert.equal(issueOf(body).code, 'not-supported');
  });
});

// ---- search ----

describe('search', () => {
  test('following next links yields every resource exactly once', async () => {
    const seen = [];
    let url = '/Patient?_count=7';
    let pages = 0;
    while (url) {
      const { status, body } = await get(url);
      assert.equal(status, 200);
      assert.equal(body.total, 25);
      pages++;
      for (const e of body.entry ?? []) {
        assert.equal(e.fullUrl, `${srv.base}/Patient/${e.resource.id}`);
        seen.push(e.resource.id);
      }
      const self = body.link.find((l) => l.relation === 'self');
      assert.ok(self.url.startsWith(`${srv.base}/Patient?`));
      url = body.link.find((l) => l.relation === 'next')?.url;
      if (url) assert.ok(url.startsWith(`${srv.base}/Patient?`), `next is absolute: ${url}`);
    }
    assert.equal(pages, 4);
    assert.equal(seen.length, 25);
    assert.equal(new Set(seen).size, 25);
    for (let n = 1; n <= 25; n++) assert.ok(seen.includes(PATIENT(n)));
  });

  test('pages by default and caps _count like a real server', async () => {
    const page = (await get('/Patient')).body;
    assert.equal(page.entry.length, 20);
    assert.match(page.link.find((l) => l.relation === 'next').url, /_offset=20/);
    const capped = (await get('/Patient?_count=5000')).body;
    assert.match(capped.link.find((l) => l.relation === 'self').url, /_count=1000/);
    assert.equal(capped.link.find((l) => l.relation === 'next'), undefined);
  });

  test('_offset pages carry previous links; bad _count is 400', async () => {
    const page = (await get('/Patient?_count=10&_offset=10')).body;
    assert.equal(page.entry[0].resource.id, PATIENT(11));
    assert.match(page.link.find((l) => l.relation === 'previous').url, /_count=10/);
    assert.equal((await get('/Patient?_count=abc')).status, 400);
  });

  test('total is given without asking, and _summary=count gives only the total', async () => {
    const page = (await get('/Practitioner?_count=1')).body;
    assert.equal(page.total, 3);
    const count = (await get('/Patient?_summary=count')).body;
    assert.equal(count.total, 25);
    assert.equal(count.entry, undefined);
    // _count=0 (with _total=accurate, as the sync asks before listing ids) counts in scope.
    const counted = (await get('/Patient?_count=0&_lastUpdated=gt2024-01-20T10:00:00Z&_total=accurate')).body;
    assert.equal(counted.total, 5);
    assert.equal(counted.entry, undefined);
  });

  test('_lastUpdated=gt finds only later resources (boundary excluded)', async () => {
    const after20 = (await get('/Patient?_lastUpdated=gt2024-01-20T10:00:00Z&_count=100')).body;
    assert.equal(after20.total, 5);
    const ids = after20.entry.map((e) => e.resource.id).sort();
    assert.deepEqual(ids, [21, 22, 23, 24, 25].map(PATIENT));
    // A "+" must be percent-encoded (%2B) or it reads as a space: standard URL rules.
    const encoded = (await get(`/Patient?_lastUpdated=gt${encodeURIComponent('2024-01-20T10:00:00+00:00')}`)).body;
    assert.equal(encoded.total, 5);
  });

  test('_elements=id lists ids (and meta) only, tagged SUBSETTED', async () => {
    const page = (await get('/Patient?_elements=id&_count=100')).body;
    assert.equal(page.entry.length, 25);
    for (const { resource } of page.entry) {
      assert.deepEqual(Object.keys(resource).sort(), ['id', 'meta', 'resourceType']);
      assert.ok(resource.meta.versionId);
      assert.ok(resource.meta.tag.some((t) => t.code === 'SUBSETTED'));
    }
  });

  test('free slots in a window for one schedule; appointments by date', async () => {
    const q = `schedule=Schedule/${SCHEDULE}&status=free&start=ge2099-03-02T09:30:00Z&start=le2099-03-02T10:00:00Z`;
    const slots = (await get(`/Slot?${q}`)).body;
    const ids = slots.entry.map((e) => e.resource.id).sort();
    assert.deepEqual(ids, [SLOT(3), SLOT(4), SLOT(5)]);
    const future = (await get('/Appointment?date=ge2099-01-01')).body;
    assert.ok(future.entry.some((e) => e.resource.id === APPOINTMENT(1)));
    assert.ok(!future.entry.some((e) => e.resource.id === APPOINTMENT(2)));
  });

  test('_sort=_lastUpdated orders results', async () => {
    const page = (await get('/Patient?_sort=-_lastUpdated&_count=3&_lastUpdated=lt2024-02-01')).body;
    assert.deepEqual(
      page.entry.map((e) => e.resource.id),
      [25, 24, 23].map(PATIENT)
    );
  });
});

// ---- versioning and conditional writes ----

describe('versioning', () => {
  test('read gives ETag and Last-Modified from meta', async () => {
    const { headers } = await get(`/Patient/${PATIENT(1)}`);
    assert.equal(headers.get('etag'), 'W/"1"');
    assert.equal(headers.get('last-modified'), 'Mon, 01 Jan 2024 10:00:00 GMT');
  });

  test('create gives 201, Location and ETag; server assigns id and version', async () => {
    const { status, headers, body } = await post('/Practitioner', {
      resourceType: 'Practitioner',
      id: 'client-chosen',
      meta: { versionId: '99' },
      name: [{ family: 'Locum' }],
    });
    assert.equal(status, 201);
    assert.notEqual(body.id, 'client-chosen');
    assert.notEqual(body.meta.versionId, '99');
    assert.equal(headers.get('etag'), `W/"${body.meta.versionId}"`);
    assert.equal(headers.get('location'), `${srv.base}/Practitioner/${body.id}/_history/${body.meta.versionId}`);
  });

  test('If-None-Exist makes a create idempotent', async () => {
    const journalId = '0190c7a2-0000-7000-8000-00000000c0de';
    const patient = {
      resourceType: 'Patient',
      identifier: [{ system: 'urn:lifeboat:journal', value: journalId }],
      name: [{ family: 'Replay' }],
    };
    const headers = { 'If-None-Exist': `identifier=urn:lifeboat:journal|${journalId}` };
    const first = await post('/Patient', patient, { headers });
    assert.equal(first.status, 201);
    const second = await post('/Patient', patient, { headers });
    assert.equal(second.status, 200);
    assert.equal(second.body.id, first.body.id);
    const found = (await get(`/Patient?identifier=${encodeURIComponent(`urn:lifeboat:journal|${journalId}`)}`)).body;
    assert.equal(found.total, 1);
  });

  test('If-Match with a stale version is 412; with the current one it updates', async () => {
    const current = await get(`/Patient/${PATIENT(5)}`);
    const updated = { ...current.body, gender: 'unknown' };
    const stale = await put(`/Patient/${PATIENT(5)}`, updated, { headers: { 'If-Match': 'W/"not-the-version"' } });
    assert.equal(stale.status, 412);
    const ok = await put(`/Patient/${PATIENT(5)}`, updated, { headers: { 'If-Match': current.headers.get('etag') } });
    assert.equal(ok.status, 200);
    assert.notEqual(ok.body.meta.versionId, '1');
    assert.equal(ok.headers.get('etag'), `W/"${ok.body.meta.versionId}"`);
    const again = await put(`/Patient/${PATIENT(5)}`, updated, { headers: { 'If-Match': current.headers.get('etag') } });
    assert.equal(again.status, 412);
  });

  test('invalid resources are refused with 400', async () => {
    const { status, body } = await post('/Patient', { resourceType: 'Patient', birthDate: 'last Tuesday' });
    assert.equal(status, 400);
    assert.equal(body.resourceType, 'OperationOutcome');
  });
});

// ---- GP Connect appointment rules ----

describe('appointment rules', () => {
  test('a booking in the past is refused 422 "past appointment"', async () => {
    const past = booking(1, 1, { start: '2024-01-15T09:00:00Z', end: '2024-01-15T09:15:00Z' });
    const { status, body } = await post('/Appointment', past);
    assert.equal(status, 422);
    assert.equal(issueOf(body).code, 'invalid');
    assert.equal(issueOf(body).details.text, 'past appointment');
  });

  test('description over 100 and comment over 500 characters are refused 422', async () => {
    const long = await post('/Appointment', booking(1, 1, { description: 'x'.repeat(101) }));
    assert.equal(long.status, 422);
    assert.equal(issueOf(long.body).code, 'invalid');
    const comment = await post('/Appointment', booking(1, 1, { comment: 'y'.repeat(501) }));
    assert.equal(comment.status, 422);
    assert.equal(await slotStatus(1), 'free');
  });

  test('a busy slot answers 409 DUPLICATE_REJECTED', async () => {
    const { status, body } = await post('/Appointment', booking(8, 3));
    assert.equal(status, 409);
    const coding = issueOf(body).details.coding[0];
    assert.equal(coding.system, SPINE);
    assert.equal(coding.code, 'DUPLICATE_REJECTED');
  });

  test('booking makes the slot busy; booking it again is 409; cancelling frees it', async () => {
    const made = await post('/Appointment', booking(1, 4, { description: 'd'.repeat(100), comment: 'c'.repeat(500) }));
    assert.equal(made.status, 201);
    assert.equal(await slotStatus(1), 'busy');
    assert.equal((await post('/Appointment', booking(1, 5))).status, 409);

    const cancel = await put(
      `/Appointment/${made.body.id}`,
      { ...made.body, status: 'cancelled', cancelationReason: { text: 'Patient request' } },
      { headers: { 'If-Match': made.headers.get('etag') } }
    );
    assert.equal(cancel.status, 200);
    assert.equal(cancel.body.status, 'cancelled');
    assert.equal(await slotStatus(1), 'free');

    // Reinstating a cancelled appointment is not a thing in GP Connect.
    const { cancelationReason: _reason, ...reinstated } = cancel.body;
    const back = await put(`/Appointment/${made.body.id}`, { ...reinstated, status: 'booked' });
    assert.equal(back.status, 422, back.text);
  });

  test('a replayed conditional create returns the first booking, slots untouched', async () => {
    const journalId = '0190c7a2-0000-7000-8000-0000000000b1';
    const appt = booking(4, 6, { identifier: [{ system: 'urn:lifeboat:journal', value: journalId }] });
    const headers = { 'If-None-Exist': `identifier=urn:lifeboat:journal|${journalId}` };
    const first = await post('/Appointment', appt, { headers });
    assert.equal(first.status, 201);
    const slotAfterFirst = (await get(`/Slot/${SLOT(4)}`)).body;
    assert.equal(slotAfterFirst.status, 'busy');

    const replay = await post('/Appointment', appt, { headers });
    assert.equal(replay.status, 200);
    assert.equal(replay.body.id, first.body.id);
    const slotAfterReplay = (await get(`/Slot/${SLOT(4)}`)).body;
    assert.equal(slotAfterReplay.meta.versionId, slotAfterFirst.meta.versionId);
  });

  test('amending a past appointment is refused 422', async () => {
    const past = (await get(`/Appointment/${APPOINTMENT(2)}`)).body;
    const { status, body } = await put(`/Appointment/${past.id}`, { ...past, status: 'cancelled' });
    assert.equal(status, 422);
    assert.equal(issueOf(body).details.text, 'past appointment');
  });

  test('moving an appointment in place is refused (a move is cancel + book)', async () => {
    const appt = (await get(`/Appointment/${APPOINTMENT(1)}`)).body;
    const moved = { ...appt, start: '2099-03-02T11:00:00Z', end: '2099-03-02T11:15:00Z' };
    assert.equal((await put(`/Appointment/${appt.id}`, moved)).status, 422);
    const amended = await put(`/Appointment/${appt.id}`, { ...appt, comment: 'Bring repeat prescription list' });
    assert.equal(amended.status, 200);
  });

  test('two simultaneous bookings of one slot: exactly one succeeds', async () => {
    const results = await Promise.all([post('/Appointment', booking(2, 7)), post('/Appointment', booking(2, 8))]);
    assert.deepEqual(results.map((r) => r.status).sort(), [201, 409]);
    const booked = (await get(`/Appointment?slot=Slot/${SLOT(2)}&status=booked`)).body;
    assert.equal(booked.total, 1);
  });

  test('the rules clock can be moved, making a future slot past', async () => {
    const moved = await control('POST', '/$clock', { now: '2099-03-02T09:40:00Z' });
    assert.equal(moved.body.now, '2099-03-02T09:40:00.000Z');
    try {
      const { status } = await post('/Appointment', booking(3, 9)); // 09:30
      assert.equal(status, 422);
    } finally {
      await control('POST', '/$clock', {});
    }
    assert.equal((await control('GET', '/$clock')).body.offsetMs, 0);
  });

  test('the practice system (bypass header) is not bound by the consumer rules', async () => {
    const past = booking(10, 10, { start: '2024-01-15T09:30:00Z', end: '2024-01-15T09:45:00Z' });
    const { status } = await post('/Appointment', past, { headers: { 'X-Bypass-GP-Connect': 'true' } });
    assert.equal(status, 201);
    assert.equal(await slotStatus(10), 'free'); // no rule side effects either
  });
});

// ---- fault injection ----

describe('faults', () => {
  test('error: 503 with Retry-After, for `count` requests, then back to normal', async () => {
    const set = await setFault({ mode: 'error', status: 503, retryAfter: 7, count: 2 });
    assert.equal(set.status, 200);
    for (let i = 0; i < 2; i++) {
      const r = await get('/Patient?_count=1');
      assert.equal(r.status, 503);
      assert.equal(r.headers.get('retry-after'), '7');
      assert.equal(issueOf(r.body).code, 'transient');
    }
    assert.equal((await get('/Patient?_count=1')).status, 200);
    assert.equal((await control('GET', '/$fault')).body.mode, 'none');
  });

  test('error 429; control endpoints are never faulted', async () => {
    await setFault({ mode: 'error', status: 429 });
    try {
      assert.equal((await get('/metadata')).status, 429);
      assert.equal((await control('GET', '/$stats')).status, 200);
      assert.equal((await control('GET', '/$fault')).body.status, 429);
    } finally {
      await setFault({ mode: 'none' });
    }
    assert.equal((await get('/metadata')).status, 200);
  });

  test('match limits a fault to URLs containing a substring', async () => {
    await setFault({ mode: 'error', match: '/Slot' });
    try {
      assert.equal((await get('/Slot?_count=1')).status, 503);
      assert.equal((await get('/Patient?_count=1')).status, 200);
    } finally {
      await setFault({ mode: 'none' });
    }
  });

  test('slow delays the answer', async () => {
    await setFault({ mode: 'slow', delayMs: 300, count: 1 });
    const t0 = performance.now();
    const r = await get('/Patient?_count=1');
    assert.equal(r.status, 200);
    assert.ok(performance.now() - t0 >= 290);
  });

  test('hang: no answer until the client gives up, or until the fault is lifted', async () => {
    await setFault({ mode: 'hang' });
    await assert.rejects(get('/Patient?_count=1', { signal: AbortSignal.timeout(300) }), { name: 'TimeoutError' });

    const pending = get('/Patient?_count=1');
    await waitFor(async () => (await control('GET', '/$fault')).body.hanging === 1);
    await setFault({ mode: 'none' });
    assert.equal((await pending).status, 200);
  });

  test('drop: the request is processed but the connection is cut mid-body', async () => {
    await setFault({ mode: 'drop', count: 1 });
    const journalId = '0190c7a2-0000-7000-8000-00000000d00d';
    await assert.rejects(
      post('/Patient', { resourceType: 'Patient', identifier: [{ system: 'urn:lifeboat:journal', value: journalId }] })
    );
    const found = (await get(`/Patient?identifier=${encodeURIComponent(`urn:lifeboat:journal|${journalId}`)}`)).body;
    assert.equal(found.total, 1);
  });

  test('malformed: 200 with a body that is not valid JSON', async () => {
    await setFault({ mode: 'malformed', count: 1 });
    const res = await fetch(`${srv.base}/Patient?_count=2`);
    assert.equal(res.status, 200);
    const text = await res.text();
    assert.throws(() => JSON.parse(text));
    assert.equal((await get('/Patient?_count=2')).status, 200);
  });

  test('bad settings are refused', async () => {
    assert.equal((await setFault({ mode: 'explode' })).status, 400);
    assert.equal((await setFault({ mode: 'error', status: 200 })).status, 400);
    assert.equal((await setFault({ mode: 'error', count: 0 })).status, 400);
    assert.equal((await control('GET', '/$fault')).body.mode, 'none');
  });
});

async function waitFor(check, ms = 2000) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('condition not met in time');
}

// ---- stats ----

describe('stats', () => {
  test('counts exactly the FHIR requests made since reset', async () => {
    assert.equal((await control('POST', '/$stats/reset')).status, 200);
    await get('/Patient?_count=5');
    await get('/Patient?_count=5&_offset=5');
    await get(`/Slot/${SLOT(1)}`);
    await get('/Nothing');
    const stats = (await control('GET', '/$stats')).body;
    assert.equal(stats.requests, 4);
    assert.deepEqual(stats.byPath, { '/fhir/Patient': 2, [`/fhir/Slot/${SLOT(1)}`]: 1, '/fhir/Nothing': 1 });
    assert.deepEqual(
      stats.recent.map((r) => [r.method, r.url, r.status]),
      [
        ['GET', '/fhir/Patient?_count=5', 200],
        ['GET', '/fhir/Patient?_count=5&_offset=5', 200],
        ['GET', `/fhir/Slot/${SLOT(1)}`, 200],
        ['GET', '/fhir/Nothing', 404],
      ]
    );
    assert.ok(stats.recent.every((r) => typeof r.ms === 'number'));
  });
});

// ---- lifecycle ----

describe('lifecycle', () => {
  test('exits when stdin closes (with --exit-with-stdin)', async () => {
    const s = await startServer(['--exit-with-stdin']);
    s.proc.stdin.end();
    const [code] = await once(s.proc, 'exit');
    assert.equal(code, 0);
  });

  test('exits cleanly on SIGTERM', async () => {
    const s = await startServer();
    s.proc.kill('SIGTERM');
    const [code] = await once(s.proc, 'exit');
    assert.equal(code, 0);
  });

  test('--now starts the rules clock at a fixture anchor', async () => {
    const s = await startServer(['--now', '2099-03-02T09:40:00Z']);
    try {
      const clock = await (await fetch(`${s.root}/$clock`)).json();
      assert.ok(clock.now >= '2099-03-02T09:40:00.000Z' && clock.now < '2099-03-02T09:41:00.000Z');
      const res = await fetch(`${s.base}/Appointment`, {
        method: 'POST',
        headers: { 'content-type': 'application/fhir+json' },
        body: JSON.stringify(booking(3, 9)), // 09:30, now past
      });
      assert.equal(res.status, 422);
    } finally {
      s.proc.kill('SIGTERM');
    }
  });

  test('refuses a fixture directory it cannot read', async () => {
    const proc = spawn(process.execPath, ['server.mjs', '--fixtures', 'no-such-dir'], { cwd: HERE, stdio: 'ignore' });
    const [code] = await once(proc, 'exit');
    assert.equal(code, 1);
  });
});
