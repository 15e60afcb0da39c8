import { describe, expect, it } from 'vitest';
import { membersToEnroll } from '../../../src/rules/enroll-members.js';
import { program } from './rules-fixtures.js';

const deal = (clientMemberId: number | null, won = true, deleted = false) => ({ clientMemberId, won, deleted });

describe('membersToEnroll', () => {
  it('enrols the client of a won deal who has no code yet, once', () => {
    expect(membersToEnroll(program(), [deal(1), deal(1), deal(2), deal(3, false), deal(null)], [{ id: 1, code: null }, { id: 2, code: 'ABC2345' }, { id: 3, code: null }])).toEqual([1]);
  });

  it('does not enrol the client of a deleted deal', () => {
    expect(membersToEnroll(program(), [deal(1, true, true)], [{ id: 1, code: null }])).toEqual([]);
  });

  it('enrols nobody when the program does not enrol on the first won deal', () => {
    expect(membersToEnroll(program({ enrol: { onFirstWonDeal: false, codePrefix: '' } }), [deal(1)], [{ id: 1, code: null }])).toEqual([]);
  });
});
