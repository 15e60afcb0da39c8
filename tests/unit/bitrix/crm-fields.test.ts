import { describe, expect, it } from 'vitest';
import { DEAL_COMPUTED, F, PERSON_COMPUTED, crmRef, parseCrmRef, shownProjection, toWire } from '../../../src/bitrix/crm-fields.js';
import { dealProjection, personProjection, projectionChanges, type Projection } from '../../../src/rules/project-to-crm.js';

/** What would be written: the desired values that differ from what the raw entity shows, on the wire. */
const changedFields = (desired: Projection, raw: Record<string, unknown> | null | undefined) => toWire(projectionChanges(desired, raw ? shownProjection(raw) : raw));

describe('field names', () => {
  it('are the exact names of SPEC 4.1', () => {
    expect(F).toEqual({
      CODE: 'UF_CRM_SARAFAN_CODE',
      LINK: 'UF_CRM_SARAFAN_LINK',
      BALANCE: 'UF_CRM_SARAFAN_BALANCE',
      PENDING: 'UF_CRM_SARAFAN_PENDING',
      REFERRALS: 'UF_CRM_SARAFAN_REFERRALS',
      TIER: 'UF_CRM_SARAFAN_TIER',
      JOINED: 'UF_CRM_SARAFAN_JOINED',
      REF_CODE: 'UF_CRM_SARAFAN_REF_CODE',
      REFERRER: 'UF_CRM_SARAFAN_REFERRER',
      SEGMENT: 'UF_CRM_SARAFAN_SEGMENT',
      REWARD: 'UF_CRM_SARAFAN_REWARD',
      REDEEMED: 'UF_CRM_SARAFAN_REDEEMED',
    });
  });

  it('list the computed fields SPEC 4.1 says Sarafan overwrites, and no field people type in', () => {
    expect([...PERSON_COMPUTED].sort()).toEqual(
      ['UF_CRM_SARAFAN_BALANCE', 'UF_CRM_SARAFAN_CODE', 'UF_CRM_SARAFAN_LINK', 'UF_CRM_SARAFAN_PENDING', 'UF_CRM_SARAFAN_REFERRALS', 'UF_CRM_SARAFAN_SEGMENT', 'UF_CRM_SARAFAN_TIER'],
    );
    expect([...DEAL_COMPUTED].sort()).toEqual(['UF_CRM_SARAFAN_REDEEMED', 'UF_CRM_SARAFAN_REWARD']);
    for (const typed of [F.REF_CODE, F.REFERRER]) {
      expect(PERSON_COMPUTED).not.toContain(typed);
      expect(DEAL_COMPUTED).not.toContain(typed);
    }
  });
});

describe('crmRef / parseCrmRef', () => {
  it.each([
    ['contact', 5, 'C_5'],
    ['lead', 7, 'L_7'],
  ] as const)('%s %d → %s', (entity, id, ref) => {
    expect(crmRef(entity, id)).toBe(ref);
    expect(parseCrmRef(ref)).toEqual({ entity, id });
  });

  it.each([0, -1, 1.5, Number.NaN])('refuses id %d', (id) => {
    expect(() => crmRef('contact', id)).toThrow(RangeError);
  });

  it.each<[unknown, ReturnType<typeof parseCrmRef>]>([
    ['C_5', { entity: 'contact', id: 5 }],
    ['L_7', { entity: 'lead', id: 7 }],
    [' C_5 ', { entity: 'contact', id: 5 }],
    ['5', { entity: 'contact', id: 5 }],
    [5, { entity: 'contact', id: 5 }],
    [['L_7', 'C_5'], { entity: 'lead', id: 7 }],
    [['9'], { entity: 'contact', id: 9 }],
    ['', null],
    [null, null],
    [undefined, null],
    [false, null],
    [0, null],
    ['0', null],
    ['C_0', null],
    [-5, null],
    [5.5, null],
    ['5.5', null],
    ['CO_5', null], // a company
    ['D_5', null], // a deal
    ['c_5', null],
    ['C_', null],
    ['C_5x', null],
    [[], null],
    [[''], null],
    [{ id: 5 }, null],
    ['99999999999999999999', null],
  ])('%j → %j', (value, expected) => {
    expect(parseCrmRef(value)).toEqual(expected);
  });
});

describe('personProjection on the wire', () => {
  it('writes money as decimals, the date as UTC YYYY-MM-DD', () => {
    expect(
      toWire(personProjection({ code: 'ABC2345', link: 'https://x/r/p/ABC2345', balance: 12345, pending: 5, referrals: 3, tier: 'Gold', joinedAt: new Date('2026-11-22T22:30:00Z') })),
    ).toEqual({
      UF_CRM_SARAFAN_CODE: 'ABC2345',
      UF_CRM_SARAFAN_LINK: 'https://x/r/p/ABC2345',
      UF_CRM_SARAFAN_BALANCE: 123.45,
      UF_CRM_SARAFAN_PENDING: 0.05,
      UF_CRM_SARAFAN_REFERRALS: 3,
      UF_CRM_SARAFAN_TIER: 'Gold',
      UF_CRM_SARAFAN_JOINED: '2026-11-22',
    });
  });

  it('clears code and link for a person without a code, and keeps a negative balance', () => {
    expect(toWire(personProjection({ code: null, link: 'https://x/r/p/OLD2345', balance: -150, pending: 0, referrals: 0, tier: null, joinedAt: null }))).toEqual({
      UF_CRM_SARAFAN_CODE: null,
      UF_CRM_SARAFAN_LINK: null,
      UF_CRM_SARAFAN_BALANCE: -1.5,
      UF_CRM_SARAFAN_PENDING: 0,
      UF_CRM_SARAFAN_REFERRALS: 0,
      UF_CRM_SARAFAN_TIER: null,
      UF_CRM_SARAFAN_JOINED: null,
    });
  });
});

describe('dealProjection on the wire', () => {
  it.each([
    [{ referrer: { entity: 'contact' as const, id: 5 }, reward: 10050 }, { UF_CRM_SARAFAN_REFERRER: 'C_5', UF_CRM_SARAFAN_REWARD: 100.5 }],
    [{ referrer: { entity: 'lead' as const, id: 7 }, reward: 0 }, { UF_CRM_SARAFAN_REFERRER: 'L_7', UF_CRM_SARAFAN_REWARD: 0 }],
    [{ referrer: null, reward: 1 }, { UF_CRM_SARAFAN_REFERRER: null, UF_CRM_SARAFAN_REWARD: 0.01 }],
  ])('%j → %j', (d, expected) => {
    expect(toWire(dealProjection(d))).toEqual(expected);
  });
});

describe('projection changes against what the portal shows', () => {
  it.each<[string, number, unknown, boolean]>([
    ['a double read back as "10.00"', 1000, '10.00', false],
    ['a double read back as "10"', 1000, '10', false],
    ['a double read back as a number', 12345, 123.45, false],
    ['a double read back as "123.45"', 12345, '123.45', false],
    ['a double that changed', 12345, '123.44', true],
    ['zero over an empty field', 0, '', true],
    ['zero over null', 0, null, true],
    ['zero read back as "0"', 0, '0', false],
    ['a number over garbage', 500, 'five', true],
    ['a number over true', 100, true, true],
  ])('balance: %s', (_name, want, have, changed) => {
    expect(changedFields({ balance: want }, { [F.BALANCE]: have })).toEqual(changed ? { [F.BALANCE]: want / 100 } : {});
  });

  it.each<[string, string | null, unknown, boolean]>([
    ['null over ""', null, '', false],
    ['null over null', null, null, false],
    ['null over false', null, false, false],
    ['null over a missing key', null, undefined, false],
    ['null over []', null, [], false],
    ['null over a value', null, 'ABC2345', true],
    ['null over 0', null, 0, true],
    ['a string, same', 'Gold', 'Gold', false],
    ['a string, other case', 'Gold', 'gold', true],
    ['a string over empty', 'Gold', '', true],
    ['a string over false', 'Gold', false, true],
    ['a numeric string read back as a number', '42', 42, false],
  ])('tier: %s', (_name, want, have, changed) => {
    expect(changedFields({ tier: want }, { [F.TIER]: have })).toEqual(changed ? { [F.TIER]: want } : {});
  });

  it.each<[string, string, unknown, boolean]>([
    ['a date read back with time and offset', '2026-11-23', '2026-11-23T00:00:00+03:00', false],
    ['a date read back as itself', '2026-11-23', '2026-11-23', false],
    ['a date that changed', '2026-11-23', '2026-11-24T00:00:00+03:00', true],
    ['a date over empty', '2026-11-23', '', true],
  ])('joined: %s', (_name, want, have, changed) => {
    expect(changedFields({ joined: want }, { [F.JOINED]: have })).toEqual(changed ? { [F.JOINED]: want } : {});
  });

  it.each<[string, unknown, boolean]>([
    ['C_5 over "5" (a contact-only field)', '5', false],
    ['C_5 over 5', 5, false],
    ['C_5 over C_5', 'C_5', false],
    ['C_5 over ["C_5"]', ['C_5'], false],
    ['C_5 over L_5', 'L_5', true],
    ['C_5 over C_6', 'C_6', true],
    ['C_5 over empty', '', true],
    ['C_5 over false', false, true],
  ])('referrer: %s', (_name, have, changed) => {
    expect(changedFields({ referrer: { entity: 'contact', id: 5 } }, { [F.REFERRER]: have })).toEqual(changed ? { [F.REFERRER]: 'C_5' } : {});
  });

  it('does not read a tier named like a crm ref as a ref', () => {
    expect(changedFields({ tier: 'C_5' }, { [F.TIER]: '5' })).toEqual({ [F.TIER]: 'C_5' });
  });

  it('returns only the changed keys of a whole projection, and everything non-empty when current is unknown', () => {
    const desired = personProjection({ code: 'ABC2345', link: 'https://x/r/p/ABC2345', balance: 1000, pending: 0, referrals: 2, tier: null, joinedAt: new Date('2026-11-23T10:00:00Z') });
    const current = {
      UF_CRM_SARAFAN_CODE: 'ABC2345',
      UF_CRM_SARAFAN_LINK: 'https://x/r/p/ABC2345',
      UF_CRM_SARAFAN_BALANCE: '10.00',
      UF_CRM_SARAFAN_PENDING: '5.00', // a manager typed it in
      UF_CRM_SARAFAN_REFERRALS: '2',
      UF_CRM_SARAFAN_TIER: '',
      UF_CRM_SARAFAN_JOINED: '2026-11-23T00:00:00+03:00',
      UF_CRM_SARAFAN_SEGMENT: 'loyal',
    };
    expect(changedFields(desired, current)).toEqual({ UF_CRM_SARAFAN_PENDING: 0 });
    const all = toWire(desired);
    delete all[F.TIER];
    expect(changedFields(desired, null)).toEqual(all);
    expect(changedFields(desired, undefined)).toEqual(all);
  });
});
