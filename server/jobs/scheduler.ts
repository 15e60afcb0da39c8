/**
 * Scheduled work (SPEC 6) on node-cron timers. Every instance with a worker runs the same
 * schedules; each tick only claims itself for the cluster and enqueues deduplicated jobs in the
 * durable queue (src/handlers/enqueue-scheduled-jobs.ts) — the worker does the work. The tick
 * time is node-cron's scheduled slot (whole seconds), the same on every instance, so that the
 * instances compete for one (schedule, tick) claim.
 */
import { createTask, type Logger, type ScheduledTask } from 'node-cron';
import { enqueueScheduledJobs, type TickOutcome } from '../../src/handlers/enqueue-scheduled-jobs.js';
import type { Deps, Log, ScheduledJobKind } from '../../src/handlers/ports.js';
import { DEFAULT_RECONCILE_CRON } from '../config.js';

/** node-cron schedules (5 or 6 fields) per scheduled job kind. */
export interface ScheduleTimes {
  /** SARAFAN_RECONCILE_CRON. */
  'reconcile.crm'?: string | undefined;
  'holds.mature'?: string | undefined;
  'queue.purge'?: string | undefined;
  'bonus.expire'?: string | undefined;
  'segments.rfm'?: string | undefined;
}

/**
 * Reconciliation every five minutes (SARAFAN_RECONCILE_CRON overrides it), holds mature at least
 * hourly (SPEC 6), bonus expires hourly, old jobs go once a day at a quiet hour. An undefined time turns one off.
 */
export const DEFAULT_SCHEDULES: Required<ScheduleTimes> = {
  'reconcile.crm': DEFAULT_RECONCILE_CRON,
  'holds.mature': '7 * * * *',
  'queue.purge': '17 3 * * *',
  'bonus.expire': '37 * * * *',
  // RFM segments nightly, at a quiet hour apart from the purge (issue 12).
  'segments.rfm': '47 2 * * *',
};

export interface Scheduler {
  start(): void;
  /** Stops the timers and waits for a tick in progress. */
  stop(): Promise<void>;
  /** One tick of `kind` at its scheduled time (what the timers call; tests call it directly). */
  tick(kind: ScheduledJobKind, tickAt: Date): Promise<TickOutcome>;
}

function cronLogger(log: Log): Logger {
  const text = (m: string | Error) => (m instanceof Error ? m.message : m);
  return {
    info: (m) => log.debug({}, `schedule.cron: ${m}`),
    warn: (m) => log.warn({}, `schedule.cron: ${m}`),
    error: (m, err) => log.error({ error: err?.message }, `schedule.cron: ${text(m)}`),
    debug: (m) => log.debug({}, `schedule.cron: ${text(m)}`),
  };
}

export function createScheduler(deps: Deps, times: ScheduleTimes): Scheduler {
  const schedules = { ...DEFAULT_SCHEDULES, ...times };
  const tasks: ScheduledTask[] = [];
  const inFlight = new Set<Promise<unknown>>();

  const tick = (kind: ScheduledJobKind, tickAt: Date) => enqueueScheduledJobs(deps, kind, tickAt);

  function fire(kind: ScheduledJobKind, tickAt: Date): Promise<void> {
    const run = tick(kind, tickAt).then(
      () => undefined,
      (e: unknown) => deps.log.error({ schedule: kind, tickAt: tickAt.toISOString(), error: e instanceof Error ? e.message : String(e) }, 'schedule.tick_failed'),
    );
    inFlight.add(run);
    void run.finally(() => inFlight.delete(run));
    return run;
  }

  return {
    start() {
      if (tasks.length) return;
      for (const [kind, expression] of Object.entries(schedules) as [ScheduledJobKind, string | undefined][]) {
        if (!expression) continue;
        const task = createTask(expression, (ctx) => fire(kind, ctx.date), { name: `sarafan.${kind}`, noOverlap: true, logger: cronLogger(deps.log) });
        void task.start();
        tasks.push(task);
      }
      deps.log.info({ schedules }, 'schedule.started');
    },
    async stop() {
      for (const task of tasks.splice(0)) await task.destroy();
      await Promise.all([...inFlight]);
    },
    tick,
  };
}
