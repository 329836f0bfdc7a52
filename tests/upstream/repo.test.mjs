// FastMemoryRepository must find exactly what Medplum's own MemoryRepository
// finds: it only changes how fast, not what.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseSearchRequest } from '@medplum/core';
import { MemoryRepository } from '@medplum/fhir-router';
import { FastMemoryRepository, indexDefinitions, loadFixtures } from './lib/repo.mjs';

indexDefinitions();
const repo = new FastMemoryRepository();
await loadFixtures(repo, fileURLToPath(new URL('testdata', import.meta.url)));

const ids = (bundle) => (bundle.entry ?? []).map((e) => e.resource.id);
const medplum = (query) => MemoryRepository.prototype.search.call(repo, query);

test('_lastUpdated fast path agrees with Medplum for every operator and precision', async () => {
  const values = [
    '2024',
    '2024-01',
    '2024-01-20',
    '2024-01-20T10:00:00Z',
    '2024-01-20T10:00:00.000Z',
    '2024-01-20T09:59:59.999Z',
    '2024-01-20T10:00:00.001Z',
    '2024-01-20T11:00:00+01:00',
    // (Medplum's parser refuses comma-separated dates for _lastUpdated.)
  ];
  for (const op of ['', 'eq', 'ap', 'gt', 'ge', 'lt', 'le', 'sa', 'eb', 'ne']) {
    for (const value of values) {
      const query = { _lastUpdated: op + value };
      const fast = await repo.search(parseSearchRequest('Patient', query));
      const slow = await medplum(parseSearchRequest('Patient', query));
      assert.deepEqual(ids(fast), ids(slow), `_lastUpdated=${op}${value}`);
      assert.equal(fast.total, slow.total);
    }
  }
});

test('identifier fast path agrees with Medplum for systems, values, case and lists', async () => {
  // Give a few patients extra identifiers, one without a system, to tell the cases apart.
  const patients = (await repo.search(parseSearchRequest('Patient', { _count: '4' }))).entry.map((e) => e.resource);
  const extra = [
    [{ system: 'urn:lifeboat:offline-change', value: '01A-Change' }],
    [{ system: 'urn:lifeboat:offline-change', value: '01a-other' }, { value: 'no-system' }],
    [{ system: 'urn:other', value: '01a-change' }],
    [{ value: '01a-change' }, { type: { text: 'Lifeboat' }, system: 'urn:typed', value: 'T1' }],
  ];
  for (const [i, p] of patients.entries()) {
    await repo.updateResource({ ...p, identifier: [...(p.identifier ?? []), ...extra[i]] });
  }
  const nhs = patients[0].identifier?.[0];
  const queries = [
    'urn:lifeboat:offline-change|01a-change',
    'urn:lifeboat:offline-change|01A-CHANGE',
    'URN:LIFEBOAT:OFFLINE-CHANGE|01a-other',
    'urn:lifeboat:offline-change|',
    'urn:other|01a-change',
    '|01a-change',
    '|no-system',
    '01a-change',
    'no-system',
    '|',
    'urn:lifeboat:offline-change|01a-change,urn:other|01a-change',
    'urn:lifeboat:offline-change|nothing',
    `${nhs.system}|${nhs.value}`,
    'lifeboat',
    '|Lifeboat',
    'urn:typed|t1',
  ];
  for (const identifier of queries) {
    const query = { identifier };
    const fast = await repo.search(parseSearchRequest('Patient', query));
    const slow = await medplum(parseSearchRequest('Patient', query));
    assert.deepEqual(ids(fast), ids(slow), `identifier=${identifier}`);
    assert.equal(fast.total, slow.total);
  }
  assert.ok((await repo.search(parseSearchRequest('Patient', { identifier: queries[0] }))).total >= 1);
});

test('identifier index follows creates, updates and deletes, in the type\'s order', async () => {
  const marker = { system: 'urn:lifeboat:offline-change', value: 'Index-1' };
  const query = () => parseSearchRequest('Patient', { identifier: 'urn:lifeboat:offline-change|index-1' });
  const same = async (expected) => {
    const fast = await repo.search(query());
    assert.deepEqual(ids(fast), ids(await medplum(query())));
    assert.equal(fast.total, expected);
    return ids(fast);
  };
  await same(0);
  const a = await repo.createResource({ resourceType: 'Patient', identifier: [marker] });
  const b = await repo.createResource({ resourceType: 'Patient', identifier: [marker] });
  assert.deepEqual(await same(2), [a.id, b.id]);
  // An update keeps a's place; dropping the identifier takes it out of the index.
  await repo.updateResource({ ...a, gender: 'female' });
  assert.deepEqual(await same(2), [a.id, b.id]);
  await repo.updateResource({ ...a, identifier: [{ system: 'urn:other', value: 'Index-1' }] });
  assert.deepEqual(await same(1), [b.id]);
  await repo.updateResource({ ...a, identifier: [marker] });
  assert.deepEqual(await same(2), [a.id, b.id]);
  const byId = async () => ids(await repo.search(parseSearchRequest('Patient', { _id: `${b.id},${a.id}` })));
  assert.deepEqual(await byId(), [a.id, b.id]);
  await repo.deleteResource('Patient', b.id);
  assert.deepEqual(await same(1), [a.id]);
  assert.deepEqual(await byId(), [a.id]);
  await repo.deleteResource('Patient', a.id);
  await same(0);
});

test('patient reference-list fast path agrees with Medplum, and leaves Appointment alone', async () => {
  const patients = (await repo.search(parseSearchRequest('Patient', { _count: '3' }))).entry.map((e) => e.resource.id);
  for (const [i, id] of patients.entries()) {
    await repo.createResource({ resourceType: 'Condition', subject: { reference: `Patient/${id}` }, code: { text: `c${i}` } });
    await repo.createResource({ resourceType: 'AllergyIntolerance', patient: { reference: `Patient/${id}` }, code: { text: `a${i}` } });
  }
  const queries = [
    `Patient/${patients[0]}`,
    `Patient/${patients[0]},Patient/${patients[2]}`,
    'Patient/nobody',
  ];
  for (const type of ['Condition', 'AllergyIntolerance', 'Appointment']) {
    for (const code of ['patient', 'subject']) {
      for (const value of queries) {
        const query = { [code]: value };
        let slow;
        try {
          slow = await medplum(parseSearchRequest(type, query));
        } catch {
          continue; // no such parameter on this type
        }
        const fast = await repo.search(parseSearchRequest(type, query));
        assert.deepEqual(ids(fast), ids(slow), `${type}?${code}=${value}`);
      }
    }
  }
  assert.equal((await repo.search(parseSearchRequest('Condition', { patient: queries[1] }))).total, 2);
});

test('_id fast path agrees with Medplum for one id, lists, case and system forms', async () => {
  const all = (await repo.search(parseSearchRequest('Patient', { _count: '30' }))).entry.map((e) => e.resource.id);
  const queries = [
    all[3],
    all[3].toUpperCase(),
    `${all[1]},${all[7]},${all[2]},no-such-id`,
    `|${all[5]}`,
    `urn:x|${all[5]}`,
    'no-such-id',
  ];
  for (const _id of queries) {
    const query = { _id };
    const fast = await repo.search(parseSearchRequest('Patient', query));
    const slow = await medplum(parseSearchRequest('Patient', query));
    assert.deepEqual(ids(fast), ids(slow), `_id=${_id}`);
    assert.equal(fast.total, slow.total);
  }
  assert.equal((await repo.search(parseSearchRequest('Patient', { _id: queries[2] }))).total, 3);
});

test('filters, paging and cache invalidation match a fresh Medplum search', async () => {
  const query = { status: 'free', _count: '2', _offset: '1' };
  const before = await repo.search(parseSearchRequest('Slot', query));
  assert.deepEqual(ids(before), ids(await medplum(parseSearchRequest('Slot', query))));

  // A write must invalidate the remembered matches for that type.
  const slot = await repo.readResource('Slot', before.entry[0].resource.id);
  await repo.updateResource({ ...slot, status: 'busy' });
  const after = await repo.search(parseSearchRequest('Slot', query));
  assert.deepEqual(ids(after), ids(await medplum(parseSearchRequest('Slot', query))));
  assert.notDeepEqual(ids(after), ids(before));
  assert.equal(after.total, before.total - 1);
});

test('_sort orders by the first rule first', async () => {
  const query = { _sort: 'gender,-birthdate', _count: '100' };
  const sorted = (await repo.search(parseSearchRequest('Patient', query))).entry.map((e) => e.resource);
  for (let i = 1; i < sorted.length; i++) {
    const [a, b] = [sorted[i - 1], sorted[i]];
    assert.ok(a.gender < b.gender || (a.gender === b.gender && a.birthDate >= b.birthDate), `${i}`);
  }
});

test('search results are copies: changing one does not change the store', async () => {
  const first = (await repo.search(parseSearchRequest('Patient', { _count: '1' }))).entry[0].resource;
  first.name = [{ family: 'Changed' }];
  const again = await repo.readResource('Patient', first.id);
  assert.notEqual(again.name[0].family, 'Changed');
});
