/**
 * PGlite has no cross-process lock (two processes opening one data directory corrupt it), so the
 * directory is guarded by `pglite.lock`, created with O_EXCL and holding the owner's pid. A lock
 * whose process is gone is taken over.
 */
import { closeSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Log } from '../handlers/ports.js';

export interface DataDirLock {
  readonly path: string;
  release(): void;
}

/** A lock file still being written (no pid yet) is respected for this long. */
const FRESH_MS = 10_000;

/**
 * Lock files this process holds. A lock naming this process's pid that is not among them was
 * left by an earlier process that had the same pid: a container restarted after a SIGKILL or an
 * OOM kill runs Sarafan under the pid its previous incarnation had (often 1).
 */
const heldHere = new Set<string>();

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readHolder(path: string): { pid: number | null; fresh: boolean } | null {
  try {
    const text = readFileSync(path, 'utf8').trim();
    const fresh = Date.now() - statSync(path).mtimeMs < FRESH_MS;
    return { pid: /^\d+$/.test(text) ? Number(text) : null, fresh };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

/**
 * Remove a stale lock file. Two processes taking over at once are kept apart by a second O_EXCL
 * file, so neither can delete the fresh lock the other has just written.
 */
function takeOver(dataDir: string, path: string, stalePid: number | null, log?: Log): void {
  const guard = `${path}.takeover`;
  try {
    closeSync(openSync(guard, 'wx'));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    if (readHolder(guard)?.fresh) throw new Error(`data directory ${dataDir} is being opened by another process (lock file ${path})`);
    unlinkQuietly(guard);
    return;
  }
  try {
    if (readHolder(path)?.pid === stalePid) {
      log?.warn({ lockFile: path, stalePid }, 'store.lock_taken_over');
      unlinkQuietly(path);
    }
  } finally {
    unlinkQuietly(guard);
  }
}

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

export function acquireDataDirLock(dataDir: string, log?: Log): DataDirLock {
  const path = join(dataDir, 'pglite.lock');
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(path, 'wx');
      try {
        writeSync(fd, `${process.pid}\n`);
      } finally {
        closeSync(fd);
      }
      heldHere.add(resolve(path));
      return {
        path,
        release() {
          heldHere.delete(resolve(path));
          if (readHolder(path)?.pid === process.pid) unlinkSync(path);
        },
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const holder = readHolder(path);
    if (holder === null) continue; // released meanwhile
    const stale = holder.pid === process.pid ? !heldHere.has(resolve(path)) : holder.pid !== null && !isAlive(holder.pid);
    if (holder.pid !== null && !stale) {
      throw new Error(
        `data directory ${dataDir} is in use by process ${holder.pid} (lock file ${path}); ` +
          'stop that process, or delete the lock file if that process is not Sarafan',
      );
    }
    if (holder.pid === null && holder.fresh) {
      throw new Error(`data directory ${dataDir} is being opened by another process (lock file ${path})`);
    }
    takeOver(dataDir, path, holder.pid, log);
  }
  throw new Error(`data directory ${dataDir}: could not take the lock file ${path}`);
}
