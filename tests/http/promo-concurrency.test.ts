/**
 * A promo code works once, ever, under concurrency (SPEC 5): many activations of one code at
 * once — by the same person and by different people — write exactly one ledger entry, on the
 * embedded store and on a PostgreSQL server (where the transactions really overlap). The
 * PostgreSQL half fails (never skips) when the server is unreachable, unless
 * SARAFAN_SKIP_POSTGRES=1 says to skip.
 */
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { activatePromoCode } from '../../src/handlers/activate-promo-code.js';
import { AppError } from '../../src/handlers/errors.js';
import type { Installation } from '../../src/handlers/ports.js';
import type { SqlStore } from '../../src/store/open-store.js';
import { installRequest } from '../fixtures/bitrix/payloads.js';
import { createHarness, type Harness } from '../support/harness.js';
import { createDatabase, dropDatabase, serverUrl, withDatabase } from '../support/postgres.js';
import { FORM } from '../support/scenario.js';

const skipPostgres = process.env.SARAFAN_SKIP_POSTGRES === '1';
const PARALLEL = 12;

function suite(name: string, open: () => Promise<{ h: Harness; cleanup: () => Promise<void> }>) {
  describe(name, () => {
    let h: Harness;
    let cleanup: () => Promise<void>;
    let installation: Installation;

    beforeAll(async () => {
      ({ h, cleanup } = await open());
      const { query, body } = installRequest(h.portal);
      expect((await request(h.app).post(`/b24/install?${query}`).set('Content-Type', FORM).send(body)).status).toBe(200);
      installation = (await h.store.installations.findByMemberId(h.portal.memberId))!;
    });

    afterAll(async () => {
      await h?.close();
      await cleanup?.();
    });

    const outcomesOf = (results: PromiseSettledResult<unknown>[]) =>
      results.map((r) => (r.status === 'fulfilled' ? 'ok' : r.reason instanceof AppError ? (r.reason.reason ?? r.reason.code) : String(r.reason))).sort();

    it('many parallel activations of one code: one succeeds, the rest are already_used, one entry', async () => {
      const now = new Date();
      const campaign = await h.store.promo.createCampaign({ portalId: installation.id, name: 'Гонка', value: 1000, codeCount: 2, expiresAt: null, createdBy: 1, createdAt: now });
      await h.store.promo.addCodes(installation.id, campaign.id, ['RACE7777', 'SAME8888']);

      // Different people (each also being enrolled) race for one code.
      const people = Array.from({ length: PARALLEL }, (_, i) => ({ entity: 'contact' as const, id: 500 + i }));
      const racing = await Promise.allSettled(people.map((p) => activatePromoCode(h.deps, installation, p, 'race7777', 1)));
      expect(outcomesOf(racing)).toEqual([...Array<string>(PARALLEL - 1).fill('already_used'), 'ok']);

      // One person presses the button many times at once.
      const same = await Promise.allSettled(people.map(() => activatePromoCode(h.deps, installation, { entity: 'lead', id: 77 }, 'SAME8888', 1)));
      expect(outcomesOf(same)).toEqual([...Array<string>(PARALLEL - 1).fill('already_used'), 'ok']);

      const raw = (h.store as SqlStore).rawQuery.bind(h.store);
      const entries = await raw<{ idempotency_key: string; amount: string }>("SELECT idempotency_key, amount FROM ledger_entries WHERE portal_id = $1 AND reason = 'promo' ORDER BY id", [installation.id]);
      expect(entries.map((e) => [e.idempotency_key, Number(e.amount)])).toEqual([
        ['promo:RACE7777', 1000],
        ['promo:SAME8888', 1000],
      ]);
      // The losers left nothing behind: only the winners became members.
      const members = await raw<{ n: string }>('SELECT count(*) AS n FROM members WHERE portal_id = $1', [installation.id]);
      expect(Number(members[0]!.n)).toBe(2);
    });
  });
}

suite('promo activation races: embedded store', async () => ({ h: await createHarness(), cleanup: async () => {} }));

if (skipPostgres) {
  describe.skip('promo activation races: postgres — skipped: SARAFAN_SKIP_POSTGRES=1 is set', () => {
    it('runs only against a PostgreSQL server', () => {});
  });
} else {
  suite('promo activation races: postgres', async () => {
    const database = await createDatabase();
    const h = await createHarness({ databaseUrl: withDatabase(serverUrl, database) });
    return { h, cleanup: () => dropDatabase(database) };
  });
}
