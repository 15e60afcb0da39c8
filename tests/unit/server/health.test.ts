import express from 'express';
import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
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

  // The readiness timeout runs on fake timers: the test moves time, the machine's speed does not matter.
  describe('the readiness timeout', () => {
    beforeEach(() => {
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    });
    afterEach(() => {
      vi.useRealTimers();
    });

    /** A check that tells when it is asked, and answers as `answer` says. */
    function check(answer: () => Promise<boolean>) {
      let asked!: () => void;
      const wasAsked = new Promise<void>((resolve) => (asked = resolve));
      return {
        wasAsked,
        ready: () => {
          asked();
          return answer();
        },
      };
    }

    it('answers 503 once a hanging check has taken readyTimeoutMs, and reports why', async () => {
      const onNotReady = vi.fn();
      const hanging = check(() => new Promise<boolean>(() => {}));
      const res = request(app({ ready: hanging.ready, readyTimeoutMs: 50, onNotReady })).get('/readyz').then((r) => r);
      await hanging.wasAsked;
      await vi.advanceTimersByTimeAsync(49);
      expect(onNotReady).not.toHaveBeenCalled();
      await vi.advanceTimersByTimeAsync(1);
      expect(onNotReady).toHaveBeenCalledWith(expect.objectContaining({ message: expect.stringContaining('50 ms') }));
      const answered = await res;
      expect(answered.status).toBe(503);
      expect(answered.body).toEqual({ status: 'not_ready' });
    });

    it(`waits ${READY_TIMEOUT_MS} ms by default: a check answering within it is ready`, async () => {
      expect(READY_TIMEOUT_MS).toBe(2000);
      const onNotReady = vi.fn();
      const slow = check(() => new Promise<boolean>((resolve) => setTimeout(() => resolve(true), 1_999)));
      const ok = request(app({ ready: slow.ready, onNotReady })).get('/readyz').then((r) => r);
      await slow.wasAsked;
      await vi.advanceTimersByTimeAsync(1_999);
      expect((await ok).status).toBe(200);

      const hanging = check(() => new Promise<boolean>(() => {}));
      const res = request(app({ ready: hanging.ready, onNotReady })).get('/readyz').then((r) => r);
      await hanging.wasAsked;
      await vi.advanceTimersByTimeAsync(1_999);
      expect(onNotReady).not.toHaveBeenCalled();
      await vi.advanceTimersByTimeAsync(1);
      expect(onNotReady).toHaveBeenCalledTimes(1);
      expect((await res).status).toBe(503);
    });
  });
});
