/** readEntities: lists by id in as few commands as possible; asks `get` only about what a list left out. */
import { describe, expect, it } from 'vitest';
import { createCrm, parseSettings, READ_SELECT, readEntities } from '../../../src/bitrix/crm.js';
import { F } from '../../../src/bitrix/crm-fields.js';
import { buildManifest } from '../../../install/manifest.js';
import type { BatchCommand, BatchOutcome } from '../../../src/bitrix/portal-gateway.js';

function fakeGateway(rows: Record<string, Record<number, Record<string, unknown>>>, getAnswers: Record<string, BatchOutcome> = {}) {
  const sent: BatchCommand[][] = [];
  return {
    sent,
    async batch(commands: BatchCommand[]): Promise<BatchOutcome[]> {
      sent.push(commands);
      return commands.map((c) => {
        const [, entity, verb] = c.method.split('.');
        if (verb === 'list') {
          const ids = ((c.params!.filter as Record<string, unknown>)['@ID'] as number[]).map(Number);
          return { ok: true, result: ids.filter((id) => rows[entity!]?.[id]).map((id) => rows[entity!]![id]) };
        }
        return getAnswers[`${entity}:${String(c.params!.id)}`] ?? { ok: false, error: '', description: 'Not found' };
      });
    },
  };
}

describe('readEntities', () => {
  it('reads 120 deals and 3 contacts with one list command per 50 ids, in one round', async () => {
    const deals = Object.fromEntries(Array.from({ length: 120 }, (_, i) => [i + 1, { ID: String(i + 1), TITLE: `d${i + 1}` }]));
    const gw = fakeGateway({ deal: deals, contact: { 7: { ID: '7' }, 8: { ID: '8' }, 9: { ID: '9' } } });
    const refs = [...Array.from({ length: 120 }, (_, i) => ({ entity: 'deal' as const, id: i + 1 })), { entity: 'contact' as const, id: 8 }, { entity: 'contact' as const, id: 7 }, { entity: 'contact' as const, id: 9 }];
    const out = await readEntities(gw, refs);
    expect(gw.sent).toHaveLength(1);
    expect(gw.sent[0]!.map((c) => [c.method, ((c.params!.filter as Record<string, unknown[]>)['@ID'])!.length, c.params!.start])).toEqual([
      ['crm.deal.list', 50, -1],
      ['crm.deal.list', 50, -1],
      ['crm.deal.list', 20, -1],
      ['crm.contact.list', 3, -1],
    ]);
    expect(gw.sent[0]![0]!.params!.select).toEqual(READ_SELECT.deal);
    expect(out.map((o) => (o.ok ? (o.result as { ID: string }).ID : o.description))).toEqual([...Array.from({ length: 120 }, (_, i) => String(i + 1)), '8', '7', '9']);
  });

  it('asks get about an id the list left out: "Not found" and "Access denied" stay apart', async () => {
    const gw = fakeGateway({ deal: { 1: { ID: '1' } } }, { 'deal:3': { ok: false, error: '', description: 'Access denied' } });
    const out = await readEntities(gw, [
      { entity: 'deal', id: 1 },
      { entity: 'deal', id: 2 },
      { entity: 'deal', id: 3 },
    ]);
    expect(gw.sent).toHaveLength(2);
    expect(gw.sent[1]!.map((c) => `${c.method}:${String(c.params!.id)}`)).toEqual(['crm.deal.get:2', 'crm.deal.get:3']);
    expect(out).toEqual([
      { ok: true, result: { ID: '1' } },
      { ok: false, error: '', description: 'Not found' },
      { ok: false, error: '', description: 'Access denied' },
    ]);
  });

  it('a failed list command fails its ids, without a second round', async () => {
    const gw = {
      sent: 0,
      async batch(commands: BatchCommand[]): Promise<BatchOutcome[]> {
        this.sent++;
        return commands.map(() => ({ ok: false, error: 'ACCESS_DENIED', description: 'Access denied' }));
      },
    };
    const out = await readEntities(gw, [{ entity: 'lead', id: 4 }]);
    expect(gw.sent).toBe(1);
    expect(out).toEqual([{ ok: false, error: 'ACCESS_DENIED', description: 'Access denied' }]);
  });
});

describe('the CRM port', () => {
  it('answers deals and people in domain form, "not found" as an outcome apart from a failure', async () => {
    const gw = fakeGateway(
      {
        deal: { 5: { ID: '5', STAGE_ID: 'C2:WON', STAGE_SEMANTIC_ID: 'S', OPPORTUNITY: '1500.50', CURRENCY_ID: 'rub', CATEGORY_ID: '2', CONTACT_ID: '7', LEAD_ID: null, UF_CRM_SARAFAN_REF_CODE: ' abc2345 ', UF_CRM_SARAFAN_REWARD: '10.00', UF_CRM_SARAFAN_REFERRER: 'L_3' } },
        contact: { 7: { ID: '7', LEAD_ID: '3', UF_CRM_SARAFAN_BALANCE: '', UF_CRM_SARAFAN_REFERRER: '9', UF_CRM_SARAFAN_JOINED: '2026-11-23T00:00:00+03:00' } },
      },
      { 'lead:4': { ok: false, error: 'ACCESS_DENIED', description: 'Access denied' } },
    );
    const crm = createCrm(gw);
    const got = await crm.read({ deals: [5, 6], people: [{ entity: 'contact', id: 7 }, { entity: 'lead', id: 4 }] });
    expect(got.deals.get(5)).toEqual({
      status: 'found',
      record: expect.objectContaining({
        id: 5, stageId: 'C2:WON', semantic: 'S', amount: 150050, currency: 'RUB', categoryId: 2,
        client: { entity: 'contact', id: 7 }, leadId: null, refCode: 'abc2345', referrer: { entity: 'lead', id: 3 },
        shown: expect.objectContaining({ reward: 1000, referrer: { entity: 'lead', id: 3 } }),
      }),
    });
    expect(got.deals.get(6)).toEqual({ status: 'not_found' });
    expect(got.people.get('contact:7')).toEqual({
      status: 'found',
      record: expect.objectContaining({ entity: 'contact', id: 7, leadId: 3, referrer: { entity: 'contact', id: 9 }, shown: expect.objectContaining({ balance: null, joined: '2026-11-23' }) }),
    });
    expect(got.people.get('lead:4')).toEqual({ status: 'failed', error: 'ACCESS_DENIED: Access denied' });
  });

  it('reads people with their PHONE and EMAIL multi-fields (named: `*` leaves them out) and deals with their responsible user', async () => {
    const gw = fakeGateway({
      deal: { 5: { ID: '5', STAGE_SEMANTIC_ID: 'P', CONTACT_ID: '7', ASSIGNED_BY_ID: '12' }, 6: { ID: '6', ASSIGNED_BY_ID: '' } },
      contact: {
        7: {
          ID: '7',
          PHONE: [{ ID: '1', TYPE_ID: 'PHONE', VALUE: '+7 999 123-45-67', VALUE_TYPE: 'WORK' }, { ID: '2', TYPE_ID: 'PHONE', VALUE: '', VALUE_TYPE: 'HOME' }],
          EMAIL: [{ ID: '3', TYPE_ID: 'EMAIL', VALUE: 'Ann@Mail.ru', VALUE_TYPE: 'WORK' }],
        },
      },
      lead: { 8: { ID: '8' } },
    });
    const got = await createCrm(gw).read({ deals: [5, 6], people: [{ entity: 'contact', id: 7 }, { entity: 'lead', id: 8 }] });
    expect(gw.sent[0]!.map((c) => [c.method, c.params!.select])).toEqual([
      ['crm.deal.list', READ_SELECT.deal],
      ['crm.contact.list', READ_SELECT.contact],
      ['crm.lead.list', READ_SELECT.lead],
    ]);
    expect(got.people.get('contact:7')).toEqual({ status: 'found', record: expect.objectContaining({ phones: ['+7 999 123-45-67'], emails: ['Ann@Mail.ru'] }) });
    expect(got.people.get('lead:8')).toEqual({ status: 'found', record: expect.objectContaining({ phones: [], emails: [] }) });
    expect(got.deals.get(5)).toEqual({ status: 'found', record: expect.objectContaining({ assignedById: 12 }) });
    expect(got.deals.get(6)).toEqual({ status: 'found', record: expect.objectContaining({ assignedById: null }) });
  });

  it('writes projections as absolute wire values without a live-feed event, and tells a gone entity apart', async () => {
    const sent: BatchCommand[][] = [];
    const crm = createCrm({
      async batch(commands) {
        sent.push(commands);
        return [{ ok: true, result: true }, { ok: false, error: '', description: 'Not found' }];
      },
    });
    const out = await crm.writeProjections([
      { entity: 'contact', id: 7, values: { balance: 12345, referrer: { entity: 'lead', id: 3 }, joined: '2026-11-23' } },
      { entity: 'deal', id: 5, values: { reward: 0 } },
    ]);
    expect(sent).toEqual([[
      { method: 'crm.contact.update', params: { id: 7, fields: { UF_CRM_SARAFAN_BALANCE: 123.45, UF_CRM_SARAFAN_REFERRER: 'L_3', UF_CRM_SARAFAN_JOINED: '2026-11-23' }, params: { REGISTER_SONET_EVENT: 'N' } } },
      { method: 'crm.deal.update', params: { id: 5, fields: { UF_CRM_SARAFAN_REWARD: 0 }, params: { REGISTER_SONET_EVENT: 'N' } } },
    ]]);
    expect(out).toEqual([{ ok: true }, { ok: false, error: ': Not found', notFound: true }]);
  });

  it('sends timeline comments and notifications mixed in the same batch, in order', async () => {
    const sent: BatchCommand[][] = [];
    const crm = createCrm({ async batch(commands) { sent.push(commands); return commands.map((_, i) => (i === 1 ? { ok: false, error: '', description: 'Not found' } : { ok: true, result: 1 })); } });
    const out = await crm.sendFeedback([
      { to: { entity: 'deal', id: 5 }, text: 'Referral credited' },
      { to: { entity: 'contact', id: 9 }, text: 'Your friend bought' },
      { to: { userId: 3 }, text: 'Bonus credited', tag: 'sarafan_5' },
    ]);
    expect(sent).toEqual([
      [
        { method: 'crm.timeline.comment.add', params: { fields: { ENTITY_ID: 5, ENTITY_TYPE: 'deal', COMMENT: 'Referral credited' } } },
        { method: 'crm.timeline.comment.add', params: { fields: { ENTITY_ID: 9, ENTITY_TYPE: 'contact', COMMENT: 'Your friend bought' } } },
        { method: 'im.notify.system.add', params: { USER_ID: 3, MESSAGE: 'Bonus credited', TAG: 'sarafan_5' } },
      ],
    ]);
    expect(out).toEqual([{ ok: true }, { ok: false, error: ': Not found', notFound: true }, { ok: true }]);
  });
});

describe('the portal settings read with the batch', () => {
  it('rides server.time and crm.currency.list in the same request as the entity lists', async () => {
    const sent: BatchCommand[][] = [];
    const crm = createCrm({
      async batch(commands) {
        sent.push(commands);
        return commands.map((c): BatchOutcome => {
          if (c.method === 'server.time') return { ok: true, result: '2027-01-31T23:30:00-05:00' };
          if (c.method === 'crm.currency.list') return { ok: true, result: [{ CURRENCY: 'usd', AMOUNT: '1.0000', AMOUNT_CNT: '1', BASE: 'Y' }, { CURRENCY: 'KZT', AMOUNT: '0.2000', AMOUNT_CNT: '100', BASE: 'N' }, { CURRENCY: 'BAD', AMOUNT: 'x', AMOUNT_CNT: '1' }] };
          return { ok: true, result: [{ ID: '5', STAGE_SEMANTIC_ID: 'S' }] };
        });
      },
    });
    const got = await crm.read({ deals: [5], people: [], settings: true });
    expect(sent.map((b) => b.map((c) => c.method))).toEqual([['crm.deal.list', 'server.time', 'crm.currency.list']]);
    expect(got.settings).toEqual({
      status: 'found',
      record: { utcOffsetMinutes: -300, currencies: [{ currency: 'USD', amount: '1.0000', amountCnt: 1, base: true }, { currency: 'KZT', amount: '0.2000', amountCnt: 100, base: false }] },
    });
    expect(got.deals.get(5)?.status).toBe('found');
    // Without `settings` nothing extra is asked, and the answer has no settings.
    const plain = await crm.read({ deals: [5], people: [] });
    expect(sent.at(-1)!.map((c) => c.method)).toEqual(['crm.deal.list']);
    expect(plain.settings).toBeUndefined();
  });

  it('reports a failed or offset-less answer as failed', () => {
    const ok: BatchOutcome = { ok: true, result: [] };
    expect(parseSettings({ ok: false, error: 'ACCESS_DENIED', description: 'no' }, ok)).toEqual({ status: 'failed', error: 'ACCESS_DENIED: no' });
    expect(parseSettings({ ok: true, result: '2027-01-31 23:30' }, ok).status).toBe('failed');
    expect(parseSettings({ ok: true, result: '2027-01-31T23:30:00+0330' }, ok)).toEqual({ status: 'found', record: { utcOffsetMinutes: 210, currencies: [] } });
  });
});

describe('READ_SELECT: what the loop reads of each entity', () => {
  const registered = (entity: string) => buildManifest('https://sarafan.example').userFields.filter((f) => f.entity === entity).map((f) => f.fieldName);

  it.each(['deal', 'contact', 'lead'] as const)('names fields one by one (no `*` masks), and of our user fields only those registered on a %s', (entity) => {
    const select = READ_SELECT[entity];
    expect(select).not.toContain('*');
    expect(select).not.toContain('UF_*');
    expect(new Set(select).size).toBe(select.length);
    const ours = select.filter((f) => f.startsWith('UF_'));
    expect(ours.filter((f) => !registered(entity).includes(f))).toEqual([]);
  });

  it('reads every registered field the loop compares or attributes by (the RFM segment is only written)', () => {
    for (const entity of ['deal', 'contact', 'lead'] as const) {
      expect(registered(entity).filter((f) => !READ_SELECT[entity].includes(f))).toEqual(entity === 'deal' ? [] : [F.SEGMENT]);
    }
  });

  it('parses a deal and a person read with it as from a full row', async () => {
    const deal = { ID: '5', STAGE_ID: 'WON', STAGE_SEMANTIC_ID: 'S', OPPORTUNITY: '1200.50', CURRENCY_ID: 'rub', CATEGORY_ID: '3', CONTACT_ID: '7', LEAD_ID: '9', ASSIGNED_BY_ID: '12', [F.REF_CODE]: 'ABC', [F.REFERRER]: 'C_4', [F.REWARD]: '10.00', [F.REDEEMED]: '' };
    const only = (row: Record<string, unknown>, names: readonly string[]) => Object.fromEntries(Object.entries(row).filter(([k]) => names.includes(k)));
    const full = { ...deal, TITLE: 'Сделка', COMMENTS: 'x', DATE_CREATE: '2026-01-01T00:00:00+03:00' };
    const read = async (row: Record<string, unknown>) => (await createCrm(fakeGateway({ deal: { 5: row } })).read({ deals: [5], people: [] })).deals.get(5);
    expect(await read(only(full, READ_SELECT.deal))).toEqual(await read(full));
    expect(Object.keys(only(full, READ_SELECT.deal)).sort()).toEqual(Object.keys(deal).sort());
  });
});
