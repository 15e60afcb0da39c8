/** The embedded store's hourly VACUUM (ANALYZE): run, logged, failures logged, nothing on PostgreSQL. */
import { describe, expect, it, vi } from 'vitest';
import { createStoreMaintenance } from '../../../server/jobs/store-maintenance.js';

function recordingLog() {
  const lines: { level: string; msg: string; obj: unknown }[] = [];
  const at = (level: string) => (obj: unknown, msg: string) => lines.push({ level, msg, obj });
  return { lines, log: { info: at('info'), warn: at('warn'), error: at('error'), debug: at('debug') } as never };
}

describe('store maintenance', () => {
  it('runs maintain() and logs how long it took', async () => {
    const { lines, log } = recordingLog();
    const maintain = vi.fn(async () => ({ ms: 42 }));
    await createStoreMaintenance({ driver: 'pglite', maintain }, log).run();
    expect(maintain).toHaveBeenCalledTimes(1);
    expect(lines).toEqual([{ level: 'info', msg: 'store.maintained', obj: { ms: 42 } }]);
  });

  it('logs a failure instead of throwing it, and runs again next time', async () => {
    const { lines, log } = recordingLog();
    const maintain = vi.fn().mockRejectedValueOnce(new Error('disk full')).mockResolvedValueOnce({ ms: 1 });
    const maintenance = createStoreMaintenance({ driver: 'pglite', maintain }, log);
    await maintenance.run();
    await maintenance.run();
    expect(lines.map((l) => [l.level, l.msg, l.obj])).toEqual([
      ['error', 'store.maintenance_failed', { error: 'disk full' }],
      ['info', 'store.maintained', { ms: 1 }],
    ]);
  });

  it('joins a run in progress instead of starting a second one, and stop() waits for it', async () => {
    const { log } = recordingLog();
    let finish!: (v: { ms: number }) => void;
    const maintain = vi.fn(() => new Promise<{ ms: number }>((resolve) => (finish = resolve)));
    const maintenance = createStoreMaintenance({ driver: 'pglite', maintain }, log);
    const first = maintenance.run();
    const second = maintenance.run();
    expect(maintain).toHaveBeenCalledTimes(1);
    let stopped = false;
    const stopping = maintenance.stop().then(() => (stopped = true));
    await Promise.resolve();
    expect(stopped).toBe(false);
    finish({ ms: 5 });
    await Promise.all([first, second, stopping]);
    expect(stopped).toBe(true);
  });

  it('logs nothing when the store has nothing to do (PostgreSQL), and schedules no timer there', async () => {
    const { lines, log } = recordingLog();
    const maintain = vi.fn(async () => null);
    const maintenance = createStoreMaintenance({ driver: 'postgres', maintain }, log, '* * * * * *');
    maintenance.start();
    await maintenance.run();
    await maintenance.stop();
    expect(maintain).toHaveBeenCalledTimes(1);
    expect(lines).toEqual([]);
  });
});
