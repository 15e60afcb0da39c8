import express from 'express';
import request from 'supertest';
import { describe, expect, it, vi } from 'vitest';
import { healthRoutes, READY_TIMEOUT_MS, type HealthDeps } from '../../../server/routes/health.js';

function app(deps: HealthDeps) {
  return express().use(healthRoutes(deps));
}

describe('healthRoutes', () => {
  it('GET /healthz answers 200 without touching readiness', async () => {
    const ready = vi.fn(async () => false);
    const res = await request(app({ ready })).get('/healthz').expect(200);
    expect(res.body).toEqual({ status: 'ok' });
    expect(res.headers['cache-control']).toBe('no-store');
    expect(ready).not.toHaveBeenCalled();
  });

  it('GET /readyz answers 200 when ready', async () => {
    const res = await request(app({ ready: async () => true })).get('/readyz').expect(200);
    expect(res.body).toEqual({ status: 'ready' });
  });

  it('GET /readyz answers 503 when not ready', async () => {
    const res = await request(app({ ready: async () => false })).get('/readyz').expect(503);
    expect(res.body).toEqual({ status: 'not_ready' });
  });

  it('GET /readyz answers 503 when the check throws, and reports why', async () => {
    const onNotReady = vi.fn();
    const failure = new Error('connection refused');
    const res = await request(app({ ready: async () => Promise.reject(failure), onNotReady }))
      .get('/readyz')
      .expect(503);
    expect(res.body).toEqual({ status: 'not_ready' });
    expect(onNotReady).toHaveBeenCalledWith(failure);
  });

  it('GET /readyz answers 503 when the check hangs past the timeout', async () => {
    const onNotReady = vi.fn();
    const started = Date.now();
    const res = await request(app({ ready: () => new Promise<boolean>(() => {}), readyTimeoutMs: 50, onNotReady }))
      .get('/readyz')
      .expect(503);
    expect(res.body).toEqual({ status: 'not_ready' });
    expect(Date.now() - started).toBeLessThan(1000);
    expect(onNotReady).toHaveBeenCalledWith(expect.objectContaining({ message: expect.stringContaining('50 ms') }));
  });

  it(`waits ${READY_TIMEOUT_MS} ms by default`, async () => {
    expect(READY_TIMEOUT_MS).toBe(2000);
    const slowButInTime = () => new Promise<boolean>((resolve) => setTimeout(() => resolve(true), 300));
    await request(app({ ready: slowButInTime })).get('/readyz').expect(200);
    const started = Date.now();
    await request(app({ ready: () => new Promise<boolean>(() => {}) }))
      .get('/readyz')
      .expect(503);
    expect(Date.now() - started).toBeGreaterThanOrEqual(READY_TIMEOUT_MS - 50);
  });
});
