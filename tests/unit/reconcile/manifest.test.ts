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
