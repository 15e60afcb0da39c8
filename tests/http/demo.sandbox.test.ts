/**
 * server/demo against a real Sarafan over HTTP (what `npm start` runs in sandbox mode): the
 * sandbox portal starts with Sarafan installed and the furniture shop seeded, and the start
 * resolves only once the shop's won referred deals are credited in Sarafan's ledger and shown in
 * the CRM. Without a worker the credits never come: the start fails, saying what is missing.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_CLIENT_ID, startDemoPortal, type DemoPortalOptions } from '../../server/demo/sandbox-demo.js';
import { F } from '../../src/bitrix/crm-fields.js';
import { composeDemoSarafan, type DemoSarafan } from '../support/demo-sarafan.js';

let sarafan: DemoSarafan;
let dataDir: string;
let options: DemoPortalOptions;

beforeAll(async () => {
  dataDir = mkdtempSync(path.join(tmpdir(), 'sarafan-demo-'));
  sarafan = await composeDemoSarafan({ secretKey: 'demo-test-secret-key-0123456789abcdef', workerId: 'demo-worker' });
  const { portalServer, portalPort, appBaseUrl, store, log } = sarafan;
  options = { server: portalServer, port: portalPort, dataDir: null, appBaseUrl, store, log };
});

afterAll(async () => {
  await sarafan?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('startDemoPortal', () => {
  it('fails, naming what is missing, when Sarafan never enrols the first clients (no worker)', async () => {
    await expect(startDemoPortal({ ...options, stepTimeoutMs: 500, pollMs: 50 })).rejects.toThrow(
      /The demo is not ready: Sarafan did not enrol the demo's first clients \(contacts 1, 2, 3 have no UF_CRM_SARAFAN_CODE\) within 1 s/,
    );
  });

  it('resolves once the won referred deals are credited in the ledger and shown in the CRM', async () => {
    sarafan.worker.start();
    const demo = await startDemoPortal({ ...options, dataDir });
    try {
      expect(demo.url).toBe(`http://127.0.0.1:${sarafan.portalPort}/`);
      const { portal } = demo.sandbox;
      expect(portal.app(DEMO_CLIENT_ID)?.installed).toBe(true);
      expect(demo.seeded?.wonReferredDeals).toHaveLength(2);
      expect(portal.listEntities('contact', { start: -1, select: ['ID'] }).rows).toHaveLength(12);
      expect(portal.listEntities('lead', { start: -1, select: ['ID'] }).rows).toHaveLength(2);

      // Read at once, without waiting: the start itself waited for all of this.
      const installation = await sarafan.store.installations.findByMemberId(portal.memberId);
      const [olga, dmitry] = demo.seeded!.referrers;
      const [sergeyDeal, alexeyDeal] = demo.seeded!.wonReferredDeals;
      const credits = (await sarafan.store.ledger.forDeals(installation!.id, demo.seeded!.wonReferredDeals)).filter((e) => e.kind === 'credit');
      // One credit per won referred deal (their order in the ledger is the batch's, not the seed's).
      expect(credits.map((e) => [e.dealId, e.amount]).sort((x, y) => x[0]! - y[0]!)).toEqual(
        [
          [sergeyDeal, 720_000],
          [alexeyDeal, 1_500_000],
        ].sort((x, y) => x[0]! - y[0]!),
      );
      expect(Number(portal.getEntity('deal', sergeyDeal!)?.[F.REWARD])).toBe(7_200);
      expect(Number(portal.getEntity('deal', alexeyDeal!)?.[F.REWARD])).toBe(15_000);
      expect(Number(portal.getEntity('contact', olga!)?.[F.BALANCE])).toBe(7_200);
      expect(Number(portal.getEntity('contact', dmitry!)?.[F.BALANCE])).toBe(15_000);
      // The friends who won are enrolled in turn, and nothing is left in the queue.
      for (const deal of demo.seeded!.wonReferredDeals) {
        const contact = Number(portal.getEntity('deal', deal)?.CONTACT_ID);
        expect(portal.getEntity('contact', contact)?.[F.CODE]).toMatch(/^[2-9A-HJKMNP-Z]{6,8}$/);
      }
      expect(await sarafan.store.jobs.depth(installation!.id)).toMatchObject({ queued: 0, running: 0 });
      // The robot chain on the invoice stage: status, then redeem the most allowed when the balance it returned is above 1000.
      const chain = portal.stageRobots().filter((r) => r.stageId === 'PREPAYMENT_INVOICE');
      expect(chain).toEqual([
        expect.objectContaining({ clientId: DEMO_CLIENT_ID, code: 'sarafan_status', documentType: 'DEAL', properties: {} }),
        expect.objectContaining({ clientId: DEMO_CLIENT_ID, code: 'sarafan_redeem', documentType: 'DEAL', properties: { amount: '' }, condition: { operand: `{=A${chain[0]!.id}:balance}`, operator: '>', value: '1000' } }),
      ]);
      expect(portal.robots().filter((r) => r.clientId === DEMO_CLIENT_ID).map((r) => r.code)).toEqual(expect.arrayContaining(['sarafan_status', 'sarafan_redeem']));
    } finally {
      await demo.sandbox.close();
    }
  });

  it('on a restart keeps the portal it finds: Sarafan installed, nothing seeded again', async () => {
    const demo = await startDemoPortal({ ...options, dataDir });
    try {
      expect(demo.seeded).toBeNull();
      expect(demo.sandbox.portal.app(DEMO_CLIENT_ID)?.installed).toBe(true);
      expect(demo.sandbox.portal.listEntities('contact', { start: -1, select: ['ID'] }).rows).toHaveLength(12);
      expect(demo.sandbox.portal.stageRobots().map((r) => r.code)).toEqual(['sarafan_status', 'sarafan_redeem']);
    } finally {
      await demo.sandbox.close();
    }
  });
});
