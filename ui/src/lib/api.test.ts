// The invoke wrapper: arguments as the contract names them, errors as AppError.

import { clearMocks, mockIPC } from '@tauri-apps/api/mocks';
import { afterEach, describe, expect, it } from 'vitest';
import { api, AppError, SESSION_LOST } from './api';

describe('api', () => {
  afterEach(() => clearMocks());

  it('sends camelCase arguments under the contract command names', async () => {
    const seen: [string, unknown][] = [];
    mockIPC((cmd, args) => {
      seen.push([cmd, args]);
      return null;
    });
    await api.book('s1', 'p1');
    await api.resolveConflict('j1', 'keep_upstream', undefined, 'patient rang');
    await api.markAttendance('a1', 'did_not_attend');
    expect(seen).toEqual([
      ['book', { slotId: 's1', patientId: 'p1', description: undefined, comment: undefined }],
      ['resolve_conflict', { journalId: 'j1', choice: 'keep_upstream', slotId: undefined, reason: 'patient rang' }],
      ['mark_attendance', { appointmentId: 'a1', attendance: 'did_not_attend' }],
    ]);
  });

  it('rejects with an AppError carrying the core code and message', async () => {
    mockIPC(() => {
      throw { code: 'wrong_mode', message: 'Lifeboat is online: make changes in the clinical system.' };
    });
    const err = await api.book('s1', 'p1').catch((e) => e);
    expect(err).toBeInstanceOf(AppError);
    expect(err.code).toBe('wrong_mode');
    expect(err.message).toBe('Lifeboat is online: make changes in the clinical system.');
  });

  it('tells the shell when a command finds the session locked, but not for the session flow itself', async () => {
    mockIPC(() => {
      throw { code: 'locked', message: 'locked' };
    });
    const seen: string[] = [];
    const listener = (e: Event) => seen.push((e as CustomEvent<AppError>).detail.code);
    window.addEventListener(SESSION_LOST, listener);
    await api.searchPatients('smith').catch(() => {});
    await api.logout().catch(() => {});
    await api.unlock('wrong').catch(() => {});
    window.removeEventListener(SESSION_LOST, listener);
    expect(seen).toEqual(['locked']);
  });

  it('turns a bare string rejection (e.g. an unknown command) into an AppError', () => {
    expect(AppError.from('command foo not found')).toMatchObject({ code: 'internal', message: 'command foo not found' });
  });
});
