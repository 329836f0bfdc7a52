// How a patient is named and identified on screen: the same three identifiers everywhere
// (name, date of birth, NHS number 3-3-4), so the wrong-patient hazard has one control.

import { formatBirthDate } from '../time/format';

export interface NamedPatient {
  title: string | null;
  family: string;
  given: string;
  birthDate: string | null;
  nhsNumber: string | null;
  deceased?: boolean;
}

/** "485 777 3456" from ten digits; anything else unchanged. */
export function formatNhsNumber(n: string | null): string {
  if (!n) return 'not recorded';
  const digits = n.replace(/\s+/g, '');
  if (!/^\d{10}$/.test(digits)) return n;
  return `${digits.slice(0, 3)} ${digits.slice(3, 6)} ${digits.slice(6)}`;
}

/** The NHS style for a patient in a list: "SMITH, John (Mrs)". */
export function displayName(p: Pick<NamedPatient, 'title' | 'family' | 'given'>): string {
  const family = p.family.toUpperCase();
  const given = p.given.trim();
  const name = given ? `${family}, ${given}` : family;
  return p.title ? `${name} (${p.title})` : name;
}

/** The three identifiers a confirmation shows, as label/value pairs. */
export function identifiers(p: NamedPatient, age?: number | null): [string, string][] {
  const dob = formatBirthDate(p.birthDate);
  return [
    ['Name', displayName(p)],
    ['Date of birth', age === null || age === undefined ? dob : `${dob} (${age} years)`],
    ['NHS number', formatNhsNumber(p.nhsNumber)],
  ];
}
