/**
 * The worker loop in the background, as SARAFAN_ROLE=worker runs it: a lone change is picked up
 * at once; after a partial run the loop lingers (so a burst becomes one run: one read request,
 * full write batches); stop() ends the linger at once and leaves queued work queued (durable).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWorker } from '../../server/jobs/worker.js';
import { crmEvent } from '../fixtures/bitrix/payloads.js';
import { createHarness, type Harness } from '../support/harness.js';
import { installApp, sendEvent } from '../support/scenario.js';

let h: Harness;
let pid: number;

beforeAll(async () => {
  h = await createHarness();
  pid = await installApp(h);
});

afterAll(async () => {
  await h.close();
});

/** Looks again every few milliseconds until `check` holds; the test's timeout is the only deadline. */
async function until(check: () => Promise<boolean>): Promise<void> {
  while (!(await check())) await new Promise((r) => setTimeout(r, 10));
}

// Far longer than the test's timeout: were the loop to linger before a lone change or to keep
// lingering after stop(), the test would time out instead of passing.
const LINGER_MS = 10 * 60_000;

describe('the background worker loop', () => {
  it('runs a lone change at once, lingers after a partial run, and stops without losing what is queued', async () => {
    const worker = createWorker(h.deps, { workerId: 'loop-test', idleMs: 10, lingerMs: LINGER_MS });
    const deal = h.portal.add('deal', { TITLE: 'Одна', STAGE_ID: 'NEW', OPPORTUNITY: 10 });
    await sendEvent(h, crmEvent(h.portal, 'ONCRMDEALADD', deal));
    h.portal.resetCalls();
    worker.start();
    await until(async () => (await h.store.jobs.depth(pid)).queued === 0 && h.portal.calls.length > 0);
    await until(async () => (await h.store.jobs.depth(pid)).running === 0);
    expect(await h.store.deals.get(pid, deal)).not.toBeNull();

    // The run was partial (1 of 500): the loop now lingers, so the next change waits.
    const second = h.portal.add('deal', { TITLE: 'Вторая', STAGE_ID: 'NEW', OPPORTUNITY: 20 });
    await sendEvent(h, crmEvent(h.portal, 'ONCRMDEALADD', second));
    const calls = h.portal.calls.length;
    // Not a deadline: however slow the machine, a lingering loop does not claim within these 500 ms.
    await new Promise((r) => setTimeout(r, 500));
    expect(await h.store.jobs.depth(pid)).toMatchObject({ queued: 1, running: 0 });
    expect(h.portal.calls.length).toBe(calls);

    await worker.stop();
    expect(await h.store.jobs.depth(pid)).toMatchObject({ queued: 1, running: 0 });
    // Another worker (or the next start) finds it.
    expect(await h.worker.drain()).toBe(1);
    expect(await h.store.deals.get(pid, second)).not.toBeNull();
  });

  it('answers event deliveries in flight before it starts a run, and starts anyway after maxDeferMs', async () => {
    let delivering = true;
    const ingest = { begin: () => () => undefined, busy: () => delivering };
    const worker = createWorker({ ...h.deps, ingest }, { workerId: 'defer-test', idleMs: 10, lingerMs: LINGER_MS, maxDeferMs: LINGER_MS });
    const deal = h.portal.add('deal', { TITLE: 'Во время залпа', STAGE_ID: 'NEW', OPPORTUNITY: 30 });
    await sendEvent(h, crmEvent(h.portal, 'ONCRMDEALADD', deal));
    worker.start();
    // Not a deadline: while deliveries are in flight the loop does not claim, however long it waits.
    await new Promise((r) => setTimeout(r, 300));
    expect(await h.store.jobs.depth(pid)).toMatchObject({ queued: 1, running: 0 });
    delivering = false;
    await until(async () => (await h.store.jobs.depth(pid)).queued === 0 && (await h.store.deals.get(pid, deal)) !== null);
    await worker.stop();

    // A stream that never pauses cannot starve the queue: the run starts after maxDeferMs.
    delivering = true;
    const bounded = createWorker({ ...h.deps, ingest }, { workerId: 'defer-bounded', idleMs: 10, lingerMs: LINGER_MS, maxDeferMs: 50 });
    const next = h.portal.add('deal', { TITLE: 'Под потоком', STAGE_ID: 'NEW', OPPORTUNITY: 40 });
    await sendEvent(h, crmEvent(h.portal, 'ONCRMDEALADD', next));
    bounded.start();
    await until(async () => (await h.store.deals.get(pid, next)) !== null);
    await bounded.stop();
  });
});
