import { describe, expect, it } from 'vitest';
import { buildManifest } from '../../../install/manifest.js';
import type { Manifest } from '../../../src/bitrix/manifest-types.js';
import type { RegistrationReport } from '../../../src/handlers/ports.js';
import { readRegistration, reconcileRegistration } from '../../../src/bitrix/reconcile.js';
import { FakePortal } from './fake-portal.js';

const BASE = 'https://sarafan.example.com';
const NOW = new Date('2025-03-01T10:00:00.000Z');
const READS = ['crm.deal.userfield.list', 'crm.contact.userfield.list', 'crm.lead.userfield.list', 'event.get', 'placement.get', 'bizproc.robot.list'];
const manifest = buildManifest(BASE);

const ROBOT_CODES = ['sarafan_accrue', 'sarafan_redeem', 'sarafan_status', 'sarafan_enroll', 'sarafan_promo'];
/** What a report keeps once every robot is on the portal: a definition hash per code. */
const ROBOTS_IN_PLACE = Object.fromEntries(ROBOT_CODES.map((c) => [c, expect.stringMatching(/^[0-9a-f]{64}$/)]));

/** The installation's last report, as the store keeps it between runs (robot hashes live there). */
const lastReport = new WeakMap<FakePortal, RegistrationReport>();
async function reconcile(portal: FakePortal, m: Manifest = manifest): Promise<RegistrationReport> {
  const report = await reconcileRegistration(portal, m, NOW, { scope: 'crm,placement,bizproc', userId: 1, registration: lastReport.get(portal) ?? null });
  lastReport.set(portal, report);
  return report;
}

async function registeredPortal(): Promise<FakePortal> {
  const portal = new FakePortal();
  await reconcile(portal);
  portal.batches = [];
  portal.calls = [];
  portal.refusals = [];
  return portal;
}

describe('reconcileRegistration against a fresh portal', () => {
  it('reads in one batch, creates everything in one more and reports it', async () => {
    const portal = new FakePortal();
    const report = await reconcile(portal);

    expect(portal.batches).toHaveLength(2);
    expect(portal.methodsOf(0)).toEqual(READS);
    expect(portal.methodsOf(1)).toHaveLength(42);
    expect(portal.calls).toEqual([]);
    expect(report.at).toBe('2025-03-01T10:00:00.000Z');
    expect(report.updated).toEqual([]);
    expect(report.failed).toEqual([]);
    expect(report.created).toHaveLength(42);
    expect(report.created).toContain('field:lead:UF_CRM_SARAFAN_SEGMENT');
    expect(report.created).toContain('event:ONAPPUNINSTALL');
    expect(report.created).toContain('placement:CRM_CONTACT_DETAIL_TAB');

    expect(portal.fields.contact).toHaveLength(10);
    expect(portal.fields.lead).toHaveLength(10);
    expect(portal.fields.deal).toHaveLength(4);
    expect(portal.events).toHaveLength(10);
    expect(portal.placements).toHaveLength(3);
    expect(portal.field('deal', 'UF_CRM_SARAFAN_REWARD')).toMatchObject({
      USER_TYPE_ID: 'double',
      XML_ID: 'uf_crm_sarafan_reward',
      MANDATORY: 'N',
      MULTIPLE: 'N',
      EDIT_IN_LIST: 'N',
      SETTINGS: expect.objectContaining({ PRECISION: 2 }),
    });
    expect(portal.placements[0]).toMatchObject({ handler: `${BASE}/b24/frame`, title: 'Sarafan' });
  });

  it('sends only the read on a second run and reports nothing', async () => {
    const portal = await registeredPortal();
    const report = await reconcile(portal);

    expect(portal.batches).toHaveLength(1);
    expect(portal.methodsOf(0)).toEqual(READS);
    expect(portal.calls).toEqual([]);
    expect(report).toEqual({ at: NOW.toISOString(), created: [], updated: [], failed: [], robots: ROBOTS_IN_PLACE });
  });
});

describe('reconcileRegistration against a partly registered portal', () => {
  it('adds exactly the one missing field', async () => {
    const portal = await registeredPortal();
    portal.fields.contact = portal.fields.contact.filter((f) => f.FIELD_NAME !== 'UF_CRM_SARAFAN_TIER');

    const report = await reconcile(portal);

    expect(portal.batches).toHaveLength(2);
    expect(portal.batches[1]).toEqual([
      { method: 'crm.contact.userfield.add', params: { fields: expect.objectContaining({ FIELD_NAME: 'UF_CRM_SARAFAN_TIER', USER_TYPE_ID: 'string' }) } },
    ]);
    expect(report).toEqual({ at: NOW.toISOString(), created: ['field:contact:UF_CRM_SARAFAN_TIER'], updated: [], failed: [], robots: ROBOTS_IN_PLACE });
    expect(portal.field('contact', 'UF_CRM_SARAFAN_TIER')).toBeDefined();
  });

  it('moves every binding to a new base URL and leaves another app alone', async () => {
    const portal = await registeredPortal();
    portal.events.push({ event: 'ONCRMDEALUPDATE', handler: 'https://other-app.example/hook', auth_type: '0', offline: 0 });
    const moved = buildManifest('https://new-host.example.org/');

    const report = await reconcile(portal, moved);

    expect(portal.methodsOf(1).slice(0, 13).every((m) => m.endsWith('.unbind'))).toBe(true);
    expect(portal.methodsOf(1).slice(13, 26).every((m) => m.endsWith('.bind'))).toBe(true);
    // The robots' HANDLER moves too: their definition hash changed, so each is updated.
    expect(portal.methodsOf(1).slice(26)).toEqual(Array<string>(5).fill('bizproc.robot.update'));
    expect(portal.robots.get('sarafan_redeem')?.HANDLER).toBe('https://new-host.example.org/b24/robots/sarafan_redeem');
    expect(report.updated).toHaveLength(18);
    expect(report.created).toHaveLength(13);
    expect(report.failed).toEqual([]);
    expect(portal.events.map((e) => e.handler).sort()).toEqual([
      ...Array<string>(10).fill('https://new-host.example.org/b24/events'),
      'https://other-app.example/hook',
    ]);
    expect(new Set(portal.placements.map((p) => p.handler))).toEqual(new Set(['https://new-host.example.org/b24/frame']));
    expect(portal.fields.contact).toHaveLength(10);
  });

  it('repairs a drifted setting with one update', async () => {
    const portal = await registeredPortal();
    const balance = portal.field('lead', 'UF_CRM_SARAFAN_BALANCE')!;
    balance.SETTINGS = { PRECISION: 0, SIZE: 20, MIN_VALUE: 0, MAX_VALUE: 0, DEFAULT_VALUE: null };

    const report = await reconcile(portal);

    expect(portal.methodsOf(1)).toEqual(['crm.lead.userfield.update']);
    expect(report.updated).toEqual(['field:lead:UF_CRM_SARAFAN_BALANCE']);
    expect(portal.field('lead', 'UF_CRM_SARAFAN_BALANCE')?.SETTINGS).toMatchObject({ PRECISION: 2 });
  });

  it('finds our fields after the first page of a long field list', async () => {
    const portal = new FakePortal();
    for (let i = 0; i < 60; i++) {
      portal.seedField('contact', { FIELD_NAME: `UF_CRM_${1724412000 + i}`, USER_TYPE_ID: 'string' });
    }
    await reconcile(portal);
    portal.batches = [];
    portal.calls = [];

    const report = await reconcile(portal);

    expect(report).toEqual({ at: NOW.toISOString(), created: [], updated: [], failed: [], robots: ROBOTS_IN_PLACE });
    expect(portal.batches).toHaveLength(1);
    expect(portal.calls).toEqual([{ method: 'crm.contact.userfield.list', params: { order: { ID: 'ASC' }, start: 50 } }]);
  });
});

describe('reconcileRegistration: failures', () => {
  it('counts a duplicate bind or field as already present (two runs racing)', async () => {
    const portal = new FakePortal();

    const [a, b] = await Promise.all([
      reconcile(portal),
      reconcile(portal),
    ]);

    // Both read an empty portal; the second write met the first one's registrations.
    expect(portal.refusals).toHaveLength(42);
    expect(portal.refusals.filter((r) => r.description === 'Handler already binded')).toHaveLength(13);
    expect(a.created).toHaveLength(42);
    // The robots the second run found already installed are updated to our definition instead.
    expect(b).toEqual({ at: NOW.toISOString(), created: [], updated: ROBOT_CODES.map((c) => `robot:${c}`), failed: [], robots: ROBOTS_IN_PLACE });
    expect(portal.events).toHaveLength(10);
    expect(portal.fields.contact).toHaveLength(10);
  });

  it('reports a refused command with its error and description, and the rest still applies', async () => {
    const portal = new FakePortal();
    portal.unknownEvents.add('ONCRMDEALDELETE');

    const report = await reconcile(portal);

    expect(report.failed).toEqual([{ item: 'event:ONCRMDEALDELETE', error: 'ERROR_EVENT_NOT_FOUND: Event not found' }]);
    expect(report.created).toHaveLength(41);
  });

  it('reports a field of the wrong type as failed and sends nothing for it', async () => {
    const portal = await registeredPortal();
    portal.fields.deal = portal.fields.deal.filter((f) => f.FIELD_NAME !== 'UF_CRM_SARAFAN_REWARD');
    portal.seedField('deal', { FIELD_NAME: 'UF_CRM_SARAFAN_REWARD', USER_TYPE_ID: 'money', XML_ID: 'uf_crm_sarafan_reward' });

    const report = await reconcile(portal);

    expect(portal.batches).toHaveLength(1);
    expect(report.failed).toEqual([
      { item: 'field:deal:UF_CRM_SARAFAN_REWARD', error: expect.stringContaining("USER_TYPE_ID is 'money', expected 'double'") },
    ]);
  });

  it('throws when a read fails, before changing anything', async () => {
    const portal = new FakePortal();
    portal.failing.set('placement.get', { error: 'WRONG_AUTH_TYPE', description: 'Application context required' });

    await expect(reconcile(portal)).rejects.toThrow(/placement\.get failed: WRONG_AUTH_TYPE/);
    expect(portal.batches).toHaveLength(1);
  });
});

describe('readRegistration', () => {
  it('normalizes Bitrix answers: string ids, `[]` settings, numeric offline flags', async () => {
    const portal = new FakePortal();
    portal.seedField('lead', { FIELD_NAME: 'UF_CRM_SARAFAN_CODE', USER_TYPE_ID: 'string', XML_ID: 'uf_crm_sarafan_code', EDIT_IN_LIST: 'N' });
    portal.events.push({ event: 'ONCRMLEADADD', handler: `${BASE}/b24/events`, auth_type: '15', offline: 0 });
    portal.placements.push({ placement: 'CRM_LEAD_DETAIL_TAB', userId: 0, handler: `${BASE}/b24/frame`, options: [], title: 'Sarafan', description: '', langAll: [] });

    const state = await readRegistration(portal);

    expect(state.userFields.lead).toEqual([
      { ID: '1', FIELD_NAME: 'UF_CRM_SARAFAN_CODE', USER_TYPE_ID: 'string', XML_ID: 'uf_crm_sarafan_code', MULTIPLE: 'N', EDIT_IN_LIST: 'N', SETTINGS: {} },
    ]);
    expect(state.events).toEqual([{ event: 'ONCRMLEADADD', handler: `${BASE}/b24/events`, offline: false }]);
    expect(state.placements).toEqual([{ placement: 'CRM_LEAD_DETAIL_TAB', handler: `${BASE}/b24/frame`, title: 'Sarafan', userId: 0 }]);
  });
});

describe('reconcileRegistration: robots', () => {
  it('updates a robot whose add is refused as already installed, and keeps its hash', async () => {
    const portal = await registeredPortal();
    const stale = { ...portal.robots.get('sarafan_accrue')!, NAME: { ru: 'Старое имя', en: 'Old name' } };
    portal.robots.set('sarafan_accrue', stale);
    // Another install added it after our list was read.
    portal.unlistedRobots.add('sarafan_accrue');

    const report = await reconcile(portal);

    expect(portal.batches.map((b) => b.map((c) => `${c.method}:${String(c.params?.CODE ?? '')}`))).toEqual([
      READS.map((m) => `${m}:`),
      ['bizproc.robot.add:sarafan_accrue'],
      ['bizproc.robot.update:sarafan_accrue'],
    ]);
    expect(portal.refusals).toEqual([
      { method: 'bizproc.robot.add', error: 'ERROR_ACTIVITY_ALREADY_INSTALLED', description: 'Activity or Automation rule already installed!' },
    ]);
    expect(report).toEqual({ at: NOW.toISOString(), created: [], updated: ['robot:sarafan_accrue'], failed: [], robots: ROBOTS_IN_PLACE });
    expect(portal.robots.get('sarafan_accrue')?.NAME).toEqual({ ru: 'Сарафан: начислить бонусы', en: 'Sarafan: accrue bonus' });
    expect([...portal.robots.keys()]).toHaveLength(5);
  });

  it('keeps no hash for a robot whose registration failed, so the next run retries it', async () => {
    const portal = new FakePortal();
    portal.failing.set('bizproc.robot.add', { error: 'ACCESS_DENIED', description: 'Access denied!' });
    const first = await reconcile(portal);
    expect(first.failed.filter((f) => f.item.startsWith('robot:'))).toHaveLength(5);
    expect(first.robots).toEqual({});

    portal.failing.delete('bizproc.robot.add');
    const second = await reconcile(portal);
    expect(second.created).toEqual(ROBOT_CODES.map((c) => `robot:${c}`));
    expect(second.robots).toEqual(ROBOTS_IN_PLACE);
  });

  it('without the bizproc scope reads no robots, sends no robot call and reports each robot failed', async () => {
    const portal = new FakePortal();
    const report = await reconcileRegistration(portal, manifest, NOW, { scope: 'crm,placement', userId: 1, registration: null });

    expect(portal.methodsOf(0)).toEqual(READS.filter((m) => m !== 'bizproc.robot.list'));
    expect(portal.methodsOf(1).filter((m) => m.startsWith('bizproc.'))).toEqual([]);
    expect(report.failed.map((f) => f.item)).toEqual(ROBOT_CODES.map((c) => `robot:${c}`));
    expect(report).not.toHaveProperty('robots');
    expect(portal.robots.size).toBe(0);
  });
});
