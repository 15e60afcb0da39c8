import { describe, expect, it } from 'vitest';
import { checkReferral } from '../../../src/rules/attribute-referral.js';
import { T0, at } from './rules-fixtures.js';

type Args = Parameters<typeof checkReferral>[0];
const base: Args = { refereeMemberId: 1, referrerMemberId: 2, referrerAncestors: [3, 4], sameIdentity: false, refereeFirstWonAt: null, referralAt: T0 };

describe('checkReferral', () => {
  it.each<[string, Partial<Args>, ReturnType<typeof checkReferral>]>([
    ['a new person referred by someone else', {}, { ok: true }],
    ['a code nobody owns', { referrerMemberId: null }, { ok: false, reason: 'unknown_code' }],
    ['an unknown code wins over everything else', { referrerMemberId: null, sameIdentity: true, refereeFirstWonAt: at(-1) }, { ok: false, reason: 'unknown_code' }],
    ['one\'s own code', { referrerMemberId: 1 }, { ok: false, reason: 'self_referral' }],
    ['the same phone or e-mail', { sameIdentity: true }, { ok: false, reason: 'self_referral' }],
    ['self-referral wins over a cycle and an earlier purchase', { referrerMemberId: 1, referrerAncestors: [1], refereeFirstWonAt: at(-1) }, { ok: false, reason: 'self_referral' }],
    ['the referee is the referrer\'s referrer', { referrerAncestors: [1] }, { ok: false, reason: 'cycle' }],
    ['the referee is further up the chain', { referrerAncestors: [3, 4, 1] }, { ok: false, reason: 'cycle' }],
    ['a cycle wins over an earlier purchase', { referrerAncestors: [1], refereeFirstWonAt: at(-1) }, { ok: false, reason: 'cycle' }],
    ['won a deal a millisecond before the referral', { refereeFirstWonAt: at(0, -1) }, { ok: false, reason: 'already_customer' }],
    ['won a deal at the very moment of the referral', { refereeFirstWonAt: T0 }, { ok: true }],
    ['won a deal after the referral', { refereeFirstWonAt: at(1) }, { ok: true }],
    ['no ancestors', { referrerAncestors: [] }, { ok: true }],
  ])('%s', (_name, patch, expected) => {
    expect(checkReferral({ ...base, ...patch })).toEqual(expected);
  });
});
