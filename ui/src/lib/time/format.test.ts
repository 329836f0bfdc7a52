import { describe, expect, it } from 'vitest';
import { addDays, ageOn, describeAge, formatBirthDate, formatDate, formatDateTime, formatTime, londonToday } from './format';

describe('UK date and time in Europe/London', () => {
  it('shows a summer instant in BST (UTC+1)', () => {
    expect(formatDateTime('2024-07-19T08:40:00Z')).toBe('Fri 19 Jul 2024 09:40');
  });
  it('shows a winter instant in GMT', () => {
    expect(formatDateTime('2024-01-19T08:40:00Z')).toBe('Fri 19 Jan 2024 08:40');
  });
  it('crosses midnight into the next London day in summer', () => {
    expect(formatDateTime('2024-07-19T23:30:00Z')).toBe('Sat 20 Jul 2024 00:30');
  });
  it('handles the clocks going forward and back', () => {
    // 31 Mar 2024 01:00 UTC is 02:00 BST; 27 Oct 2024 01:00 UTC is 01:00 GMT.
    expect(formatDateTime('2024-03-31T00:59:00Z')).toBe('Sun 31 Mar 2024 00:59');
    expect(formatDateTime('2024-03-31T01:00:00Z')).toBe('Sun 31 Mar 2024 02:00');
    expect(formatDateTime('2024-10-27T00:30:00Z')).toBe('Sun 27 Oct 2024 01:30');
    expect(formatDateTime('2024-10-27T01:30:00Z')).toBe('Sun 27 Oct 2024 01:30');
  });
  it('formats times with a 24-hour clock', () => {
    expect(formatTime('2024-07-19T13:05:00Z')).toBe('14:05');
  });
  it('formats calendar dates without shifting them', () => {
    expect(formatDate('2024-07-19')).toBe('Fri 19 Jul 2024');
    expect(formatBirthDate('1950-03-07')).toBe('7 Mar 1950');
    expect(formatBirthDate(null)).toBe('not recorded');
  });
  it('gives London today, even late in the UTC evening in summer', () => {
    expect(londonToday(new Date('2024-07-19T23:30:00Z'))).toBe('2024-07-20');
    expect(londonToday(new Date('2024-01-19T23:30:00Z'))).toBe('2024-01-19');
  });
  it('moves dates by days across month ends', () => {
    expect(addDays('2024-07-31', 1)).toBe('2024-08-01');
    expect(addDays('2024-03-01', -1)).toBe('2024-02-29');
  });
  it('counts age in whole years, birthday included', () => {
    expect(ageOn('1950-07-19', '2024-07-19')).toBe(74);
    expect(ageOn('1950-07-20', '2024-07-19')).toBe(73);
  });
  it('describes data age', () => {
    expect(describeAge(30)).toBe('just now');
    expect(describeAge(300)).toBe('5 min ago');
    expect(describeAge(3 * 3600 + 600)).toBe('3 h 10 min ago');
    expect(describeAge(86400 * 2)).toBe('2 days ago');
    expect(describeAge(null)).toBe('never');
  });
});
