// The choices a manager is offered for a conflict, in the practice's words, and what each
// one needs before it can be sent (a slot for a re-booking, a reason for keeping upstream).

import type { Choice, ConflictView } from '../api';
import { formatDateTime } from '../time/format';

export interface ChoiceInfo {
  choice: Choice;
  label: string;
  hint: string;
  needsSlot: boolean;
  needsReason: boolean;
}

const INFO: Record<Choice, Omit<ChoiceInfo, 'choice'>> = {
  keep_upstream: {
    label: 'Keep what the clinical system has',
    hint: 'The offline change is discarded. Say why: it is kept in the audit log.',
    needsSlot: false,
    needsReason: true,
  },
  rebook: {
    label: 'Re-book into another slot',
    hint: 'Pick one of the nearest free slots below.',
    needsSlot: true,
    needsReason: false,
  },
  retry: {
    label: 'Try again',
    hint: 'Send the offline change again as it is.',
    needsSlot: false,
    needsReason: false,
  },
  cancel_anyway: {
    label: 'Cancel anyway',
    hint: 'Cancel the appointment in the clinical system even though it changed there.',
    needsSlot: false,
    needsReason: false,
  },
  manual: {
    label: 'Enter it by hand',
    hint: 'Move it to the back-entry worklist to be entered in the clinical system by hand.',
    needsSlot: false,
    needsReason: false,
  },
};

export function choiceInfo(c: Choice): ChoiceInfo {
  return { choice: c, ...(INFO[c] ?? { label: c, hint: '', needsSlot: false, needsReason: false }) };
}

export function choicesFor(conflict: ConflictView): ChoiceInfo[] {
  return conflict.choices.map(choiceInfo);
}

/** Why the chosen resolution cannot be sent yet, or null when it can. */
export function resolutionProblem(c: Choice | null, slotId: string | null, reason: string): string | null {
  if (!c) return 'Choose what to do with this change.';
  const info = choiceInfo(c);
  if (info.needsSlot && !slotId) return 'Choose a slot to re-book into.';
  if (info.needsReason && !reason.trim()) return 'Give a reason for keeping what the clinical system has.';
  return null;
}

/** One side of a conflict as label/value rows, for the side-by-side view. Text only.
 * Both shapes are read the same way (the journal's change, with `patient_id`-style fields,
 * and the upstream's FHIR resource, with participants), so the two columns line up; people
 * are named from `names` (the cache's `Patient/id` and `Practitioner/id` labels). */
export function sideRows(side: unknown, names: Record<string, string> = {}): [string, string][] {
  if (side === null || side === undefined) return [['', 'Nothing: it no longer exists in the clinical system']];
  if (typeof side !== 'object') return [['', String(side)]];
  const o = side as Record<string, unknown>;
  const refs = Array.isArray(o.participant)
    ? (o.participant as { actor?: { reference?: string; display?: string } }[]).map((p) => p.actor ?? {})
    : [];
  const ref = (type: string, id: unknown) => {
    const actor = refs.find((a) => a.reference?.startsWith(`${type}/`));
    const reference = actor?.reference ?? (typeof id === 'string' && id ? `${type}/${id}` : null);
    return (reference && names[reference]) ?? actor?.display ?? reference;
  };
  const rows: [string, string][] = [];
  const add = (label: string, v: unknown) => {
    if (v !== null && v !== undefined && v !== '') rows.push([label, showValue(v)]);
  };
  add('Status', o.status);
  add('Start', o.start);
  add('End', o.end);
  add('Patient', ref('Patient', o.patient_id));
  add('Clinician', ref('Practitioner', o.practitioner_id));
  add('Description', o.description);
  add('Comment', o.comment);
  add('Reason', o.reason);
  const shown = new Set(['status', 'start', 'end', 'participant', 'description', 'comment', 'reason']);
  const hidden = /^(id|meta|resourceType|text|identifier|slot|contained|extension)$|Id$|_id$|[Vv]ersion/;
  for (const [k, v] of Object.entries(o)) {
    if (shown.has(k) || hidden.test(k) || v === null || v === undefined || typeof v === 'object') continue;
    rows.push([humanKey(k), showValue(v)]);
  }
  return rows;
}

function showValue(v: unknown): string {
  if (typeof v === 'string' && /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/.test(v)) return formatDateTime(v);
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}

function humanKey(k: string): string {
  const words = k.replace(/([a-z])([A-Z])/g, '$1 $2').replace(/_/g, ' ').toLowerCase();
  return words.charAt(0).toUpperCase() + words.slice(1);
}
