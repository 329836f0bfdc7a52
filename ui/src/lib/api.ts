// The one door from the UI to the core: a typed wrapper over Tauri's `invoke` for each command
// in docs/ui-contract.md, and the contract's events. Screens never call `invoke` directly.

import { invoke } from '@tauri-apps/api/core';
import { listen, type UnlistenFn } from '@tauri-apps/api/event';

// ---- Errors ---------------------------------------------------------------------------------

/** Every command rejects with this: `code` to branch on, `message` to show a person. */
export class AppError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'AppError';
  }

  /** Whatever a rejected `invoke` gave us, as an AppError (the shell may reject with a string). */
  static from(e: unknown): AppError {
    if (e instanceof AppError) return e;
    if (e && typeof e === 'object' && 'code' in e && 'message' in e) {
      const o = e as { code: unknown; message: unknown };
      return new AppError(String(o.code), String(o.message));
    }
    if (typeof e === 'string') return new AppError('internal', e);
    if (e instanceof Error) return new AppError('internal', e.message);
    return new AppError('internal', 'Something went wrong. Please try again.');
  }
}

/** Fired on `window` when any command finds the session locked or gone, so the shell can
 * show the unlock or sign-in screen whichever screen was in use. */
export const SESSION_LOST = 'lifeboat:session-lost';
/** Commands that are part of the session flow itself, or quiet polling: never signal. */
const SESSION_FLOW = new Set(['session_state', 'setup', 'login', 'lock', 'unlock', 'logout', 'touch', 'status']);

async function call<T>(command: string, args?: Record<string, unknown>): Promise<T> {
  try {
    return await invoke<T>(command, args);
  } catch (e) {
    const err = AppError.from(e);
    if ((err.code === 'locked' || err.code === 'not_logged_in') && !SESSION_FLOW.has(command)) {
      window.dispatchEvent(new CustomEvent<AppError>(SESSION_LOST, { detail: err }));
    }
    throw err;
  }
}

// ---- Session --------------------------------------------------------------------------------

export type Role = 'receptionist' | 'clinician' | 'manager';
export interface UserInfo {
  username: string;
  displayName: string;
  role: Role;
  workstation: string;
}
export interface SessionState {
  setupNeeded: boolean;
  user: UserInfo | null;
  locked: boolean;
}

// ---- Status ---------------------------------------------------------------------------------

export type Mode = 'online' | 'offline' | 'recovering' | 'reconciling';
export interface StatusView {
  mode: Mode;
  declared: boolean;
  drill: boolean;
  dataAsOf: string;
  dataAgeSeconds: number | null;
  unsettledChanges: number;
  lastSyncError: string | null;
  upstream: string | null;
}
export interface SyncSummary {
  fetched: number;
  written: number;
  rejected: number;
  removed: number;
  requests: number;
  elapsedMs: number;
}

// ---- Patients -------------------------------------------------------------------------------

export interface PatientMatch {
  id: string;
  title: string | null;
  family: string;
  given: string;
  birthDate: string | null;
  age: number | null;
  nhsNumber: string | null;
  addressLine: string | null;
  postcode: string | null;
  gpName: string | null;
  deceased: boolean;
}
export interface SummaryLine {
  text: string;
  detail: string | null;
  status: string | null;
  date: string | null;
}
export interface PatientOverview {
  patient: PatientMatch;
  phone: string | null;
  alerts: SummaryLine[];
  appointments: AppointmentView[];
  dataAsOf: string;
}
export interface OfflineNote {
  journalId: string;
  patientId: string;
  appointmentId: string | null;
  author: string;
  text: string;
  writtenAt: string;
}
export interface ClinicalSummary {
  patient: PatientMatch;
  alerts: SummaryLine[];
  allergies: SummaryLine[];
  medications: SummaryLine[];
  problems: SummaryLine[];
  results: SummaryLine[];
  immunisations: SummaryLine[];
  encounters: SummaryLine[];
  offlineNotes: OfflineNote[];
  dataAsOf: string;
}

// ---- Appointment book -----------------------------------------------------------------------

export interface Practitioner {
  id: string;
  name: string;
}
export interface SlotView {
  id: string;
  practitionerId: string | null;
  practitionerName: string | null;
  locationName: string | null;
  start: string;
  end: string;
  serviceType: string | null;
  available: boolean;
}
export interface PatientBrief {
  id: string;
  title: string | null;
  family: string;
  given: string;
  birthDate: string | null;
  nhsNumber: string | null;
  phone: string | null;
  deceased: boolean;
}
export interface AppointmentView {
  id: string;
  source: 'upstream' | 'offline';
  status: string;
  changedOffline: boolean;
  slotId: string | null;
  patient: PatientBrief | null;
  practitionerName: string | null;
  start: string;
  end: string;
  description: string | null;
}
export interface DiaryLine {
  slot: SlotView;
  appointment: AppointmentView | null;
}
export interface DayBook {
  date: string;
  lines: DiaryLine[];
  dataAsOf: string;
}
export type JournalKind = 'book' | 'move' | 'cancel' | 'arrived' | 'did_not_attend' | 'note';
export type JournalState = 'pending' | 'applied' | 'conflict' | 'failed' | 'superseded' | 'discarded';
export interface JournalEntry {
  id: string;
  kind: JournalKind;
  author: string;
  createdAt: string;
  state: JournalState;
}
export interface Confirmation {
  journal: JournalEntry;
  appointment: AppointmentView | null;
}
export type Attendance = 'arrived' | 'did_not_attend';

// ---- Manager --------------------------------------------------------------------------------

export type Choice = 'keep_upstream' | 'rebook' | 'retry' | 'cancel_anyway' | 'manual';
export interface ConflictView {
  journalId: string;
  kind: string;
  summary: string;
  ours: unknown;
  upstream: unknown | null;
  choices: Choice[];
  nearestSlots: SlotView[];
  /** `Patient/id` and `Practitioner/id` references on either side, named from the cache. */
  names: Record<string, string>;
}
export interface StepOutcome {
  entries: string[];
  summary: string;
  result: { result: string; kind?: string; upstreamId?: string };
}
export interface ReconcileReport {
  dryRun: boolean;
  steps: StepOutcome[];
  stopped: string | null;
}
export interface WorkItem {
  id: number;
  journalId: string;
  kind: 'note' | 'past_change' | 'manual';
  summary: string;
  createdAt: string;
  doneBy: string | null;
  doneAt: string | null;
}
export interface Account {
  username: string;
  displayName: string;
  role: Role;
  disabled: boolean;
}
export interface AuditCheck {
  entries: number;
  ok: boolean;
  problem: string | null;
}
export interface DrillSummary {
  changes: number;
  byKind: Record<string, number>;
}

// ---- Commands -------------------------------------------------------------------------------

export const api = {
  sessionState: () => call<SessionState>('session_state'),
  setup: (username: string, displayName: string, password: string) =>
    call<UserInfo>('setup', { username, displayName, password }),
  login: (username: string, password: string) => call<UserInfo>('login', { username, password }),
  lock: () => call<void>('lock'),
  unlock: (password: string) => call<UserInfo>('unlock', { password }),
  logout: () => call<void>('logout'),
  /** Activity that is not itself a command (typing a long note) keeps the session from idling out. */
  touch: () => call<void>('touch'),

  status: () => call<StatusView>('status'),
  declareOutage: () => call<StatusView>('declare_outage'),
  endOutage: () => call<StatusView>('end_outage'),
  syncNow: () => call<SyncSummary>('sync_now'),

  searchPatients: (query: string, limit?: number) =>
    call<PatientMatch[]>('search_patients', { query, limit }),
  patientOverview: (patientId: string) => call<PatientOverview>('patient_overview', { patientId }),
  patientSummary: (patientId: string) => call<ClinicalSummary>('patient_summary', { patientId }),
  writeNote: (patientId: string, text: string, appointmentId?: string) =>
    call<OfflineNote>('write_note', { patientId, appointmentId, text }),

  practitioners: () => call<Practitioner[]>('practitioners'),
  dayBook: (date: string, practitionerId?: string) =>
    call<DayBook>('day_book', { date, practitionerId }),
  freeSlots: (q: { practitionerId?: string; from?: string; days?: number; limit?: number }) =>
    call<SlotView[]>('free_slots', q),
  book: (slotId: string, patientId: string, description?: string, comment?: string) =>
    call<Confirmation>('book', { slotId, patientId, description, comment }),
  cancelAppointment: (appointmentId: string, reason: string) =>
    call<Confirmation>('cancel_appointment', { appointmentId, reason }),
  moveAppointment: (appointmentId: string, slotId: string) =>
    call<Confirmation>('move_appointment', { appointmentId, slotId }),
  markAttendance: (appointmentId: string, attendance: Attendance) =>
    call<Confirmation>('mark_attendance', { appointmentId, attendance }),
  journal: () => call<JournalEntry[]>('journal'),

  reconcile: (dryRun: boolean) => call<ReconcileReport>('reconcile', { dryRun }),
  conflicts: () => call<ConflictView[]>('conflicts'),
  resolveConflict: (journalId: string, choice: Choice, slotId?: string, reason?: string) =>
    call<JournalEntry>('resolve_conflict', { journalId, choice, slotId, reason }),
  worklist: (includeDone?: boolean) => call<WorkItem[]>('worklist', { includeDone }),
  completeWorkItem: (id: number) => call<WorkItem[]>('complete_work_item', { id }),
  accounts: () => call<Account[]>('accounts'),
  addAccount: (username: string, displayName: string, role: Role, password: string) =>
    call<Account>('add_account', { username, displayName, role, password }),
  disableAccount: (username: string) => call<Account[]>('disable_account', { username }),
  resetPassword: (username: string, password: string) =>
    call<void>('reset_password', { username, password }),
  auditVerify: () => call<AuditCheck>('audit_verify'),
  auditExport: (q: { from?: string; to?: string; patientId?: string }) =>
    call<string>('audit_export', q),
  startDrill: () => call<StatusView>('start_drill'),
  endDrill: () => call<DrillSummary>('end_drill'),
};

// ---- Events ---------------------------------------------------------------------------------

export interface SyncProgressEvent {
  kind: string;
  pass: string;
  done: number;
  total: number | null;
}
export interface ReconcileProgressEvent {
  /** Steps done so far, counted from 1. */
  index: number;
  steps: number;
}
export interface LockedEvent {
  reason: string;
}

export interface Events {
  'lifeboat://status': StatusView;
  'lifeboat://sync-progress': SyncProgressEvent;
  'lifeboat://reconcile-progress': ReconcileProgressEvent;
  'lifeboat://locked': LockedEvent;
}

export function on<E extends keyof Events>(
  event: E,
  handler: (payload: Events[E]) => void,
): Promise<UnlistenFn> {
  return listen<Events[E]>(event, (e) => handler(e.payload));
}
