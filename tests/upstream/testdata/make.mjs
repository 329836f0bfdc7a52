// Writes the small NDJSON practice the server tests run against. The output is
// committed; re-run (`node testdata/make.mjs`) only to change it, and update
// server.test.mjs to match. Ids are fixed-pattern UUIDs so tests can name them.

import { writeFileSync } from 'node:fs';

const dir = new URL('.', import.meta.url);
const id = (prefix, n) => `${prefix}0000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
const meta = (lastUpdated) => ({ versionId: '1', lastUpdated });
const write = (type, resources) =>
  writeFileSync(new URL(`${type}.ndjson`, dir), resources.map((r) => JSON.stringify(r)).join('\n') + '\n');

// NHS numbers in the 999 test range with a valid Modulus 11 check digit.
function nhsNumber(seed) {
  for (let n = seed; ; n++) {
    const digits = `999${String(n).padStart(6, '0')}`.split('').map(Number);
    const sum = digits.reduce((s, d, i) => s + d * (10 - i), 0);
    const check = 11 - (sum % 11);
    if (check === 10) continue;
    return digits.join('') + (check === 11 ? 0 : check);
  }
}

const practitioners = ['Okafor', 'Patel', 'Jones'].map((family, i) => ({
  resourceType: 'Practitioner',
  id: id(1, i + 1),
  meta: meta('2024-01-01T09:00:00.000Z'),
  name: [{ family, given: ['Sam'], prefix: ['Dr'] }],
}));
write('Practitioner', practitioners);

write('Location', [
  { resourceType: 'Location', id: id(2, 1), meta: meta('2024-01-01T09:00:00.000Z'), name: 'Riverside Surgery', status: 'active' },
]);

const families = ['Smith', 'Khan', 'Evans', 'Brown', 'Wilson'];
const patients = Array.from({ length: 25 }, (_, i) => ({
  resourceType: 'Patient',
  id: id(3, i + 1),
  // Day i+1 of January 2024, so `_lastUpdated=gt2024-01-20T10:00:00Z` finds exactly 5.
  meta: meta(`2024-01-${String(i + 1).padStart(2, '0')}T10:00:00.000Z`),
  identifier: [{ system: 'https://fhir.nhs.uk/Id/nhs-number', value: nhsNumber(100 + i * 7) }],
  name: [{ family: families[i % families.length], given: [`Test${i + 1}`] }],
  gender: i % 2 ? 'female' : 'male',
  birthDate: `19${50 + i}-0${(i % 9) + 1}-1${i % 10}`,
  generalPractitioner: [{ reference: `Practitioner/${practitioners[i % 3].id}` }],
}));
write('Patient', patients);

const schedule = {
  resourceType: 'Schedule',
  id: id(4, 1),
  meta: meta('2024-01-01T09:00:00.000Z'),
  active: true,
  actor: [{ reference: `Practitioner/${practitioners[0].id}` }, { reference: `Location/${id(2, 1)}` }],
};
write('Schedule', [schedule]);

// Slots 1-8 are far in the future (8 busy), 9-10 in the past. 7 and 9 are booked below.
const at = (day, minute) => new Date(Date.UTC(...day, 9, minute)).toISOString().replace('.000Z', 'Z');
const FUTURE = [2099, 2, 2];
const PAST = [2024, 0, 15];
const slots = Array.from({ length: 10 }, (_, i) => {
  const n = i + 1;
  const day = n <= 8 ? FUTURE : PAST;
  const minute = (n <= 8 ? i : i - 8) * 15;
  return {
    resourceType: 'Slot',
    id: id(5, n),
    meta: meta('2024-01-01T09:00:00.000Z'),
    schedule: { reference: `Schedule/${schedule.id}` },
    status: [7, 8, 9].includes(n) ? 'busy' : 'free',
    start: at(day, minute),
    end: at(day, minute + 15),
  };
});
write('Slot', slots);

const appointment = (n, slot, patient) => ({
  resourceType: 'Appointment',
  id: id(6, n),
  meta: meta('2024-01-01T09:00:00.000Z'),
  status: 'booked',
  description: 'Routine review',
  start: slot.start,
  end: slot.end,
  slot: [{ reference: `Slot/${slot.id}` }],
  participant: [
    { actor: { reference: `Patient/${patient.id}` }, status: 'accepted' },
    { actor: { reference: `Practitioner/${practitioners[0].id}` }, status: 'accepted' },
    { actor: { reference: `Location/${id(2, 1)}` }, status: 'accepted' },
  ],
});
write('Appointment', [appointment(1, slots[6], patients[0]), appointment(2, slots[8], patients[1])]);
