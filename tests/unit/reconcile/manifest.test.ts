import { describe, expect, it } from 'vitest';
import { buildManifest } from '../../../install/manifest.js';
import { diffRegistration } from '../../../src/bitrix/reconcile.js';

const BASE = 'https://sarafan.example.com';

const PERSON_FIELDS = {
  UF_CRM_SARAFAN_CODE: 'string',
  UF_CRM_SARAFAN_LINK: 'url',
  UF_CRM_SARAFAN_BALANCE: 'double',
  UF_CRM_SARAFAN_PENDING: 'double',
  UF_CRM_SARAFAN_REFERRALS: 'integer',
  UF_CRM_SARAFAN_TIER: 'string',
  UF_CRM_SARAFAN_JOINED: 'date',
  UF_CRM_SARAFAN_REF_CODE: 'string',
  UF_CRM_SARAFAN_REFERRER: 'crm',
  UF_CRM_SARAFAN_SEGMENT: 'string',
};

const DEAL_FIELDS = {
  UF_CRM_SARAFAN_REF_CODE: 'string',
  UF_CRM_SARAFAN_REFERRER: 'crm',
  UF_CRM_SARAFAN_REWARD: 'double',
  UF_CRM_SARAFAN_REDEEMED: 'double',
};

const COMPUTED = ['CODE', 'LINK', 'BALANCE', 'PENDING', 'REFERRALS', 'TIER', 'JOINED', 'SEGMENT', 'REWARD', 'REDEEMED'].map(
  (s) => `UF_CRM_SARAFAN_${s}`,
);

const typesOf = (entity: string) =>
  Object.fromEntries(
    buildManifest(BASE)
      .userFields.filter((f) => f.entity === entity)
      .map((f) => [f.fieldName, f.userTypeId]),
  );

describe('buildManifest: user fields (SPEC 4.1)', () => {
  const manifest = buildManifest(BASE);

  it('gives contacts and leads the ten person fields with their exact names and types', () => {
    expect(typesOf('contact')).toEqual(PERSON_FIELDS);
    expect(typesOf('lead')).toEqual(PERSON_FIELDS);
  });

  it('gives deals the four deal fields', () => {
    expect(typesOf('deal')).toEqual(DEAL_FIELDS);
  });

  it('declares 24 fields, none twice on one entity', () => {
    expect(manifest.userFields).toHaveLength(24);
    const keys = manifest.userFields.map((f) => `${f.entity}:${f.fieldName}`);
    expect(new Set(keys).size).toBe(keys.length);
  });

  it('uses the lower-cased name as XML_ID and valid Bitrix names (UF_CRM_, A-Z0-9_, ≤ 50)', () => {
    for (const f of manifest.userFields) {
      expect(f.xmlId).toBe(f.fieldName.toLowerCase());
      expect(f.fieldName).toMatch(/^UF_CRM_[A-Z0-9_]+$/);
      expect(f.fieldName.length).toBeLessThanOrEqual(50);
    }
  });

  it('keeps computed fields out of list editing and leaves the manual ones editable', () => {
    for (const f of manifest.userFields) {
      expect([f.fieldName, f.editInList]).toEqual([f.fieldName, COMPUTED.includes(f.fieldName) ? 'N' : 'Y']);
    }
  });

  it('stores amounts with two decimals and links the referrer to contacts and leads only', () => {
    for (const f of manifest.userFields.filter((x) => x.userTypeId === 'double')) {
      expect(f.settings).toEqual({ PRECISION: 2 });
    }
    const referrers = manifest.userFields.filter((x) => x.userTypeId === 'crm');
    expect(referrers.map((f) => f.entity).sort()).toEqual(['contact', 'deal', 'lead']);
    for (const f of referrers) expect(f.settings).toEqual({ LEAD: 'Y', CONTACT: 'Y', COMPANY: 'N', DEAL: 'N' });
  });

  it('labels every field in Russian and English', () => {
    for (const f of manifest.userFields) {
      expect(f.labels.ru).toMatch(/[а-яё]/i);
      expect(f.labels.en).toMatch(/^Sarafan: [A-Za-z]/);
    }
    for (const entity of ['contact', 'lead', 'deal']) {
      const ru = manifest.userFields.filter((f) => f.entity === entity).map((f) => f.labels.ru);
      expect(new Set(ru).size).toBe(ru.length);
    }
  });

  it('sends every field as single-valued and never mandatory', () => {
    const empty = { userFields: { deal: [], contact: [], lead: [] }, events: [], placements: [], robots: [] };
    const adds = diffRegistration(manifest, empty).commands.filter((c) => c.command.method.endsWith('.userfield.add'));
    expect(adds).toHaveLength(24);
    for (const { command } of adds) {
      const fields = (command.params as { fields: Record<string, unknown> }).fields;
      expect(fields.MANDATORY).toBe('N');
      expect(fields.MULTIPLE).toBe('N');
    }
    expect(JSON.stringify(adds)).not.toMatch(/"MANDATORY":"Y"/);
  });
});

describe('buildManifest: events and placements (SPEC 4.2, 4.3)', () => {
  it('binds the app and CRM events to /b24/events on the base URL', () => {
    const { events } = buildManifest(BASE);
    expect(events.map((e) => e.event).sort()).toEqual(
      [
        'ONAPPINSTALL',
        'ONAPPUPDATE',
        'ONAPPUNINSTALL',
        'ONCRMDEALADD',
        'ONCRMDEALUPDATE',
        'ONCRMDEALDELETE',
        'ONCRMLEADADD',
        'ONCRMLEADUPDATE',
        'ONCRMCONTACTADD',
        'ONCRMCONTACTUPDATE',
      ].sort(),
    );
    for (const e of events) expect(e.handler).toBe(`${BASE}/b24/events`);
  });

  it('binds the three detail tabs to /b24/frame titled Sarafan / «Сарафан»', () => {
    const { placements } = buildManifest(BASE);
    expect(placements.map((p) => p.placement)).toEqual(['CRM_DEAL_DETAIL_TAB', 'CRM_CONTACT_DETAIL_TAB', 'CRM_LEAD_DETAIL_TAB']);
    for (const p of placements) {
      expect(p.handler).toBe(`${BASE}/b24/frame`);
      expect(p.title).toBe('Sarafan');
      expect(p.langAll.ru.TITLE).toBe('Сарафан');
      expect(p.langAll.en.TITLE).toBe('Sarafan');
    }
  });

  it.each([
    ['https://sarafan.example.com/', 'https://sarafan.example.com'],
    ['https://sarafan.example.com//', 'https://sarafan.example.com'],
    ['https://host.example/apps/sarafan/', 'https://host.example/apps/sarafan'],
    ['http://localhost:3000', 'http://localhost:3000'],
  ])('builds handlers from %s without a double slash', (base, expected) => {
    const m = buildManifest(base);
    expect(new Set(m.events.map((e) => e.handler))).toEqual(new Set([`${expected}/b24/events`]));
    expect(new Set(m.placements.map((p) => p.handler))).toEqual(new Set([`${expected}/b24/frame`]));
  });
});

describe('buildManifest: robots (SPEC 4.4)', () => {
  const { robots } = buildManifest('https://sarafan.example.com/');
  const typesOf = (props: Record<string, { Type: string }>) => Object.fromEntries(Object.entries(props).map(([k, p]) => [k, p.Type]));
  const byCode = (code: string) => robots.find((r) => r.code === code)!;

  it('declares the five robots, each waiting for its answer, on deals and leads, at /b24/robots/<code>', () => {
    expect(robots.map((r) => r.code)).toEqual(['sarafan_accrue', 'sarafan_redeem', 'sarafan_status', 'sarafan_enroll', 'sarafan_promo']);
    for (const r of robots) {
      expect(r.handler).toBe(`https://sarafan.example.com/b24/robots/${r.code}`);
      expect(r.useSubscription).toBe('Y');
      expect(r.filter).toEqual({ INCLUDE: [['crm', 'CCrmDocumentDeal'], ['crm', 'CCrmDocumentLead']] });
      expect(r.name.ru).toBeTruthy();
      expect(r.name.en).toBeTruthy();
      expect(r.description.ru).toBeTruthy();
      expect(r.description.en).toBeTruthy();
      for (const p of [...Object.values(r.properties), ...Object.values(r.returnProperties)]) {
        expect(p.Name.ru && p.Name.en && p.Description.ru && p.Description.en).toBeTruthy();
        expect(p.Multiple).toBe('N');
      }
    }
  });

  it('types the input properties exactly; only the promo code is required', () => {
    expect(typesOf(byCode('sarafan_accrue').properties)).toEqual({ amount: 'double', percent: 'double', comment: 'string' });
    expect(typesOf(byCode('sarafan_redeem').properties)).toEqual({ amount: 'double' });
    expect(typesOf(byCode('sarafan_status').properties)).toEqual({});
    expect(typesOf(byCode('sarafan_enroll').properties)).toEqual({});
    expect(typesOf(byCode('sarafan_promo').properties)).toEqual({ code: 'string' });
    const required = robots.flatMap((r) => Object.entries(r.properties).filter(([, p]) => p.Required === 'Y').map(([k]) => `${r.code}.${k}`));
    expect(required).toEqual(['sarafan_promo.code']);
  });

  it('types the return values exactly', () => {
    expect(typesOf(byCode('sarafan_accrue').returnProperties)).toEqual({ accrued: 'double', balance: 'double', entry_id: 'int', ok: 'bool', error: 'string' });
    expect(typesOf(byCode('sarafan_redeem').returnProperties)).toEqual({ redeemed: 'double', balance: 'double', ok: 'bool', error: 'string' });
    expect(typesOf(byCode('sarafan_status').returnProperties)).toEqual({
      code: 'string',
      link: 'string',
      balance: 'double',
      pending: 'double',
      tier: 'string',
      referrals: 'int',
      ok: 'bool',
      error: 'string',
    });
    expect(typesOf(byCode('sarafan_enroll').returnProperties)).toEqual({ code: 'string', link: 'string', ok: 'bool', error: 'string' });
    expect(typesOf(byCode('sarafan_promo').returnProperties)).toEqual({ ok: 'bool', accrued: 'double', balance: 'double', error: 'string' });
  });
});
