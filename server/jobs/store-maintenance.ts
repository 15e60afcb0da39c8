/**
 * The embedded store's housekeeping (PGlite has no autovacuum: see SqlStore.maintain), on a
 * node-cron timer in the one process that owns its files. Hourly by default, off the minutes of
 * the scheduled jobs. On PostgreSQL nothing is scheduled: the server's autovacuum does it.
 */
import { createTask, type ScheduledTask } from 'node-cron';
import type { Log } from '../../src/handlers/ports.js';
import type { SqlStore } from '../../src/store/open-store.js';

export const STORE_MAINTENANCE_CRON = '27 * * * *';

export interface StoreMaintenance {
  start(): void;
  /** Stops the timer and waits for a run in progress. */
  stop(): Promise<void>;
  /** One run (what the timer calls; tests call it directly). */
  run(): Promise<void>;
}

export function createStoreMaintenance(store: Pick<SqlStore, 'driver' | 'maintain'>, log: Log, cron = STORE_MAINTENANCE_CRON): StoreMaintenance {
  let task: ScheduledTask | null = null;
  let running: Promise<void> | null = null;
  const run = (): Promise<void> =>
    (running ??= store
      .maintain()
      .then(
        (done) => {
          if (done) log.info(done, 'store.maintained');
        },
        (e: unknown) => log.error({ error: e instanceof Error ? e.message : String(e) }, 'store.maintenance_failed'),
      )
      .finally(() => {
        running = null;
      }));
  return {
    start() {
      if (task || store.driver !== 'pglite') return;
      task = createTask(cron, () => run(), { name: 'sarafan.store-maintenance', noOverlap: true });
      void task.start();
    },
    async stop() {
      await task?.destroy();
      task = null;
      await running;
    },
    run,
  };
}
