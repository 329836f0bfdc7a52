// The desktop app end to end: a real window under Xvfb, driven through WebDriver, against
// the real test upstream. One story, in order, as a practice lives it: first run, sync,
// staff, reception, an outage, offline booking, a clinician's note, reconciliation with a
// conflict, and what the upstream holds afterwards. Run with scripts/e2e.sh.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it as nodeIt } from 'node:test';
import { axe, env, go, launch, screenshot, textOf, until } from './lib/driver.mjs';
import { fault, fhir } from './lib/upstream.mjs';

const manifest = JSON.parse(readFileSync(join(env.practice, 'manifest.json'), 'utf8'));
const [johnSmith] = manifest.well_known_patients;
const PASSWORD = 'correct horse battery';
/** How soon an outage must show: the architecture's bound. */
const OFFLINE_BOUND_MS = 60_000;

let browser;
const state = {};

/** A step of the story; a failing one leaves a picture of what the window showed. */
function it(name, fn) {
  nodeIt(name, async () => {
    try {
      await fn();
    } catch (e) {
      await screenshot(browser, `failed-${name.replace(/[^a-z0-9]+/gi, '-').slice(0, 60)}`).catch(() => {});
      throw e;
    }
  });
}

async function signIn(username) {
  const sw = await browser.$('[data-testid="switch-user"]');
  if (await sw.isExisting()) await sw.click();
  const user = await browser.$('input[name="username"]');
  await user.waitForDisplayed();
  await user.setValue(username);
  await browser.$('input[name="password"]').setValue(PASSWORD);
  await browser.$('[data-testid="login-submit"]').click();
  await until(browser, async () => (await textOf(browser, '[data-testid="signed-in-as"]'))?.length > 0, `${username} signed in`);
}

/** The London calendar day (YYYY-MM-DD) of an instant. */
function londonDay(instant) {
  const p = Object.fromEntries(
    new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/London', year: 'numeric', month: '2-digit', day: '2-digit' })
      .formatToParts(new Date(instant))
      .map((x) => [x.type, x.value]),
  );
  return `${p.year}-${p.month}-${p.day}`;
}

async function bannerTitle() {
  return textOf(browser, '[data-testid="mode-title"]');
}

async function assertAccessible(name) {
  const bad = await axe(browser, name);
  assert.deepEqual(bad, [], `${name}: serious or critical accessibility violations:\n${JSON.stringify(bad, null, 2)}`);
}

/** Focuses the reception search box and types, keyboard only. */
async function searchByKeyboard(text) {
  await go(browser, 'reception');
  const box = await browser.$('[data-testid="search"]');
  await box.waitForDisplayed();
  await until(browser, () => browser.execute(() => document.activeElement?.id === 'patient-search'), 'the search box to have focus');
  // Element "send keys" types into the focused box as a person would; WebKitWebDriver's
  // action API drops a repeated key ("999" arrives as "9").
  await box.addValue(text);
  assert.equal(await box.getValue(), text);
}

describe('Lifeboat desktop app', () => {
  before(async () => {
    const started = Date.now();
    browser = await launch();
    const sessionMs = Date.now() - started;
    const field = await browser.$('input[name="username"]');
    await field.waitForDisplayed({ timeout: 10_000 });
    await until(browser, () => browser.execute(() => document.activeElement?.getAttribute('name') === 'username'), 'focus in the first field');
    state.launchMs = Date.now() - started;
    console.log(`launch to usable first screen: ${state.launchMs} ms (WebDriver session and app start: ${sessionMs} ms)`);
    // John Smith's review, booked in the clinical system before the outage: the story cancels it.
    const johns = await fhir(`Appointment?actor=Patient/${johnSmith.id}&_count=100`);
    const review = (johns.body.entry ?? [])
      .map((e) => e.resource)
      .filter((a) => a.description === 'Diabetes review' && a.status === 'booked' && Date.parse(a.start) > Date.now())
      .sort((a, b) => a.start.localeCompare(b.start))[0];
    assert.ok(review, "John Smith's review ahead in the fixture");
    state.review = { id: review.id, day: londonDay(review.start) };
  });

  after(async () => {
    await fault({ mode: 'none' }).catch(() => {});
    await browser?.deleteSession().catch(() => {});
  });

  it('launches to the first-run setup screen, quickly', async () => {
    assert.equal(await textOf(browser, 'h1'), 'Set up Lifeboat on this computer');
    await screenshot(browser, '01-setup');
    await assertAccessible('setup');
    assert.ok(state.launchMs <= 5_000, `launch took ${state.launchMs} ms`);
  });

  it('loads nothing from outside, under a strict CSP, and may call only its own commands', async () => {
    const foreign = await browser.execute(() =>
      performance
        .getEntriesByType('resource')
        .map((e) => e.name)
        .filter((u) => !/^(tauri:\/\/localhost|http:\/\/tauri\.localhost|ipc:|http:\/\/ipc\.localhost|data:)/.test(u)),
    );
    assert.deepEqual(foreign, [], "only the app's own files were loaded");
    // The policy is enforced: an inline script does not run, a remote image is refused.
    const probe = await browser.executeAsync((done) => {
      const blocked = [];
      document.addEventListener('securitypolicyviolation', (e) => blocked.push(`${e.effectiveDirective} ${e.blockedURI}`));
      const script = document.createElement('script');
      script.textContent = 'window.__inlineRan = true';
      document.body.append(script);
      const img = new Image();
      img.src = 'https://example.org/pixel.png';
      setTimeout(() => done({ ran: window.__inlineRan === true, blocked }), 300);
    });
    console.log(`CSP refused: ${probe.blocked.join('; ')}`);
    assert.equal(probe.ran, false, 'an inline script ran');
    assert.ok(probe.blocked.some((b) => b.startsWith('script-src')), 'inline script refused');
    assert.ok(probe.blocked.some((b) => b.startsWith('img-src') && b.includes('example.org')), 'remote image refused');
    // Capabilities grant only Lifeboat's own commands (and event listening): Tauri's other
    // core commands are refused.
    const refused = await browser.executeAsync((done) => {
      const tryIt = (cmd, args) => window.__TAURI_INTERNALS__.invoke(cmd, args).then(() => `${cmd}: allowed`, (e) => `${cmd}: ${e}`);
      Promise.all([tryIt('plugin:app|version', {}), tryIt('plugin:window|close', { label: 'main' }), tryIt('plugin:event|emit', { event: 'x', payload: null })]).then(done);
    });
    console.log(`refused: ${refused.join('; ')}`);
    for (const r of refused) assert.match(r, /not allowed/, r);
  });

  it('first-run setup creates a manager, who is signed in', async () => {
    await browser.$('input[name="username"]').setValue('manager');
    await browser.$('input[name="displayName"]').setValue('Pat Manager');
    await browser.$('input[name="password"]').setValue(PASSWORD);
    await browser.$('input[name="confirm"]').setValue(PASSWORD);
    await browser.$('[data-testid="setup-submit"]').click();
    await until(browser, async () => (await textOf(browser, '[data-testid="signed-in-as"]')) === 'Pat Manager (manager)', 'the manager signed in');
    assert.equal(await bannerTitle(), 'Online');
    // A new practice starts where its first job is: the first sync.
    await until(browser, async () => (await textOf(browser, 'h1')) === 'Sync and outage', 'the sync screen');
    assert.match(await textOf(browser, 'main'), /Nothing has been copied from the clinical system yet/);
  });

  it('the manager syncs the practice from the upstream', async () => {
    await go(browser, 'manage');
    await browser.$('[data-testid="sync-now"]').click();
    await until(browser, async () => (await textOf(browser, '.nhsuk-panel__title')) === 'Sync finished', 'the sync to finish', 60_000);
    await until(browser, async () => !(await textOf(browser, '[data-testid="mode-banner"]'))?.includes('no complete sync'), 'data as of in the banner');
    await screenshot(browser, '02-manager-sync');
    await assertAccessible('manager sync and outage');
  });

  it('the manager adds a receptionist and a clinician', async () => {
    await go(browser, 'accounts');
    for (const [username, name, role] of [
      ['rita', 'Rita Reception', 'receptionist'],
      ['drkhan', 'Dr Aisha Khan', 'clinician'],
    ]) {
      const form = await browser.$('[data-testid="add-account"]');
      await form.waitForDisplayed();
      await form.$('input[name="username"]').setValue(username);
      await form.$('input[name="displayName"]').setValue(name);
      await form.$('select[name="role"]').selectByAttribute('value', role);
      await form.$('input[name="password"]').setValue(PASSWORD);
      await browser.$('[data-testid="add-account-submit"]').click();
      await until(browser, async () => (await textOf(browser, '[data-testid="accounts"]'))?.includes(name), `${name} listed`);
    }
    await screenshot(browser, '03-staff-accounts');
    await assertAccessible('staff accounts');
  });

  it('a receptionist finds a patient with the keyboard and sees no clinical data', async () => {
    await signIn('rita');
    await searchByKeyboard('smith 1958');
    await until(browser, async () => (await browser.$$('[data-testid="result"]')).length === 2, 'two Smiths born in 1958');
    await screenshot(browser, '04-reception-search');
    await assertAccessible('reception search');
    // Arrow keys move the highlight; Enter opens the highlighted patient.
    const names = await browser.execute(() => [...document.querySelectorAll('[data-testid="result"] .lb-result__name')].map((e) => e.textContent));
    const johnIndex = names.findIndex((n) => n.startsWith('SMITH, John'));
    assert.ok(johnIndex >= 0, `John Smith in ${names}`);
    if (johnIndex === 1) await browser.keys(['ArrowDown']);
    await browser.keys(['Enter']);
    await until(browser, async () => (await textOf(browser, '[data-testid="patient-name"]'))?.startsWith('SMITH, John'), 'John Smith opened');
    state.patientUrl = await browser.execute(() => location.hash);
    const page = await browser.$('main').getText();
    assert.ok(page.includes('999 176 8378'), 'NHS number shown 3-3-4');
    assert.ok(!(await browser.$('[data-testid="open-summary"]').isExisting()), 'no clinical summary button for reception');
    await screenshot(browser, '05-patient-overview');
    await assertAccessible('patient overview');
    // Even by address, the summary is not shown to reception (and the core refuses it).
    await go(browser, `summary/${johnSmith.id}`);
    await until(browser, async () => (await textOf(browser, 'h1')) === 'Not available for your role', 'the summary refused');
    const text = await browser.$('main').getText();
    for (const clinical of ['Allergies', 'Medications', 'Problems', 'Metformin', 'Hypertension']) assert.ok(!text.includes(clinical), `reception saw "${clinical}"`);
  });

  it('while Online, booking is refused with the core\'s reason, and locking keeps the place', async () => {
    await go(browser, state.patientUrl.replace(/^#\//, ''));
    await until(browser, () => browser.execute(() => document.activeElement?.getAttribute('data-testid') === 'patient-name'), 'the patient opened');
    await browser.keys(['b']);
    await until(browser, () => browser.execute(() => document.activeElement?.getAttribute('data-testid') === 'slot'), 'a slot focused');
    assert.match(await textOf(browser, '[data-testid="slot-picker"]'), /Lifeboat is online: book in the clinical system/);
    await browser.keys(['Enter']);
    await until(browser, () => browser.execute(() => document.activeElement?.getAttribute('data-testid') === 'confirm'), 'confirm focused');
    await browser.keys(['Enter']);
    await until(browser, async () => /Lifeboat is online/.test((await textOf(browser, '[data-testid="confirmation"] [data-testid="error"]')) ?? ''), "the core's refusal shown");
    await screenshot(browser, '06-refused-online');
    await browser.keys(['Escape']);
    await until(browser, async () => !(await browser.$('[data-testid="confirmation"]').isExisting()), 'the confirmation closed');
    // Lock, then unlock: back on the same patient.
    await browser.$('[data-testid="lock"]').click();
    await until(browser, async () => (await textOf(browser, 'h1')) === 'Lifeboat is locked', 'the unlock screen');
    assert.ok(!(await browser.$('main').getText()).includes('SMITH'), 'no patient data behind the lock');
    await browser.$('input[name="password"]').setValue(PASSWORD);
    await browser.$('[data-testid="unlock-submit"]').click();
    await until(browser, async () => (await textOf(browser, '[data-testid="patient-name"]'))?.startsWith('SMITH, John'), 'back on the same patient');
  });

  it('cutting the upstream shows OFFLINE within the bound', async () => {
    const cut = Date.now();
    await fault({ mode: 'error', status: 503 });
    await until(browser, async () => (await bannerTitle()) === 'OFFLINE', 'the OFFLINE banner', OFFLINE_BOUND_MS);
    state.offlineMs = Date.now() - cut;
    console.log(`upstream cut to OFFLINE on screen: ${state.offlineMs} ms (bound ${OFFLINE_BOUND_MS} ms)`);
    assert.match(await textOf(browser, '[data-testid="mode-banner"]'), /Data as of .*\. No changes held locally\./);
  });

  it('a receptionist books offline with the keyboard only: search, Enter, b, Enter, Enter', async () => {
    await searchByKeyboard(johnSmith.nhs_number);
    await until(browser, async () => (await browser.$$('[data-testid="result"]')).length === 1, 'one match by NHS number');
    await browser.keys(['Enter']);
    await until(browser, async () => (await textOf(browser, '[data-testid="patient-name"]'))?.startsWith('SMITH, John'), 'John Smith opened');
    await until(browser, () => browser.execute(() => document.activeElement?.getAttribute('data-testid') === 'patient-name'), 'focus on the patient');
    await browser.keys(['b']);
    const slot = await until(
      browser,
      () => browser.execute(() => (document.activeElement?.getAttribute('data-testid') === 'slot' ? document.activeElement.getAttribute('data-slot-id') : null)),
      'the first free slot focused',
    );
    state.bookedSlot = slot;
    state.bookedDay = londonDay(await browser.execute(() => document.activeElement.getAttribute('data-start')));
    await screenshot(browser, '06-slot-picker');
    await browser.keys(['Enter']);
    await until(browser, () => browser.execute(() => document.activeElement?.getAttribute('data-testid') === 'confirm'), 'the confirm button focused');
    const details = await textOf(browser, '[data-testid="confirm-details"]');
    assert.match(details, /SMITH, John/);
    assert.match(details, /12 Mar 1958/);
    assert.match(details, /999 176 8378/);
    await screenshot(browser, '07-confirm-booking');
    await assertAccessible('booking confirmation');
    await browser.keys(['Enter']);
    await until(browser, async () => (await textOf(browser, '[data-testid="done"] .nhsuk-panel__title')) === 'Appointment booked', 'the booking confirmed');
    assert.match(await textOf(browser, '[data-testid="done"]'), /Held locally/);
    await until(browser, async () => /1 change held locally/.test(await textOf(browser, '[data-testid="mode-banner"]')), 'the banner counting the change');
    await screenshot(browser, '08-booked-offline');
  });

  it('the day book shows the offline booking, and an appointment is cancelled from it with a reason', async () => {
    const dayBook = async (day) => {
      await go(browser, `book/${day}/`);
      const book = await browser.$('[data-testid="day-book"]');
      await book.waitForDisplayed();
      return book;
    };
    const booked = await dayBook(state.bookedDay);
    await until(browser, async () => (await booked.getText()).includes('Offline change'), 'the offline booking in the day book');
    await screenshot(browser, '09-day-book');
    await assertAccessible('day book');
    // John Smith's own 09:00 appointment (booked in the clinical system before the outage).
    if (state.review.day !== state.bookedDay) await dayBook(state.review.day);
    const cancel = await browser.execute(() => {
      const row = [...document.querySelectorAll('[data-testid="day-book"] tbody tr')].find(
        (r) => r.textContent.includes('SMITH, John') && r.textContent.startsWith('09:00') && !r.textContent.includes('Offline change'),
      );
      return [...(row?.querySelectorAll('button') ?? [])].find((b) => b.textContent === 'Cancel') ?? null;
    });
    assert.ok(cancel, "John Smith's 09:00 appointment in the day book");
    await (await browser.$(cancel)).click();
    const reason = await browser.$('input[name="reason"]');
    await reason.waitForDisplayed();
    assert.match(await textOf(browser, '[data-testid="confirm-details"]'), /SMITH, John[\s\S]*12 Mar 1958[\s\S]*999 176 8378/);
    await browser.$('[data-testid="confirm"]').click();
    await until(browser, async () => /Enter a reason/.test(await textOf(browser, '[data-testid="confirmation"]')), 'a reason asked for');
    await reason.addValue('Patient rang to cancel');
    await browser.$('[data-testid="confirm"]').click();
    await until(browser, async () => (await textOf(browser, '[data-testid="done"] .nhsuk-panel__title')) === 'Appointment cancelled', 'the cancellation confirmed');
    await until(browser, async () => /2 changes held locally/.test(await textOf(browser, '[data-testid="mode-banner"]')), 'two changes held');
  });

  it('a clinician reads the summary, alerts and allergies first, and writes an offline note', async () => {
    await signIn('drkhan');
    await go(browser, `summary/${johnSmith.id}`);
    await until(browser, async () => (await textOf(browser, 'h1'))?.startsWith('Clinical summary: SMITH, John'), 'the summary');
    const order = await browser.execute(() => [...document.querySelectorAll('main h2, main h3')].map((h) => h.textContent.replace('Important: ', '')));
    assert.ok(order.indexOf('Alerts') < order.indexOf('Medications') && order.indexOf('Allergies') < order.indexOf('Medications'), `order: ${order}`);
    assert.ok((await textOf(browser, '[data-testid="summary-problems"]')).length > 0);
    assert.match(await textOf(browser, '[data-testid="data-as-of"]'), /^Data as of /);
    await screenshot(browser, '10-clinical-summary');
    await assertAccessible('clinical summary');
    const note = 'Seen during outage. BP 142/88. <script>alert(1)</script> Review in 2 weeks.';
    await browser.$('textarea[name="note"]').setValue(note);
    await browser.$('[data-testid="save-note"]').click();
    await until(browser, async () => (await textOf(browser, '[data-testid="offline-notes"]'))?.includes('Review in 2 weeks'), 'the note listed');
    const notes = await textOf(browser, '[data-testid="offline-notes"]');
    assert.ok(notes.includes('<script>alert(1)</script>'), 'typed markup shows as text');
    assert.match(notes, /Offline – not yet in the clinical record/);
    await screenshot(browser, '11-offline-note');
  });

  it('the manager reconciles and resolves a conflict with a re-booking', async () => {
    // Meanwhile at the practice's clinical system: someone booked the same slot.
    await fault({ mode: 'none' });
    const slot = (await fhir(`Slot/${state.bookedSlot}`)).body;
    const other = manifest.well_known_patients[1];
    const clash = await fhir('Appointment', {
      method: 'POST',
      body: JSON.stringify({
        resourceType: 'Appointment',
        status: 'booked',
        start: slot.start,
        end: slot.end,
        slot: [{ reference: `Slot/${state.bookedSlot}` }],
        participant: [{ actor: { reference: `Patient/${other.id}` }, status: 'accepted' }],
      }),
    });
    assert.equal(clash.status, 201, JSON.stringify(clash.body));
    await signIn('manager');
    await until(browser, async () => (await bannerTitle()) === 'Recovering', 'Recovering once the upstream is back', 60_000);
    await screenshot(browser, '12-recovering');
    await browser.$('.lb-banner__action').click();
    await until(browser, async () => (await textOf(browser, 'h1')) === 'Reconcile offline changes', 'the reconcile screen');
    await browser.$('[data-testid="dry-run"]').click();
    await until(browser, async () => (await textOf(browser, '[data-testid="reconcile-report"]'))?.includes('Dry run'), 'the dry run');
    await browser.$('[data-testid="reconcile-run"]').click();
    const conflict = await browser.$('[data-testid="conflict"]');
    await conflict.waitForDisplayed({ timeout: 60_000 });
    await screenshot(browser, '13-conflict-review');
    await assertAccessible('conflict review');
    // Both sides name their patient as the cache knows them, not by an id.
    const grouped = (d) => `${d.slice(0, 3)} ${d.slice(3, 6)} ${d.slice(6)}`;
    assert.match(await conflict.$('[data-testid="ours"]').getText(), new RegExp(`SMITH, John \\(born .*, NHS ${grouped(johnSmith.nhs_number)}\\)`));
    assert.ok((await conflict.$('[data-testid="theirs"]').getText()).includes(`NHS ${grouped(other.nhs_number)})`), 'the other patient named upstream');
    // The choices are NHS radios: the label is what a person clicks.
    await conflict.$('[data-testid="choice-label-rebook"]').click();
    const rebook = await conflict.$('[data-testid="rebook-slot-label"]');
    await rebook.waitForDisplayed();
    state.rebookSlot = await conflict.$('[data-testid="rebook-slot"]').getAttribute('value');
    await rebook.click();
    await conflict.$('[data-testid="resolve"]').click();
    await until(browser, async () => browser.$('[data-testid="no-conflicts"]').isExisting(), 'no conflicts left', 30_000);
    await screenshot(browser, '14-resolved');
  });

  it('the offline note is on the back-entry worklist, and can be ticked off', async () => {
    await go(browser, 'worklist');
    await until(browser, async () => (await textOf(browser, 'main'))?.includes('Back-entry worklist'), 'the worklist');
    const list = await until(browser, () => textOf(browser, '[data-testid="worklist"]'), 'a worklist item');
    assert.match(list, /note/i);
    await screenshot(browser, '15-worklist');
    await assertAccessible('worklist');
    while (await browser.$('[data-testid="complete"]').isExisting()) {
      const before = (await browser.$$('[data-testid="complete"]')).length;
      await browser.$('[data-testid="complete"]').click();
      await until(browser, async () => (await browser.$$('[data-testid="complete"]')).length < before, 'an item ticked off');
    }
    await until(browser, async () => browser.$('[data-testid="worklist-empty"]').isExisting(), 'the worklist emptied');
  });

  it('the upstream holds the re-booked appointment, and the contested slot keeps its other patient', async () => {
    const rebooked = await fhir(`Appointment?slot=Slot/${state.rebookSlot}`);
    const mine = (rebooked.body.entry ?? []).map((e) => e.resource).filter((a) => a.status === 'booked');
    assert.equal(mine.length, 1, JSON.stringify(rebooked.body));
    assert.ok(mine[0].participant.some((p) => p.actor?.reference === `Patient/${johnSmith.id}`), 'booked for John Smith');
    const contested = await fhir(`Appointment?slot=Slot/${state.bookedSlot}`);
    const there = (contested.body.entry ?? []).map((e) => e.resource).filter((a) => a.status === 'booked');
    assert.equal(there.length, 1);
    assert.ok(!there[0].participant.some((p) => p.actor?.reference === `Patient/${johnSmith.id}`), 'no double booking');
    const review = await fhir(`Appointment/${state.review.id}`);
    assert.equal(review.body.status, 'cancelled', 'the 09:00 review cancelled upstream');
    await until(browser, async () => (await bannerTitle()) === 'Online', 'back Online', 30_000);
  });

  it('a practice drill is marked PRACTICE — NOT REAL and never reaches the upstream', async () => {
    const before = (await fhir('Appointment?_summary=count')).body.total;
    await go(browser, 'manage');
    await browser.$('[data-testid="start-drill"]').click();
    await until(browser, async () => /^PRACTICE — NOT REAL/.test((await textOf(browser, '[data-testid="drill-banner"]')) ?? ''), 'the drill banner');
    assert.equal(await bannerTitle(), 'OFFLINE');
    await searchByKeyboard(johnSmith.nhs_number);
    await until(browser, async () => (await browser.$$('[data-testid="result"]')).length === 1, 'John Smith found');
    await browser.keys(['Enter']);
    await until(browser, () => browser.execute(() => document.activeElement?.getAttribute('data-testid') === 'patient-name'), 'the patient opened');
    await browser.keys(['b']);
    await until(browser, () => browser.execute(() => document.activeElement?.getAttribute('data-testid') === 'slot'), 'a slot focused');
    await browser.keys(['Enter']);
    await until(browser, () => browser.execute(() => document.activeElement?.getAttribute('data-testid') === 'confirm'), 'confirm focused');
    await browser.keys(['Enter']);
    await until(browser, async () => (await textOf(browser, '[data-testid="done"] .nhsuk-panel__title')) === 'Appointment booked', 'the practice booking');
    await screenshot(browser, '16-drill');
    await go(browser, 'manage');
    await browser.$('[data-testid="end-drill"]').click();
    await until(browser, async () => (await textOf(browser, '.nhsuk-panel__title')) === 'Drill ended', 'the drill summary');
    // The summary counts the drill's changes (the desk currently counts the whole copied
    // journal, reported to the core's owner); the booking made in the drill is among them.
    assert.match(await textOf(browser, 'main'), /practice changes? (was|were) made and thrown away[\s\S]*book: \d/);
    assert.ok(!(await browser.$('[data-testid="drill-banner"]').isExisting()), 'the drill banner gone');
    await until(browser, async () => (await bannerTitle()) === 'Online', 'Online again');
    assert.equal((await fhir('Appointment?_summary=count')).body.total, before, 'nothing reached the upstream');
  });

  it('the manager verifies the audit log', async () => {
    await go(browser, 'audit');
    await browser.$('[data-testid="audit-verify-run"]').click();
    await until(browser, async () => (await textOf(browser, '[data-testid="audit-verify"]'))?.includes('Audit log intact'), 'the audit verified');
    await browser.$('[data-testid="audit-export"]').click();
    const link = await browser.$('[data-testid="audit-download"]');
    await link.waitForDisplayed();
    assert.match(await textOf(browser, 'main'), /\d+ entries exported/);
    assert.match(await link.getAttribute('download'), /^lifeboat-audit-\d{4}-\d{2}-\d{2}\.csv$/);
    await screenshot(browser, '17-audit');
    await assertAccessible('audit');
  });

  it('a relaunch opens at sign-in quickly, and the encrypted cache is still there', async () => {
    await browser.deleteSession();
    const started = Date.now();
    browser = await launch();
    const field = await browser.$('input[name="username"]');
    await field.waitForDisplayed({ timeout: 10_000 });
    await until(browser, () => browser.execute(() => document.activeElement?.getAttribute('name') === 'username'), 'focus in the username field');
    const ms = Date.now() - started;
    console.log(`launch to usable login screen: ${ms} ms (target 1500 ms)`);
    assert.equal(await textOf(browser, 'h1'), 'Sign in to Lifeboat');
    await screenshot(browser, '19-login');
    await assertAccessible('login');
    // Well above the target, so a slow CI machine does not fail on timing alone.
    assert.ok(ms <= 5_000, `launch to login took ${ms} ms`);
    await signIn('rita');
    await searchByKeyboard('smith 1958');
    await until(browser, async () => (await browser.$$('[data-testid="result"]')).length === 2, 'the cached patients after a relaunch');
    await browser.keys(['Enter']);
    await until(browser, async () => (await textOf(browser, '[data-testid="patient-name"]'))?.startsWith('SMITH, John'), 'John Smith opened');
    await go(browser, 'slots');
    await until(browser, async () => (await browser.$$('[data-testid="slot"]')).length > 0, 'free slots listed');
    assert.match(await textOf(browser, 'main'), /Booking for SMITH, John \(Mr\), NHS 999 176 8378/);
    await screenshot(browser, '20-free-slots');
    await assertAccessible('free slots');
  });
});
