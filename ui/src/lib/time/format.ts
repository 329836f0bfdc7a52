// Dates and times as a UK practice reads them, always in Europe/London whatever the
// workstation's own time zone: "Fri 19 Jul 2024 09:40" (BST or GMT as the date falls).

const LONDON = 'Europe/London';

const dateTimeParts = new Intl.DateTimeFormat('en-GB', {
  timeZone: LONDON,
  weekday: 'short',
  day: 'numeric',
  month: 'short',
  year: 'numeric',
  hour: '2-digit',
  minute: '2-digit',
  hourCycle: 'h23',
});

const dateParts = new Intl.DateTimeFormat('en-GB', {
  timeZone: LONDON,
  weekday: 'short',
  day: 'numeric',
  month: 'short',
  year: 'numeric',
});

const ymdParts = new Intl.DateTimeFormat('en-GB', {
  timeZone: LONDON,
  year: 'numeric',
  month: '2-digit',
  day: '2-digit',
});

function partsOf(f: Intl.DateTimeFormat, d: Date): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of f.formatToParts(d)) out[p.type] = p.value;
  return out;
}

/** "Fri 19 Jul 2024 09:40" for an RFC 3339 instant; the input itself if it is not one. */
export function formatDateTime(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const p = partsOf(dateTimeParts, d);
  return `${p.weekday} ${p.day} ${p.month} ${p.year} ${p.hour}:${p.minute}`;
}

/** "09:40" in London. */
export function formatTime(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const p = partsOf(dateTimeParts, d);
  return `${p.hour}:${p.minute}`;
}

/** "Fri 19 Jul 2024" for a calendar date `YYYY-MM-DD` (no time zone shift) or an instant. */
export function formatDate(value: string): string {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value);
  if (m) {
    // A calendar date: format it as that day, at noon UTC so no zone can move it.
    const d = new Date(Date.UTC(+m[1], +m[2] - 1, +m[3], 12));
    const p = partsOf(new Intl.DateTimeFormat('en-GB', { timeZone: 'UTC', weekday: 'short', day: 'numeric', month: 'short', year: 'numeric' }), d);
    return `${p.weekday} ${p.day} ${p.month} ${p.year}`;
  }
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return value;
  const p = partsOf(dateParts, d);
  return `${p.weekday} ${p.day} ${p.month} ${p.year}`;
}

/** A date of birth as "19 Jul 1950" (no weekday: it is not a day anyone books). */
export function formatBirthDate(ymd: string | null): string {
  if (!ymd) return 'not recorded';
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(ymd);
  if (!m) return ymd;
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  return `${+m[3]} ${months[+m[2] - 1]} ${m[1]}`;
}

/** Today's date in London as `YYYY-MM-DD`. */
export function londonToday(now: Date = new Date()): string {
  const p = partsOf(ymdParts, now);
  return `${p.year}-${p.month}-${p.day}`;
}

/** `YYYY-MM-DD` moved by `days` calendar days. */
export function addDays(ymd: string, days: number): string {
  const [y, m, d] = ymd.split('-').map(Number);
  const t = new Date(Date.UTC(y, m - 1, d + days));
  return t.toISOString().slice(0, 10);
}

/** Whole years between a date of birth and `today` (both `YYYY-MM-DD`). */
export function ageOn(birthDate: string, today: string): number | null {
  const b = /^(\d{4})-(\d{2})-(\d{2})$/.exec(birthDate);
  const t = /^(\d{4})-(\d{2})-(\d{2})$/.exec(today);
  if (!b || !t) return null;
  let age = +t[1] - +b[1];
  if (+t[2] < +b[2] || (+t[2] === +b[2] && +t[3] < +b[3])) age -= 1;
  return age;
}

/** "just now", "5 min ago", "3 h 10 min ago", "2 days ago" for an age in seconds. */
export function describeAge(seconds: number | null): string {
  if (seconds === null || seconds === undefined) return 'never';
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return 'just now';
  const min = Math.floor(s / 60);
  if (min < 60) return `${min} min ago`;
  const hours = Math.floor(min / 60);
  if (hours < 24) return min % 60 ? `${hours} h ${min % 60} min ago` : `${hours} h ago`;
  const days = Math.floor(hours / 24);
  return days === 1 ? '1 day ago' : `${days} days ago`;
}
