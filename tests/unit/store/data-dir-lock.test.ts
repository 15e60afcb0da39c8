/**
 * The embedded store's data-directory lock after a crash: a lock whose process is gone is taken
 * over; so is one naming this very pid when this process does not hold it — what a container
 * restarted after a SIGKILL finds, its new process having the pid of the killed one.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { acquireDataDirLock } from '../../../src/store/data-dir-lock.js';

const dirs: string[] = [];
const dataDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'sarafan-lock-'));
  dirs.push(dir);
  return dir;
};
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('data-directory lock', () => {
  it('takes over the lock of a killed process', () => {
    const dir = dataDir();
    writeFileSync(join(dir, 'pglite.lock'), `${spawnSync(process.execPath, ['-e', '']).pid}\n`);
    const lock = acquireDataDirLock(dir);
    expect(readFileSync(lock.path, 'utf8')).toBe(`${process.pid}\n`);
    lock.release();
    expect(existsSync(lock.path)).toBe(false);
  });

  it('takes over a lock naming this pid that an earlier process left behind', () => {
    const dir = dataDir();
    writeFileSync(join(dir, 'pglite.lock'), `${process.pid}\n`);
    const lock = acquireDataDirLock(dir);
    expect(readFileSync(lock.path, 'utf8')).toBe(`${process.pid}\n`);
    // Held now, by this process: a second open is refused until it is released.
    expect(() => acquireDataDirLock(dir)).toThrow(`is in use by process ${process.pid}`);
    lock.release();
    acquireDataDirLock(dir).release();
  });

  it('refuses a lock held by a live process', () => {
    const dir = dataDir();
    writeFileSync(join(dir, 'pglite.lock'), `${process.ppid}\n`);
    expect(() => acquireDataDirLock(dir)).toThrow(`is in use by process ${process.ppid}`);
    expect(readFileSync(join(dir, 'pglite.lock'), 'utf8')).toBe(`${process.ppid}\n`);
  });
});
