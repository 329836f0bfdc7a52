// GP Connect appointment rules. A real GP Connect provider enforces these, and
// Medplum knows nothing of them, so the wrapper checks each booking or
// amendment before handing it to Medplum, and keeps Slot.status in step after.
//
// The caller serialises every write, so "read slot, check free, create
// appointment, mark slot busy" cannot interleave with another booking.

import { parseSearchRequest } from '@medplum/core';
import { reject } from './outcomes.mjs';

const MAX_DESCRIPTION = 100;
const MAX_COMMENT = 500;

/**
 * @param {object} deps
 * @param {import('./repo.mjs').FastMemoryRepository} deps.repo
 * @param {(method: string, url: string, body: any, headers: object) => Promise<{status: number, body: any}>} deps.route
 *   hands a request to Medplum's router
 * @param {() => number} deps.now - the clock the "past" rule uses (ms since epoch)
 */
export function appointmentRules({ repo, route, now }) {
  const isPast = (instant) => Date.parse(instant) <= now();

  /** POST /Appointment */
  async function create(url, body, headers) {
    // A replayed booking (If-None-Exist matching the first attempt) must get the
    // original back even if it has become past since: check that before any rule.
    const ifNoneExist = headers['if-none-exist'];
    if (ifNoneExist) {
      let matches;
      try {
        matches = await repo.searchResources({ ...parseSearchRequest(`Appointment?${ifNoneExist}`), count: 2 });
      } catch {
        return route('POST', url, body, headers); // a malformed header: Medplum's own 400
      }
      if (matches.length > 0) {
        return route('POST', url, body, headers); // 200 with the existing one, or 412 if several
      }
    }

    const invalid = checkContent(body);
    if (invalid) return invalid;
    if (body.status !== 'booked') {
      return reject(422, 'invalid', 'a new appointment must have status booked', 'INVALID_RESOURCE');
    }
    if (!body.start || Number.isNaN(Date.parse(body.start))) {
      return reject(422, 'invalid', 'appointment start is missing or not an instant', 'INVALID_RESOURCE');
    }
    if (isPast(body.start)) {
      return reject(422, 'invalid', 'past appointment', 'INVALID_RESOURCE');
    }

    const slotRefs = body.slot ?? [];
    if (slotRefs.length === 0) {
      return reject(422, 'invalid', 'an appointment must reference at least one slot', 'INVALID_RESOURCE');
    }
    const slots = [];
    for (const ref of slotRefs) {
      const slot = await readSlot(ref);
      if (!slot) {
        return reject(422, 'invalid', `slot not found: ${ref.reference}`, 'INVALID_REFERENCE');
      }
      if (slot.status !== 'free') {
        return reject(409, 'duplicate', `slot ${slot.id} is not free (${slot.status})`, 'DUPLICATE_REJECTED');
      }
      slots.push(slot);
    }

    const result = await route('POST', url, body, headers);
    if (result.status === 201) {
      for (const slot of slots) {
        await repo.updateResource({ ...slot, status: 'busy' });
      }
    }
    return result;
  }

  /** PUT /Appointment/:id */
  async function update(id, url, body, headers) {
    let existing;
    try {
      existing = await repo.readResource('Appointment', id);
    } catch {
      return reject(404, 'not-found', `Appointment/${id} not found (book with POST)`, 'NO_RECORD_FOUND');
    }
    // Wrong type or id, or a stale If-Match: Medplum's own answer (400 / 412)
    // says it better than a rule would, so let the router produce it.
    if (body?.resourceType !== 'Appointment' || body.id !== id || staleIfMatch(headers['if-match'], existing)) {
      return route('PUT', url, body, headers);
    }

    if (isPast(existing.start) || (body.start && isPast(body.start))) {
      return reject(422, 'invalid', 'past appointment', 'INVALID_RESOURCE');
    }
    const invalid = checkContent(body);
    if (invalid) return invalid;
    if (!sameBooking(existing, body)) {
      return reject(
        422,
        'invalid',
        'start, end, slot and participants cannot be amended (a move is a cancel then a new booking)',
        'INVALID_RESOURCE'
      );
    }
    if (existing.status === 'cancelled' && body.status !== 'cancelled') {
      return reject(422, 'invalid', 'a cancelled appointment cannot be reinstated', 'INVALID_RESOURCE');
    }

    const result = await route('PUT', url, body, headers);
    if (result.status === 200 && body.status === 'cancelled' && existing.status !== 'cancelled') {
      for (const ref of existing.slot ?? []) {
        const slot = await readSlot(ref);
        if (slot && slot.status !== 'free') {
          await repo.updateResource({ ...slot, status: 'free' });
        }
      }
    }
    return result;
  }

  async function readSlot(ref) {
    const match = /(?:^|\/)Slot\/([A-Za-z0-9\-.]{1,64})$/.exec(ref?.reference ?? '');
    if (!match) return undefined;
    try {
      return await repo.readResource('Slot', match[1]);
    } catch {
      return undefined;
    }
  }

  return { create, update };
}

function checkContent(appointment) {
  if (appointment?.description && appointment.description.length > MAX_DESCRIPTION) {
    return reject(422, 'invalid', `description longer than ${MAX_DESCRIPTION} characters`, 'INVALID_RESOURCE');
  }
  if (appointment?.comment && appointment.comment.length > MAX_COMMENT) {
    return reject(422, 'invalid', `comment longer than ${MAX_COMMENT} characters`, 'INVALID_RESOURCE');
  }
  return undefined;
}

function staleIfMatch(ifMatch, existing) {
  if (!ifMatch) return false;
  const m = /"([^"]+)"/.exec(ifMatch);
  return !m || m[1] !== existing.meta?.versionId;
}

// GP Connect has no reschedule: what the booking *is* (when, which slots, who)
// stays fixed; only description, comment and cancellation may change.
function sameBooking(a, b) {
  const instant = (s) => (s ? Date.parse(s) : null);
  const refs = (list) => (list ?? []).map((x) => x?.reference ?? '').sort().join(',');
  const actors = (list) => refs((list ?? []).map((p) => p.actor));
  return (
    instant(a.start) === instant(b.start) &&
    instant(a.end) === instant(b.end) &&
    refs(a.slot) === refs(b.slot) &&
    actors(a.participant) === actors(b.participant)
  );
}
