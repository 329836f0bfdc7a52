// Manager screens: sync and modes (sync now, declare/end outage, drills), reconciliation
// with conflict review, the back-entry worklist, staff accounts, and the audit log.

import { api, AppError, type Choice, type ConflictView, type ReconcileReport, type Role, type StatusView, type SyncProgressEvent } from '../lib/api';
import { choicesFor, resolutionProblem, sideRows } from '../lib/conflicts/choices';
import { h, fill, uid } from '../lib/dom';
import { button, card, errorSummary, heading, inset, panel, select, summaryList, table, tag, textArea, textField } from '../lib/nhs';
import { formatDateTime, formatTime } from '../lib/time/format';
import { slotText } from '../lib/booking/confirm';
import type { Ctx, Screen } from './types';

const MODE_NAMES: Record<string, string> = { online: 'Online', offline: 'Offline', recovering: 'Recovering', reconciling: 'Reconciling' };

export async function manageScreen(ctx: Ctx): Promise<Screen> {
  const errors = errorSummary();
  const statusBox = h('div', { attrs: { 'data-testid': 'status' } });
  const result = h('div', { attrs: { role: 'status' } });
  const progress = h('p', { class: 'lb-progress', attrs: { 'aria-live': 'polite', 'data-testid': 'sync-progress' } });
  const journalBox = h('div');
  const guard = async <T>(f: () => Promise<T>): Promise<T | undefined> => {
    errors.show(null);
    try {
      return await f();
    } catch (e) {
      errors.show(AppError.from(e));
      return undefined;
    }
  };
  const drawStatus = (s: StatusView | null) => {
    if (!s) return;
    fill(
      statusBox,
      s.dataAgeSeconds === null && !s.drill
        ? inset('Nothing has been copied from the clinical system yet. Press Sync now to copy the practice’s patients, summaries and appointment book to this computer.')
        : null,
      summaryList([
        ['Mode', h('span', { attrs: { 'data-testid': 'status-mode' } }, `${MODE_NAMES[s.mode] ?? s.mode}${s.declared ? ' (outage declared)' : ''}${s.drill ? ' — DRILL' : ''}`)],
        ['Data', s.dataAsOf],
        ['Changes held locally', String(s.unsettledChanges)],
        ['Clinical system', s.upstream ?? 'not configured'],
        ['Last sync problem', s.lastSyncError ?? 'none'],
      ]),
      h(
        'div',
        { class: 'nhsuk-button-group' },
        button('Sync now', () => void syncNow(), { testid: 'sync-now' }),
        s.declared || s.mode === 'offline'
          ? button('End outage', () => void guard(async () => (await api.endOutage(), ctx.refreshStatus())), { variant: 'secondary', testid: 'end-outage' })
          : button('Declare outage', () => void guard(async () => (await api.declareOutage(), ctx.refreshStatus())), { variant: 'warning', testid: 'declare-outage' }),
        s.drill
          ? button('End drill', () => void endDrill(), { variant: 'secondary', testid: 'end-drill' })
          : button('Start a practice drill', () => void guard(async () => (await api.startDrill(), await ctx.refreshStatus(), void drawJournal(), fill(result, inset('Drill started: everything is now marked PRACTICE — NOT REAL, and nothing reaches the clinical system.')))), { variant: 'secondary', testid: 'start-drill' }),
      ),
    );
  };
  const syncNow = async () => {
    progress.textContent = 'Syncing…';
    const r = await guard(() => api.syncNow());
    progress.textContent = '';
    if (r) fill(result, panel('Sync finished', h('p', null, `${r.fetched} fetched, ${r.written} written, ${r.removed} removed, ${r.rejected} rejected, in ${(r.elapsedMs / 1000).toFixed(1)} s.`)));
    await ctx.refreshStatus();
    void drawJournal();
  };
  const endDrill = async () => {
    const r = await guard(() => api.endDrill());
    await ctx.refreshStatus();
    void drawJournal();
    if (r) fill(result, panel('Drill ended', h('p', null, r.changes === 1 ? '1 practice change was made and thrown away.' : `${r.changes} practice changes were made and thrown away.`), h('ul', null, Object.entries(r.byKind).map(([k, n]) => h('li', null, `${k}: ${n}`)))));
  };
  const drawJournal = async () => {
    const j = await api.journal().catch(() => null);
    if (!j) return fill(journalBox);
    fill(journalBox, heading('Changes held locally', 2), j.length ? table('Offline changes', ['When', 'What', 'Who', 'State'], j.map((e) => [formatDateTime(e.createdAt), e.kind.replace(/_/g, ' '), e.author, e.state]), { captionHidden: true, testid: 'journal' }) : h('p', null, 'None.'));
  };
  ctx.onStatus(drawStatus);
  // Three streams of types sync side by side: show the latest three (the booked patients'
  // summaries, which go through the types, as one).
  const active = new Map<string, SyncProgressEvent>();
  ctx.onProgress((kind, p) => {
    if (kind !== 'sync') return;
    const e = p as SyncProgressEvent;
    const key = e.pass === 'Priority' ? e.pass : `${e.kind} ${e.pass}`;
    active.delete(key);
    active.set(key, e);
    if (active.size > 3) active.delete(active.keys().next().value as string);
    progress.textContent = `Syncing ${[...active.values()].map((a) => `${a.kind} (${a.pass}): ${a.done}${a.total ? ` of ${a.total}` : ''}`).join('; ')}`;
  });
  drawStatus(ctx.status());
  void drawJournal();
  const el = h('div', { attrs: { 'data-screen': 'manage' } }, heading('Sync and outage', 1, true), errors.el, statusBox, progress, result, journalBox);
  return { title: 'Sync and outage', el, focus: el.querySelector('h1') as HTMLElement };
}

export async function reconcileScreen(ctx: Ctx): Promise<Screen> {
  const errors = errorSummary();
  const reportBox = h('div', { attrs: { 'data-testid': 'reconcile-report' } });
  const progress = h('p', { class: 'lb-progress', attrs: { 'aria-live': 'polite' } });
  const conflictsBox = h('div', { attrs: { 'data-testid': 'conflicts' } });
  const run = async (dryRun: boolean) => {
    errors.show(null);
    progress.textContent = dryRun ? 'Working out what would be sent…' : 'Reconciling…';
    try {
      showReport(await api.reconcile(dryRun));
    } catch (e) {
      errors.show(AppError.from(e));
    }
    progress.textContent = '';
    await ctx.refreshStatus();
    await drawConflicts();
  };
  const showReport = (r: ReconcileReport) =>
    fill(
      reportBox,
      heading(r.dryRun ? 'Dry run: what would happen' : 'Reconciliation result', 2),
      r.stopped ? inset(`Stopped: ${r.stopped}`) : null,
      r.steps.length ? table('Steps', ['Change', 'Outcome'], r.steps.map((s) => [s.summary, h('span', null, tag(s.result.result.replace(/_/g, ' '), s.result.result === 'applied' || s.result.result === 'would_apply' ? 'green' : s.result.result === 'conflict' ? 'red' : 'grey'))]), { captionHidden: true }) : h('p', null, 'Nothing to send.'),
    );
  const drawConflicts = async () => {
    let list: ConflictView[] = [];
    try {
      list = await api.conflicts();
    } catch (e) {
      errors.show(AppError.from(e));
    }
    fill(conflictsBox, heading('Conflicts to review', 2), list.length ? list.map((c) => conflictCard(c, drawConflicts)) : h('p', { attrs: { 'data-testid': 'no-conflicts' } }, 'No conflicts.'));
  };
  ctx.onProgress((kind, p) => {
    if (kind === 'reconcile') {
      const e = p as { index: number; steps: number };
      progress.textContent = `${Math.min(e.index, e.steps)} of ${e.steps} changes sent`;
    }
  });
  await drawConflicts();
  const el = h(
    'div',
    { attrs: { 'data-screen': 'reconcile' } },
    heading('Reconcile offline changes', 1, true),
    h('p', null, 'Sends the changes made while the clinical system was down, in order, exactly once. Anything that clashes with a change made there meanwhile is held for you to review below.'),
    errors.el,
    h('div', { class: 'nhsuk-button-group' }, button('Dry run', () => void run(true), { variant: 'secondary', testid: 'dry-run' }), button('Reconcile now', () => void run(false), { testid: 'reconcile-run' })),
    progress,
    reportBox,
    conflictsBox,
  );
  return { title: 'Reconcile', el, focus: el.querySelector('h1') as HTMLElement };
}

/** One conflict: both sides side by side, the offered choices, nearest slots, reason. */
export function conflictCard(c: ConflictView, after: () => void): HTMLElement {
  const errors = errorSummary();
  const name = uid('choice');
  let choice: Choice | null = null;
  let slotId: string | null = null;
  const reason = textArea('Reason', { name: 'reason', rows: 2, hint: 'Needed when keeping what the clinical system has.' });
  const slotsBox = h('div', { attrs: { hidden: true } });
  const reasonBox = h('div', { attrs: { hidden: true } }, reason.group);
  const choices = choicesFor(c);
  const radios = h(
    'div',
    { class: 'nhsuk-radios' },
    choices.map((info) => {
      const id = uid('choice');
      return h(
        'div',
        { class: 'nhsuk-radios__item' },
        h('input', {
          class: 'nhsuk-radios__input',
          attrs: { id, name, type: 'radio', value: info.choice, 'aria-describedby': `${id}-hint`, 'data-testid': `choice-${info.choice}` },
          on: {
            change: () => {
              choice = info.choice;
              slotsBox.hidden = !info.needsSlot;
              reasonBox.hidden = !info.needsReason;
            },
          },
        }),
        h('label', { class: 'nhsuk-label nhsuk-radios__label', attrs: { for: id, 'data-testid': `choice-label-${info.choice}` } }, info.label),
        h('div', { class: 'nhsuk-hint nhsuk-radios__hint', attrs: { id: `${id}-hint` } }, info.hint),
      );
    }),
  );
  const slotName = uid('slot');
  fill(
    slotsBox,
    c.nearestSlots.length
      ? h(
          'fieldset',
          { class: 'nhsuk-fieldset' },
          h('legend', { class: 'nhsuk-fieldset__legend nhsuk-fieldset__legend--s' }, 'Nearest free slots'),
          h(
            'div',
            { class: 'nhsuk-radios nhsuk-radios--small' },
            c.nearestSlots.map((s) => {
              const id = uid('slot');
              return h('div', { class: 'nhsuk-radios__item' }, h('input', { class: 'nhsuk-radios__input', attrs: { id, name: slotName, type: 'radio', value: s.id, 'data-testid': 'rebook-slot' }, on: { change: () => (slotId = s.id) } }), h('label', { class: 'nhsuk-label nhsuk-radios__label', attrs: { for: id, 'data-testid': 'rebook-slot-label' } }, slotText(s)));
            }),
          ),
        )
      : h('p', null, 'No free slots nearby: choose another option.'),
  );
  const resolve = async () => {
    const problem = resolutionProblem(choice, slotId, reason.area.value);
    if (problem) return errors.show(problem);
    try {
      await api.resolveConflict(c.journalId, choice as Choice, slotId ?? undefined, reason.area.value.trim() || undefined);
      after();
    } catch (e) {
      errors.show(AppError.from(e));
    }
  };
  return h(
    'section',
    { class: 'nhsuk-card lb-conflict', attrs: { 'data-testid': 'conflict', 'data-journal-id': c.journalId } },
    h(
      'div',
      { class: 'nhsuk-card__content' },
      h('h3', { class: 'nhsuk-heading-s' }, c.summary),
      errors.el,
      h(
        'div',
        { class: 'nhsuk-grid-row' },
        h('div', { class: 'nhsuk-grid-column-one-half' }, h('h4', { class: 'nhsuk-heading-xs' }, 'The offline change (Lifeboat)'), summaryList(sideRows(c.ours, c.names), { testid: 'ours' })),
        h('div', { class: 'nhsuk-grid-column-one-half' }, h('h4', { class: 'nhsuk-heading-xs' }, 'The clinical system now'), summaryList(sideRows(c.upstream, c.names), { testid: 'theirs' })),
      ),
      h('fieldset', { class: 'nhsuk-fieldset' }, h('legend', { class: 'nhsuk-fieldset__legend nhsuk-fieldset__legend--s' }, 'What should happen?'), radios),
      slotsBox,
      reasonBox,
      button('Resolve', () => void resolve(), { testid: 'resolve' }),
    ),
  );
}

export async function worklistScreen(ctx: Ctx): Promise<Screen> {
  void ctx;
  const errors = errorSummary();
  const box = h('div');
  let includeDone = false;
  const draw = async () => {
    try {
      const items = await api.worklist(includeDone);
      fill(
        box,
        items.length
          ? table(
              'Back-entry worklist',
              ['Written', 'Kind', 'What to enter', 'Done'],
              items.map((w) => [
                formatDateTime(w.createdAt),
                w.kind === 'note' ? 'Offline note' : w.kind === 'past_change' ? 'Past change' : 'Manual entry',
                w.summary,
                w.doneAt ? `Done by ${w.doneBy ?? 'someone'} at ${formatTime(w.doneAt)}` : button('Mark entered', () => void complete(w.id), { small: true, testid: 'complete' }),
              ]),
              { testid: 'worklist', captionHidden: true },
            )
          : h('p', { attrs: { 'data-testid': 'worklist-empty' } }, 'Nothing to enter by hand.'),
      );
    } catch (e) {
      errors.show(AppError.from(e));
    }
  };
  const complete = async (id: number) => {
    try {
      await api.completeWorkItem(id);
      await draw();
    } catch (e) {
      errors.show(AppError.from(e));
    }
  };
  const toggleId = uid('done');
  await draw();
  const el = h(
    'div',
    { attrs: { 'data-screen': 'worklist' } },
    heading('Back-entry worklist', 1, true),
    h('p', null, 'Offline notes and changes that must be entered into the clinical system by hand. Tick each off once entered.'),
    errors.el,
    h('div', { class: 'nhsuk-checkboxes nhsuk-checkboxes--small' }, h('div', { class: 'nhsuk-checkboxes__item' }, h('input', { class: 'nhsuk-checkboxes__input', attrs: { id: toggleId, type: 'checkbox' }, on: { change: (e) => ((includeDone = (e.target as HTMLInputElement).checked), void draw()) } }), h('label', { class: 'nhsuk-label nhsuk-checkboxes__label', attrs: { for: toggleId } }, 'Show items already entered'))),
    box,
  );
  return { title: 'Worklist', el, focus: el.querySelector('h1') as HTMLElement };
}

export async function accountsScreen(ctx: Ctx): Promise<Screen> {
  const errors = errorSummary();
  const box = h('div');
  const done = h('div', { attrs: { role: 'status' } });
  const draw = async () => {
    const list = await api.accounts();
    fill(
      box,
      table(
        'Staff accounts',
        ['Name', 'Username', 'Role', 'Status', 'Actions'],
        list.map((a) => [
          a.displayName,
          a.username,
          a.role,
          a.disabled ? tag('Disabled', 'grey') : tag('Active', 'green'),
          a.disabled || a.username === ctx.user.username
            ? ''
            : h('div', { class: 'lb-row-actions' }, button('Disable', () => void disable(a.username), { small: true, variant: 'warning' }), button('Reset password', () => void reset(a.username), { small: true, variant: 'secondary' })),
        ]),
        { testid: 'accounts' },
      ),
    );
  };
  const guard = async (f: () => Promise<unknown>) => {
    errors.show(null);
    try {
      await f();
      await draw();
    } catch (e) {
      errors.show(AppError.from(e));
    }
  };
  const disable = (u: string) => guard(async () => (await api.disableAccount(u), fill(done, inset(`${u} can no longer sign in.`))));
  const resetArea = h('div');
  const reset = (u: string) => {
    const pw = textField(`New password for ${u}`, { name: 'new-password', type: 'password', autocomplete: 'new-password', width: 20 });
    fill(resetArea, h('form', { attrs: { novalidate: true }, on: { submit: (e) => (e.preventDefault(), void guard(async () => (await api.resetPassword(u, pw.input.value), fill(resetArea), fill(done, inset(`Password reset for ${u}.`))))) } }, pw.group, button('Set password', () => {}, { type: 'submit' })));
    pw.input.focus();
  };
  const username = textField('Username', { name: 'username', width: 20 });
  const display = textField('Full name', { name: 'displayName', width: 30 });
  const role = select('Role', [['receptionist', 'Receptionist'], ['clinician', 'Clinician'], ['manager', 'Manager']], { name: 'role' });
  const pw = textField('Password', { name: 'password', type: 'password', autocomplete: 'new-password', width: 20, hint: 'At least 10 characters. Tell them in person.' });
  const add = () =>
    guard(async () => {
      const a = await api.addAccount(username.input.value.trim(), display.input.value.trim(), role.select.value as Role, pw.input.value);
      [username, display, pw].forEach((f) => (f.input.value = ''));
      fill(done, inset(`Account added for ${a.displayName} (${a.role}).`));
    });
  await draw();
  const el = h(
    'div',
    { attrs: { 'data-screen': 'accounts' } },
    heading('Staff accounts', 1, true),
    errors.el,
    done,
    box,
    resetArea,
    card('Add a member of staff', h('form', { attrs: { novalidate: true, 'data-testid': 'add-account' }, on: { submit: (e) => (e.preventDefault(), void add()) } }, username.group, display.group, role.group, pw.group, button('Add account', () => {}, { type: 'submit', testid: 'add-account-submit' }))),
  );
  return { title: 'Staff accounts', el, focus: el.querySelector('h1') as HTMLElement };
}

export async function auditScreen(ctx: Ctx): Promise<Screen> {
  void ctx;
  const errors = errorSummary();
  const verifyBox = h('div', { attrs: { role: 'status', 'data-testid': 'audit-verify' } });
  const exportBox = h('div', { attrs: { role: 'status' } });
  const verify = async () => {
    errors.show(null);
    try {
      const r = await api.auditVerify();
      fill(verifyBox, r.ok ? panel('Audit log intact', h('p', null, `${r.entries} entries checked: the chain is unbroken.`)) : h('div', { class: 'nhsuk-warning-callout' }, h('h3', { class: 'nhsuk-warning-callout__label' }, 'Audit log problem'), h('p', null, `${r.entries} entries checked. ${r.problem ?? ''}`)));
    } catch (e) {
      errors.show(AppError.from(e));
    }
  };
  const from = textField('From', { name: 'from', type: 'date', width: 10 });
  const to = textField('To', { name: 'to', type: 'date', width: 10 });
  const patient = textField('Patient id (optional)', { name: 'patientId', width: 20 });
  const exportCsv = async () => {
    errors.show(null);
    try {
      const csv = await api.auditExport({ from: from.input.value || undefined, to: to.input.value || undefined, patientId: patient.input.value.trim() || undefined });
      const rows = Math.max(0, csv.split('\n').filter(Boolean).length - 1);
      const url = URL.createObjectURL(new Blob([csv], { type: 'text/csv' }));
      const link = h('a', { class: 'nhsuk-link', attrs: { href: url, download: `lifeboat-audit-${new Date().toISOString().slice(0, 10)}.csv`, 'data-testid': 'audit-download' } }, 'Download the CSV file');
      fill(exportBox, inset(`${rows} entr${rows === 1 ? 'y' : 'ies'} exported. `, link));
      link.focus();
    } catch (e) {
      errors.show(AppError.from(e));
    }
  };
  const el = h(
    'div',
    { attrs: { 'data-screen': 'audit' } },
    heading('Audit log', 1, true),
    errors.el,
    h('p', null, 'Every view of a patient record and every change is written to a hash-chained log. Verify checks no entry was altered or removed.'),
    button('Verify the audit log', () => void verify(), { testid: 'audit-verify-run' }),
    verifyBox,
    heading('Export', 2),
    h('form', { class: 'lb-toolbar', attrs: { novalidate: true }, on: { submit: (e) => (e.preventDefault(), void exportCsv()) } }, from.group, to.group, patient.group, button('Export CSV', () => {}, { type: 'submit', testid: 'audit-export' })),
    exportBox,
  );
  return { title: 'Audit', el, focus: el.querySelector('h1') as HTMLElement };
}
