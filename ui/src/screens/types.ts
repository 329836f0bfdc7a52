import type { PatientMatch, StatusView, UserInfo } from '../lib/api';

/** What every screen gets from the shell. */
export interface Ctx {
  user: UserInfo;
  status(): StatusView | null;
  /** Navigates to a route such as `patient/<id>` (hash routing: links work with the keyboard). */
  go(route: string): void;
  refreshStatus(): Promise<void>;
  /** Called with each new status until the screen is left. */
  onStatus(fn: (s: StatusView) => void): void;
  /** Called with sync/reconcile progress until the screen is left. */
  onProgress(fn: (kind: 'sync' | 'reconcile', payload: unknown) => void): void;
  /** The patient last picked at reception, so the slot finder and day book can book for them. */
  patient: PatientMatch | null;
  setPatient(p: PatientMatch | null): void;
}

export interface Screen {
  title: string;
  el: HTMLElement;
  /** Where keyboard focus goes when the screen opens. */
  focus?: HTMLElement;
  dispose?: () => void;
}
