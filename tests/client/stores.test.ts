/** The setup stores with real actions against the fake API, outside any view. */
import { createPinia, setActivePinia } from 'pinia';
import { createApp } from 'vue';
import { describe, expect, it } from 'vitest';
import { DEPS } from '../../client/src/context';
import { useDealStore } from '../../client/src/stores/deal';
import { usePersonStore } from '../../client/src/stores/person';
import { member, tree } from './fixtures';
import { FakeApi, FakePortal } from './support';

function withDeps<T>(api: FakeApi, portal: FakePortal, use: () => T): T {
  const app = createApp({});
  const pinia = createPinia();
  app.use(pinia);
  setActivePinia(pinia);
  app.provide(DEPS, { api: api.api, portal, newKey: () => 'k', delay: async () => undefined, download: api.download, now: () => new Date('2026-12-03T10:00:00.000Z') });
  return app.runWithContext(use);
}

describe('the deal store', () => {
  it('keeps only the answer to the latest code typed', async () => {
    const api = new FakeApi()
      .on('GET /api/codes/AAAA', { code: 'AAAA', valid: true, referrer: { entity: 'contact', id: 1 } })
      .on('GET /api/codes/BBBB', { code: 'BBBB', valid: false, reason: 'unknown_code' })
      .hold('GET /api/codes/AAAA');
    const store = withDeps(api, new FakePortal(), () => useDealStore());
    const first = store.checkCode('aaaa');
    const second = store.checkCode('bbbb');
    await second;
    api.release('GET /api/codes/AAAA');
    await first;
    expect(store.code).toEqual({ state: 'invalid', code: 'BBBB', reason: 'unknown_code' });
  });

  it('an error loading the deal is a state with a message, not an exception', async () => {
    const store = withDeps(new FakeApi(), new FakePortal(), () => useDealStore());
    await store.load(5);
    expect(store.state).toBe('error');
    expect(store.error?.message).toContain('unexpected request: GET /api/deals/5');
  });
});

describe('the person store', () => {
  it('loads the member and the referral tree together, and asks the portal for every name once', async () => {
    const portal = new FakePortal();
    const asked: string[][] = [];
    const names = portal.names.bind(portal);
    portal.names = async (people) => {
      asked.push(people.map((p) => `${p.entity}:${p.id}`));
      return names(people);
    };
    const api = new FakeApi().on('GET /api/members/contact/5?limit=20', member({ referrer: { entity: 'lead', id: 3 } })).on('GET /api/members/contact/5/referrals', tree());
    const store = withDeps(api, portal, () => usePersonStore());
    await store.load('contact', 5);
    await store.load('contact', 5);
    expect(store.state).toBe('ready');
    expect(store.tree?.referrals).toHaveLength(1);
    expect(asked.flat().sort()).toEqual(['contact:9', 'lead:3']);
  });
});
