import express from 'express';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { createMetrics, portalLabel, type MetricsOptions } from '../../../server/metrics.js';
import type { JobStats } from '../../../src/handlers/ports.js';
import { sample } from '../../support/prometheus.js';

const NOW = new Date('2026-03-01T12:00:00.000Z');
const none = { count: 0, oldestRunAt: null, oldestLockedAt: null };
const empty: JobStats = { queued: none, running: none, dead: none };

function metrics(over: Partial<MetricsOptions> = {}, warnings: unknown[] = []) {
  return createMetrics({
    jobs: { stats: async () => empty },
    clock: { now: () => NOW },
    log: { info: () => {}, debug: () => {}, error: () => {}, warn: (fields, msg) => warnings.push({ ...fields, msg }) },
    defaultMetrics: false,
    ...over,
  });
}

describe('portalLabel', () => {
  it('is 12 hex digits of a hash: stable, distinct per portal, never the member_id', () => {
    const id = 'a223c4e5f6a7b8c9d0e1f2a3b4c5d6e7';
    expect(portalLabel(id)).toMatch(/^[0-9a-f]{12}$/);
    expect(portalLabel(id)).toBe(portalLabel(id));
    expect(portalLabel(id)).not.toBe(portalLabel(`${id}x`));
    expect(id).not.toContain(portalLabel(id));
  });
});

describe('createMetrics', () => {
  it('reads queue depth and age from the store at each render: queued and dead since run_at, running since claimed', async () => {
    let stats: JobStats = {
      queued: { count: 3, oldestRunAt: new Date(NOW.getTime() - 90_000), oldestLockedAt: null },
      running: { count: 1, oldestRunAt: new Date(NOW.getTime() - 600_000), oldestLockedAt: new Date(NOW.getTime() - 4_000) },
      dead: { count: 2, oldestRunAt: new Date(NOW.getTime() - 3_600_000), oldestLockedAt: new Date(NOW.getTime() - 3_600_000) },
    };
    const m = metrics({ jobs: { stats: async () => stats } });
    let text = await m.render();
    expect(['queued', 'running', 'dead'].map((state) => sample(text, 'sarafan_queue_jobs', { state }))).toEqual([3, 1, 2]);
    expect(['queued', 'running', 'dead'].map((state) => sample(text, 'sarafan_queue_oldest_job_age_seconds', { state }))).toEqual([90, 4, 3600]);

    // A queued job not due yet (a retry's back-off) has waited 0 s, not a negative time.
    stats = { ...empty, queued: { count: 1, oldestRunAt: new Date(NOW.getTime() + 10_000), oldestLockedAt: null } };
    text = await m.render();
    expect(sample(text, 'sarafan_queue_jobs', { state: 'queued' })).toBe(1);
    expect(sample(text, 'sarafan_queue_oldest_job_age_seconds', { state: 'queued' })).toBe(0);
    expect(sample(text, 'sarafan_queue_jobs', { state: 'dead' })).toBe(0);
  });

  it('without the store, the queue gauges are absent (not stale), a warning is logged, the rest still renders', async () => {
    let fail = false;
    const warnings: unknown[] = [];
    const m = metrics({ jobs: { stats: async () => (fail ? Promise.reject(new Error('connection refused')) : { ...empty, queued: { ...none, count: 5 } }) } }, warnings);
    m.jobsDone('crm.change', 2);
    expect(sample(await m.render(), 'sarafan_queue_jobs', { state: 'queued' })).toBe(5);
    fail = true;
    const text = await m.render();
    expect(sample(text, 'sarafan_queue_jobs', { state: 'queued' })).toBeUndefined();
    expect(sample(text, 'sarafan_jobs_done_total', { kind: 'crm.change' })).toBe(2);
    expect(warnings).toEqual([{ source: 'queue', error: 'connection refused', msg: 'metrics.collect_failed' }]);
  });

  it('counts jobs done, retried and dead by kind', async () => {
    const m = metrics();
    m.jobsDone('crm.change', 3);
    m.jobsDone('crm.change', 0);
    m.jobsDone('app.reconcile', 1);
    m.jobFailed('crm.change', false);
    m.jobFailed('crm.change', false);
    m.jobFailed('app.reconcile', true);
    const text = await m.render();
    expect(sample(text, 'sarafan_jobs_done_total', { kind: 'crm.change' })).toBe(3);
    expect(sample(text, 'sarafan_jobs_done_total', { kind: 'app.reconcile' })).toBe(1);
    expect(sample(text, 'sarafan_jobs_failed_total', { kind: 'crm.change' })).toBe(2);
    expect(sample(text, 'sarafan_jobs_dead_total', { kind: 'crm.change' })).toBeUndefined();
    expect(sample(text, 'sarafan_jobs_dead_total', { kind: 'app.reconcile' })).toBe(1);
  });

  it('counts portal requests per hashed portal, and the two limit answers as throttles', async () => {
    const m = metrics();
    m.requested('member-a', { status: 200, error: null });
    m.requested('member-a', { status: 503, error: 'QUERY_LIMIT_EXCEEDED' });
    m.requested('member-a', { status: 429, error: 'OPERATION_TIME_LIMIT' });
    m.requested('member-a', { status: 400, error: 'ACCESS_DENIED' });
    m.requested('member-b', { status: 0, error: null });
    const text = await m.render();
    const a = portalLabel('member-a');
    expect(sample(text, 'sarafan_portal_requests_total', { portal: a })).toBe(4);
    expect(sample(text, 'sarafan_portal_requests_total', { portal: portalLabel('member-b') })).toBe(1);
    expect(sample(text, 'sarafan_portal_throttled_total', { portal: a, code: 'QUERY_LIMIT_EXCEEDED' })).toBe(1);
    expect(sample(text, 'sarafan_portal_throttled_total', { portal: a, code: 'OPERATION_TIME_LIMIT' })).toBe(1);
    expect(sample(text, 'sarafan_portal_throttled_total', { portal: a, code: 'ACCESS_DENIED' })).toBeUndefined();
    expect(text).not.toContain('member-a');
  });

  it('reports the reconciliation lag the callback gives, per hashed portal, as of this render', async () => {
    let lags = [
      { portal: 'member-a', seconds: 120 },
      { portal: 'member-b', seconds: 3 },
    ];
    const m = metrics({ reconcileLag: async () => lags });
    let text = await m.render();
    expect(sample(text, 'sarafan_reconcile_lag_seconds', { portal: portalLabel('member-a') })).toBe(120);
    expect(sample(text, 'sarafan_reconcile_lag_seconds', { portal: portalLabel('member-b') })).toBe(3);
    lags = [{ portal: 'member-b', seconds: 30 }];
    text = await m.render();
    expect(sample(text, 'sarafan_reconcile_lag_seconds', { portal: portalLabel('member-a') })).toBeUndefined();
    expect(sample(text, 'sarafan_reconcile_lag_seconds', { portal: portalLabel('member-b') })).toBe(30);
    expect(text).not.toContain('member-');
  });

  it('puts each acknowledgement in the bucket of its latency (1 ms … 1 s), by status', async () => {
    let ms = 0;
    const m = metrics({ elapsedMs: () => ms });
    const app = express();
    app.post('/b24/events', m.eventAckTimer(), (req, res, next) => {
      ms += Number(req.query.ms);
      if (req.query.fail) return next(new Error('boom'));
      res.json({ status: 'queued' });
    });
    for (const took of [0.5, 3, 3, 40, 700]) await request(app).post(`/b24/events?ms=${took}`);
    await request(app).post('/b24/events?ms=60&fail=1');
    const text = await m.render();
    const bucket = (le: string, status = '200') => sample(text, 'sarafan_event_ack_seconds_bucket', { status, le });
    expect(['0.001', '0.002', '0.005', '0.01', '0.02', '0.05', '0.1', '0.25', '0.5', '1', '+Inf'].map((le) => bucket(le))).toEqual([1, 1, 3, 3, 3, 4, 4, 4, 4, 5, 5]);
    expect(sample(text, 'sarafan_event_ack_seconds_sum', { status: '200' })).toBeCloseTo(0.7465, 6);
    expect(bucket('0.05', '500')).toBe(0);
    expect(bucket('0.1', '500')).toBe(1);
  });

  it('each composition has its own registry', async () => {
    const a = metrics();
    const b = metrics({ defaultMetrics: true });
    a.jobsDone('crm.change', 7);
    expect(sample(await b.render(), 'sarafan_jobs_done_total', { kind: 'crm.change' })).toBeUndefined();
    expect(sample(await a.render(), 'sarafan_jobs_done_total', { kind: 'crm.change' })).toBe(7);
    expect(await a.render()).not.toContain('process_cpu_user_seconds_total');
    expect(await b.render()).toContain('process_cpu_user_seconds_total');
  });
});
