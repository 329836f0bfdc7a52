import { describe, expect, it } from 'vitest';
import { displayName, formatNhsNumber, identifiers } from './format';

describe('patient identifiers', () => {
  it('formats the NHS number 3-3-4', () => {
    expect(formatNhsNumber('9434765919')).toBe('943 476 5919');
    expect(formatNhsNumber(null)).toBe('not recorded');
    expect(formatNhsNumber('12345')).toBe('12345');
  });
  it('names a patient family first, in capitals', () => {
    expect(displayName({ title: 'Mrs', family: 'Smith', given: 'Jane Ann' })).toBe('SMITH, Jane Ann (Mrs)');
    expect(displayName({ title: null, family: 'Smith', given: '' })).toBe('SMITH');
  });
  it('gives name, date of birth with age, and NHS number', () => {
    const p = { title: null, family: 'Jones', given: 'Ann', birthDate: '1950-03-07', nhsNumber: '9434765919' };
    expect(identifiers(p, 74)).toEqual([
      ['Name', 'JONES, Ann'],
      ['Date of birth', '7 Mar 1950 (74 years)'],
      ['NHS number', '943 476 5919'],
    ]);
  });
});
