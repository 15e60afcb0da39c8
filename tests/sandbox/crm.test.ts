/**
 * CRM through the SDK: paging, filters, select, legacy strings vs crm.item numbers, user fields
 * (naming, limits, duplicates, values), lead conversion, change notes, helpers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { B24OAuth } from '@bitrix24/b24jssdk';
import type { ChangeNote } from '../../sandbox/types.js';
import { parseSettings } from '../../src/bitrix/crm.js';
import { CLIENT_ID, sdkResult, startSandbox, type Sandbox } from './harness.js';

let sb: Sandbox;
let b24: B24OAuth;
const notes: ChangeNote[] = [];

beforeAll(async () => {
  sb = await startSandbox();
  b24 = sb.client();
  sb.portal.onChange((n) => notes.push(n));
  sb.portal.onChange(() => {
    throw new Error('a broken listener never breaks a mutation');
  });
});
afterAll(async () => {
  await sb.close();
});

type Rows = Record<string, unknown>[];

describe('lists', () => {
  beforeAll(() => {
    for (let i = 1; i <= 120; i++) {
      sb.portal.addEntity('contact', { NAME: `Контакт ${i}`, LAST_NAME: i % 2 ? 'Нечётный' : 'Чётный', PHONE: [{ VALUE: `+7 900 000-${String(i).padStart(4, '0')}`, VALUE_TYPE: 'MOBILE' }] }, { userId: 1 });
    }
  });

  it('pages by 50 with total and next; start=-1 gives no count; >ID walking reaches every row', async () => {
    const p1 = await b24.actions.v2.call.make({ method: 'crm.contact.list', params: { order: { ID: 'ASC' }, select: ['ID'] } });
    expect((p1.getData() as { result: Rows }).result).toHaveLength(50);
    expect(p1.getTotal()).toBe(120);
    const raw = (await sb.call('crm.contact.list', { select: ['ID'] })).body;
    expect([raw.total, raw.next]).toEqual([120, 50]);
    const p3 = (await sb.call('crm.contact.list', { start: 100, select: ['ID'] })).body;
    expect((p3.result as Rows).length).toBe(20);
    expect(p3.total).toBe(120);
    expect('next' in p3).toBe(false);

    const fast = (await sb.call('crm.contact.list', { start: -1, order: { ID: 'ASC' }, filter: { '>ID': 100 }, select: ['ID'] })).body;
    expect(fast.total).toBe(0);
    expect('next' in fast).toBe(false);
    expect((fast.result as Rows).map((r) => r.ID)).toEqual(Array.from({ length: 20 }, (_, i) => String(101 + i)));

    const all = await b24.actions.v2.callList.make<{ ID: string }>({ method: 'crm.contact.list', params: { select: ['ID'] }, idKey: 'ID' });
    expect(all.getData()).toHaveLength(120);
    const items = await b24.actions.v2.callList.make<{ id: number }>({
      method: 'crm.item.list',
      params: { entityTypeId: 3, select: ['id'] },
      idKey: 'id',
      customKeyForResult: 'items',
    });
    expect(items.getData()).toHaveLength(120);
  });

  it('filters date-times as instants, whatever offset the filter value carries', async () => {
    const id = sb.portal.addEntity('deal', { TITLE: 'Дата' }, { userId: 1 });
    const modified = String(sb.portal.getEntity('deal', id)!.DATE_MODIFY); // the portal's zone, +03:00
    const instant = Date.parse(modified);
    const utc = (ms: number) => `${new Date(ms).toISOString().slice(0, 19)}+00:00`;
    const ids = async (filter: Record<string, unknown>) =>
      ((await sb.call('crm.deal.list', { filter: { ...filter, ID: id }, select: ['ID'] })).body.result as Rows).map((r) => Number(r.ID));
    expect(await ids({ '>=DATE_MODIFY': utc(instant) })).toEqual([id]);
    expect(await ids({ '>=DATE_MODIFY': utc(instant + 1000) })).toEqual([]);
    expect(await ids({ '<DATE_MODIFY': `${new Date(instant + 1000).toISOString().slice(0, 19)}Z` })).toEqual([id]);
  });

  it('filters with prefixes, orders and selects', async () => {
    const list = async (params: Record<string, unknown>): Promise<Rows> => sdkResult<Rows>(b24, 'crm.contact.list', params);
    expect((await list({ filter: { '>=ID': 118 }, select: ['ID'] })).map((r) => r.ID)).toEqual(['118', '119', '120']);
    expect((await list({ filter: { '<ID': 3 }, order: { ID: 'DESC' }, select: ['ID'] })).map((r) => r.ID)).toEqual(['2', '1']);
    expect((await list({ filter: { '@ID': [5, 7], '!ID': 7 }, select: ['ID'] })).map((r) => r.ID)).toEqual(['5']);
    expect((await list({ filter: { '!@ID': Array.from({ length: 118 }, (_, i) => i + 1) }, select: ['ID'] })).map((r) => r.ID)).toEqual(['119', '120']);
    expect((await list({ filter: { '%NAME': 'такт 11', LAST_NAME: 'Чётный' }, select: ['ID'] })).map((r) => r.ID)).toEqual(['110', '112', '114', '116', '118']);
    expect((await list({ filter: { PHONE: '+7 900 000-0007' }, select: ['ID'] })).map((r) => r.ID)).toEqual(['7']);
    const one = (await list({ filter: { ID: 7 }, select: ['NAME'] }))[0]!;
    expect(one).toEqual({ ID: '7', NAME: 'Контакт 7' });
    const star = (await list({ filter: { ID: 7 } }))[0]!;
    expect(star).toMatchObject({ ID: '7', NAME: 'Контакт 7', HAS_PHONE: 'Y', ASSIGNED_BY_ID: '1' });
    expect('PHONE' in star).toBe(false);
    const withPhone = (await list({ filter: { ID: 7 }, select: ['ID', 'PHONE'] }))[0]!;
    expect(withPhone.PHONE).toEqual([{ ID: expect.any(String), TYPE_ID: 'PHONE', VALUE: '+7 900 000-0007', VALUE_TYPE: 'MOBILE' }]);
    const bad = await sb.call('crm.contact.list', { filter: 'ID=1' });
    expect(bad).toEqual({ status: 400, body: { error: '', error_description: "Parameter 'filter' must be array." } });
  });
});

describe('deals: legacy strings and crm.item numbers', () => {
  it('reads back strings, derives semantics, keeps CATEGORY_ID immutable in crm.deal.update', async () => {
    const contactId = await sdkResult<number>(b24, 'crm.contact.add', { fields: { NAME: 'Мария', EMAIL: [{ VALUE: 'm@x.ru', VALUE_TYPE: 'WORK' }] } });
    const id = await sdkResult<number>(b24, 'crm.deal.add', { fields: { TITLE: 'Окна', OPPORTUNITY: 15000, CONTACT_ID: contactId, CATEGORY_ID: 1 } });
    const deal = await sdkResult<Record<string, unknown>>(b24, 'crm.deal.get', { id });
    expect(deal).toMatchObject({
      ID: String(id),
      TITLE: 'Окна',
      OPPORTUNITY: '15000.00',
      CURRENCY_ID: 'RUB',
      CATEGORY_ID: '1',
      STAGE_ID: 'C1:NEW',
      STAGE_SEMANTIC_ID: 'P',
      CLOSED: 'N',
      CONTACT_ID: String(contactId),
      ASSIGNED_BY_ID: '1',
      CREATED_BY_ID: '1',
    });
    expect(deal.DATE_CREATE).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+03:00$/);
    expect(await sdkResult(b24, 'crm.deal.update', { id, fields: { STAGE_ID: 'C1:WON', CATEGORY_ID: 0, NOT_A_FIELD: 1 } })).toBe(true);
    const won = await sdkResult<Record<string, unknown>>(b24, 'crm.deal.get', { id });
    expect(won).toMatchObject({ STAGE_ID: 'C1:WON', STAGE_SEMANTIC_ID: 'S', CLOSED: 'Y', CATEGORY_ID: '1', MOVED_BY_ID: '1' });
    expect('NOT_A_FIELD' in won).toBe(false);
    expect((await sb.call('crm.deal.list', { filter: { STAGE_SEMANTIC_ID: 'S', CATEGORY_ID: 1 }, select: ['ID'] })).body.result).toEqual([{ ID: String(id) }]);

    const item = await sdkResult<{ item: Record<string, unknown> }>(b24, 'crm.item.get', { entityTypeId: 2, id });
    expect(item.item).toMatchObject({ id, opportunity: 15000, categoryId: 1, stageId: 'C1:WON', stageSemanticId: 'S', contactId, contactIds: [contactId], assignedById: 1 });
    const moved = await sdkResult<{ item: Record<string, unknown> }>(b24, 'crm.item.update', { entityTypeId: 2, id, fields: { categoryId: 0 } });
    expect(moved.item).toMatchObject({ categoryId: 0, stageId: 'NEW' });
    const contacts = await sdkResult(b24, 'crm.deal.contact.items.get', { id });
    expect(contacts).toEqual([{ CONTACT_ID: contactId, SORT: 10, ROLE_ID: 0, IS_PRIMARY: 'Y' }]);
    const bad = await sb.call('crm.item.get', { entityTypeId: 999, id: 1 });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toBe('NOT_FOUND');
  });

  it('answers status, category, currency and mode lookups', async () => {
    const stages = await sdkResult<Rows>(b24, 'crm.status.list', { filter: { ENTITY_ID: 'DEAL_STAGE_1' } });
    expect(stages.map((s) => [s.STATUS_ID, s.SEMANTICS])).toEqual([
      ['C1:NEW', null],
      ['C1:EXECUTING', null],
      ['C1:WON', 'S'],
      ['C1:LOSE', 'F'],
    ]);
    const lead = await sdkResult<Rows>(b24, 'crm.status.list', { filter: { ENTITY_ID: 'STATUS' } });
    expect(lead.map((s) => s.STATUS_ID)).toEqual(['NEW', 'IN_PROCESS', 'PROCESSED', 'CONVERTED', 'JUNK']);
    const cats = await sdkResult<{ categories: Rows }>(b24, 'crm.category.list', { entityTypeId: 2 });
    expect(cats.categories.map((c) => [c.id, c.name, c.isDefault])).toEqual([
      [0, 'Общая', 'Y'],
      [1, 'Повторные продажи', 'N'],
    ]);
    expect(await sdkResult(b24, 'crm.settings.mode.get')).toBe(1);
    const cur = await sdkResult<Rows>(b24, 'crm.currency.list');
    expect(cur.map((c) => [c.CURRENCY, c.BASE])).toEqual([
      ['RUB', 'Y'],
      ['USD', 'N'],
      ['EUR', 'N'],
    ]);
  });

  it('answers server.time in the portal’s zone and currency rates, which Sarafan’s CRM port reads', async () => {
    const time = await sdkResult<string>(b24, 'server.time');
    expect(time).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+03:00$/);
    const cur = await sdkResult<Rows>(b24, 'crm.currency.list');
    expect(cur.map((c) => [c.CURRENCY, c.AMOUNT, c.AMOUNT_CNT])).toEqual([
      ['RUB', '1.0000', '1'],
      ['USD', '90.0000', '1'],
      ['EUR', '100.0000', '1'],
    ]);
    const settings = parseSettings({ ok: true, result: time }, { ok: true, result: cur });
    expect(settings).toEqual({
      status: 'found',
      record: {
        utcOffsetMinutes: 180,
        currencies: [
          { currency: 'RUB', amount: '1.0000', amountCnt: 1, base: true },
          { currency: 'USD', amount: '90.0000', amountCnt: 1, base: false },
          { currency: 'EUR', amount: '100.0000', amountCnt: 1, base: false },
        ],
      },
    });
  });
});

describe('user fields', () => {
  it('normalizes names, enforces limits and refuses duplicates', async () => {
    const add = (fields: Record<string, unknown>): Promise<{ status: number; body: Record<string, unknown> }> => sb.call('crm.deal.userfield.add', { fields });
    const ok = await add({ FIELD_NAME: 'referral_code', USER_TYPE_ID: 'string', XML_ID: 'sarafan_code', LABEL: 'Код' });
    expect(ok.status).toBe(200);
    const dup = await add({ FIELD_NAME: 'UF_REFERRAL_CODE', USER_TYPE_ID: 'string' });
    expect(dup.status).toBe(400);
    expect(dup.body.error).toBe('ERROR_CORE');
    expect((await add({ FIELD_NAME: 'BAD-NAME', USER_TYPE_ID: 'string' })).body.error).toBe('ERROR_CORE');
    expect((await add({ FIELD_NAME: 'X'.repeat(44), USER_TYPE_ID: 'string' })).body.error).toBe('ERROR_CORE');
    expect((await add({ FIELD_NAME: 'X'.repeat(43), USER_TYPE_ID: 'string' })).status).toBe(200);
    expect((await add({ FIELD_NAME: 'T', USER_TYPE_ID: 'nonsense' })).body.error).toBe('ERROR_CORE');
    expect((await add({ USER_TYPE_ID: 'string' })).body).toEqual({ error: '', error_description: "The 'FIELD_NAME' field is not found." });
    expect((await add({ FIELD_NAME: 'T' })).body).toEqual({ error: '', error_description: "The 'USER_TYPE_ID' field is not found." });
    expect((await sb.call('crm.deal.userfield.add', { fields: { FIELD_NAME: 'Z', USER_TYPE_ID: 'string' } }, 2)).status).toBe(403);

    const listed = await sdkResult<Rows>(b24, 'crm.deal.userfield.list', { filter: { FIELD_NAME: 'UF_CRM_REFERRAL_CODE' } });
    expect(listed).toHaveLength(1);
    expect(listed[0]).toMatchObject({ ID: String(ok.body.result), FIELD_NAME: 'UF_CRM_REFERRAL_CODE', USER_TYPE_ID: 'string', XML_ID: 'sarafan_code', MULTIPLE: 'N', ENTITY_ID: 'CRM_DEAL' });
    expect('EDIT_FORM_LABEL' in listed[0]!).toBe(false);
    const withLang = await sdkResult<Rows>(b24, 'crm.deal.userfield.list', { filter: { XML_ID: 'sarafan_code', LANG: 'ru' } });
    expect(withLang[0]!.EDIT_FORM_LABEL).toBe('Код');
    const got = await sdkResult<Record<string, unknown>>(b24, 'crm.deal.userfield.get', { id: ok.body.result });
    expect(got.EDIT_FORM_LABEL).toEqual({ ru: 'Код', en: 'Код', de: 'Код' });
    await sdkResult(b24, 'crm.deal.userfield.update', { id: ok.body.result, fields: { FIELD_NAME: 'UF_CRM_OTHER', USER_TYPE_ID: 'integer', MULTIPLE: 'Y', XML_ID: 'v2', EDIT_FORM_LABEL: { en: 'Code' } } });
    const updated = await sdkResult<Record<string, unknown>>(b24, 'crm.deal.userfield.get', { id: ok.body.result });
    expect(updated).toMatchObject({ FIELD_NAME: 'UF_CRM_REFERRAL_CODE', USER_TYPE_ID: 'string', MULTIPLE: 'N', XML_ID: 'v2', EDIT_FORM_LABEL: { ru: 'Код', en: 'Code', de: 'Код' } });
  });

  it('stores values by type, ignores unknown UF and converts names in crm.item', async () => {
    const mk = (fields: Record<string, unknown>): Promise<unknown> => sdkResult(b24, 'crm.lead.userfield.add', { fields });
    await mk({ FIELD_NAME: 'REF_ONE', USER_TYPE_ID: 'crm', SETTINGS: { CONTACT: 'Y' } });
    await mk({ FIELD_NAME: 'REF_MANY', USER_TYPE_ID: 'crm', SETTINGS: { CONTACT: 'Y', LEAD: 'Y' } });
    await mk({ FIELD_NAME: 'FLAG', USER_TYPE_ID: 'boolean' });
    await mk({ FIELD_NAME: 'BONUS', USER_TYPE_ID: 'double' });
    await mk({ FIELD_NAME: 'COUNT', USER_TYPE_ID: 'integer' });
    await mk({ FIELD_NAME: 'DAY', USER_TYPE_ID: 'date' });
    await mk({ FIELD_NAME: 'TAGS', USER_TYPE_ID: 'string', MULTIPLE: 'Y' });
    const id = await sdkResult<number>(b24, 'crm.lead.add', {
      fields: {
        TITLE: 'Лид',
        UF_CRM_REF_ONE: 'C_5',
        UF_CRM_REF_MANY: 'C_5',
        UF_CRM_FLAG: 'Y',
        UF_CRM_BONUS: '12.5',
        UF_CRM_COUNT: 7,
        UF_CRM_DAY: '2025-03-01',
        UF_CRM_TAGS: ['a', 'b'],
        UF_CRM_MISSING: 'x',
      },
    });
    const lead = await sdkResult<Record<string, unknown>>(b24, 'crm.lead.get', { id });
    expect(lead).toMatchObject({
      UF_CRM_REF_ONE: '5',
      UF_CRM_REF_MANY: 'C_5',
      UF_CRM_FLAG: '1',
      UF_CRM_BONUS: '12.5',
      UF_CRM_COUNT: '7',
      UF_CRM_DAY: '2025-03-01T00:00:00+03:00',
      UF_CRM_TAGS: ['a', 'b'],
      STATUS_ID: 'NEW',
      STATUS_SEMANTIC_ID: 'P',
    });
    expect('UF_CRM_MISSING' in lead).toBe(false);
    await sdkResult(b24, 'crm.lead.update', { id, fields: { UF_CRM_FLAG: 0, UF_CRM_REF_ONE: 9 } });
    expect(await sdkResult(b24, 'crm.lead.list', { filter: { UF_CRM_FLAG: 0, '>UF_CRM_BONUS': 12 }, select: ['ID', 'UF_CRM_REF_ONE'] })).toEqual([{ ID: String(id), UF_CRM_REF_ONE: '9' }]);

    const orig = await sdkResult<{ item: Record<string, unknown> }>(b24, 'crm.item.get', { entityTypeId: 1, id, useOriginalUfNames: 'Y' });
    expect(orig.item).toMatchObject({ UF_CRM_BONUS: 12.5, UF_CRM_COUNT: 7, UF_CRM_FLAG: 'N', UF_CRM_TAGS: ['a', 'b'], title: 'Лид', stageId: 'NEW' });
    const camel = await sdkResult<{ item: Record<string, unknown> }>(b24, 'crm.item.get', { entityTypeId: 1, id });
    expect(camel.item).toMatchObject({ ufCrm_BONUS: 12.5 });
    const filtered = await sdkResult<{ items: Rows }>(b24, 'crm.item.list', { entityTypeId: 1, useOriginalUfNames: 'Y', filter: { UF_CRM_COUNT: 7 }, select: ['id', 'UF_CRM_COUNT'] });
    expect(filtered.items).toEqual([{ id, UF_CRM_COUNT: 7 }]);
  });
});

describe('conversion, notes, helpers', () => {
  it('converts a lead into a contact (same-named UF mapped) and a deal, with change notes', async () => {
    await sdkResult(b24, 'crm.lead.userfield.add', { fields: { FIELD_NAME: 'SARAFAN_CODE', USER_TYPE_ID: 'string' } });
    await sdkResult(b24, 'crm.contact.userfield.add', { fields: { FIELD_NAME: 'SARAFAN_CODE', USER_TYPE_ID: 'string' } });
    const leadId = await sdkResult<number>(b24, 'crm.lead.add', {
      fields: { TITLE: 'Заявка', NAME: 'Олег', LAST_NAME: 'Орлов', OPPORTUNITY: 500, PHONE: [{ VALUE: '+7 (901) 111-22-33', VALUE_TYPE: 'WORK' }], UF_CRM_SARAFAN_CODE: 'R1' },
    });
    notes.length = 0;
    const { contactId, dealId } = sb.portal.convertLead(leadId, { userId: 2 }, { withDeal: true });
    expect(sb.portal.getEntity('contact', contactId)).toMatchObject({ NAME: 'Олег', LAST_NAME: 'Орлов', LEAD_ID: String(leadId), UF_CRM_SARAFAN_CODE: 'R1', PHONE: [expect.objectContaining({ VALUE: '+7 (901) 111-22-33' })] });
    expect(sb.portal.getEntity('deal', dealId!)).toMatchObject({ LEAD_ID: String(leadId), CONTACT_ID: String(contactId), OPPORTUNITY: '500.00' });
    expect(sb.portal.getEntity('lead', leadId)).toMatchObject({ STATUS_ID: 'CONVERTED', STATUS_SEMANTIC_ID: 'S', CONTACT_ID: String(contactId) });
    expect(notes).toEqual([
      { kind: 'add', entity: 'contact', id: contactId, actor: { userId: 2 } },
      { kind: 'add', entity: 'deal', id: dealId, actor: { userId: 2 }, enteredStage: 'NEW' },
      { kind: 'update', entity: 'lead', id: leadId, actor: { userId: 2 }, enteredStage: 'CONVERTED' },
    ]);

    const dup = await sdkResult(b24, 'crm.duplicate.findbycomm', { type: 'PHONE', values: ['89011112233', '+7 901 111 22 33'] });
    expect(dup).toEqual({ LEAD: [leadId], CONTACT: [contactId] });
    expect(await sdkResult(b24, 'crm.duplicate.findbycomm', { type: 'EMAIL', values: ['nobody@x.ru'] })).toEqual([]);
  });

  it('REST changes carry the token user and client; updates note the entered stage only when it changes; delete removes the row', async () => {
    notes.length = 0;
    const id = await sdkResult<number>(b24, 'crm.deal.add', { fields: { TITLE: 'A' } });
    await sdkResult(b24, 'crm.deal.update', { id, fields: { TITLE: 'B' } });
    await sdkResult(b24, 'crm.deal.update', { id, fields: { STAGE_ID: 'EXECUTING' } });
    await sdkResult(b24, 'crm.deal.delete', { id });
    const actor = { userId: 1, clientId: CLIENT_ID };
    expect(notes).toEqual([
      { kind: 'add', entity: 'deal', id, actor, enteredStage: 'NEW' },
      { kind: 'update', entity: 'deal', id, actor },
      { kind: 'update', entity: 'deal', id, actor, enteredStage: 'EXECUTING' },
      { kind: 'delete', entity: 'deal', id, actor },
    ]);
    expect(sb.portal.getEntity('deal', id)).toBeNull();
  });

  it('adds timeline comments, notifications and to-dos', async () => {
    const id = await sdkResult<number>(b24, 'crm.deal.add', { fields: { TITLE: 'T' } });
    const cid = await sdkResult<number>(b24, 'crm.timeline.comment.add', { fields: { ENTITY_ID: id, ENTITY_TYPE: 'deal', COMMENT: 'Начислено 100 бонусов' } });
    expect(sb.portal.timeline('deal', id)).toEqual([expect.objectContaining({ ID: cid, COMMENT: 'Начислено 100 бонусов', AUTHOR_ID: 1 })]);
    expect((await sb.call('crm.timeline.comment.add', { fields: { ENTITY_ID: 99999, ENTITY_TYPE: 'deal', COMMENT: 'x' } })).status).toBe(400);
    const nid = await sdkResult<number>(b24, 'im.notify.system.add', { USER_ID: 2, MESSAGE: 'Привет', TAG: 't1' });
    await sdkResult<number>(b24, 'im.notify.system.add', { USER_ID: 2, MESSAGE: 'Снова', TAG: 't1' });
    expect(sb.portal.notifications(2).map((n) => n.MESSAGE)).toEqual(['Снова']);
    expect(nid).toBeGreaterThan(0);
    expect((await sb.call('im.notify.personal.add', { MESSAGE: 'x' })).body.error).toBe('USER_ID_EMPTY');
    expect((await sb.call('im.notify.personal.add', { USER_ID: 1, MESSAGE: ' ' })).body.error).toBe('MESSAGE_EMPTY');
    const todo = await sdkResult<{ id: number }>(b24, 'crm.activity.todo.add', { ownerTypeId: 2, ownerId: id, deadline: '2030-01-01T10:00:00+03:00', title: 'Позвонить' });
    expect(todo.id).toBeGreaterThan(0);
  });
});
