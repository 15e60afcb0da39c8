import { describe, expect, it } from 'vitest';
import { identitiesOf, normalizeEmail, normalizePhone, sharesContactPoint } from '../../../src/rules/contact-identity.js';

describe('normalizePhone', () => {
  it.each<[string, string | null]>([
    ['+7 (999) 123-45-67', '79991234567'],
    ['8 999 123 45 67', '79991234567'],
    ['8(999)1234567', '79991234567'],
    ['79991234567', '79991234567'],
    ['9991234567', '79991234567'], // a Russian mobile without its country code
    ['+49 30 1234567', '49301234567'],
    ['8 800 555-35-35', '78005553535'],
    ['4951234567', '4951234567'], // ten digits not starting with 9: left as written
    ['123-45', null], // too short to tell people apart
    ['', null],
    ['доб. 12', null],
    ['+1 234 567 890 123 456', null], // longer than E.164
  ])('%s → %s', (raw, expected) => {
    expect(normalizePhone(raw)).toBe(expected);
  });
});

describe('normalizeEmail', () => {
  it.each<[string, string | null]>([
    [' Ann@Mail.RU ', 'ann@mail.ru'],
    ['ann@mail.ru', 'ann@mail.ru'],
    ['ANN.B+promo@Example.com', 'ann.b+promo@example.com'],
    ['not an email', null],
    ['@mail.ru', null],
    ['ann@', null],
    ['', null],
  ])('%s → %s', (raw, expected) => {
    expect(normalizeEmail(raw)).toBe(expected);
  });
});

describe('shared phone or e-mail', () => {
  const none = { phones: [], emails: [] };
  it('keys every valid point of every record of a person', () => {
    expect(identitiesOf([{ phones: ['8 999 123-45-67', 'x'], emails: [] }, { phones: [], emails: ['A@B.C'] }])).toEqual(new Set(['phone:79991234567', 'email:a@b.c']));
  });
  it.each<[string, Parameters<typeof sharesContactPoint>[0], Parameters<typeof sharesContactPoint>[1], boolean]>([
    ['the same number written two ways', [{ phones: ['+7 999 123-45-67'], emails: [] }], [{ phones: ['8 (999) 1234567'], emails: [] }], true],
    ['the same e-mail in another case', [{ phones: [], emails: ['Ann@Mail.ru'] }], [{ phones: [], emails: [' ann@mail.RU'] }], true],
    ['a phone on the lead, the e-mail on the contact', [none, { phones: [], emails: ['a@b.c'] }], [{ phones: ['1234567'], emails: ['a@b.c'] }], true],
    ['different numbers and e-mails', [{ phones: ['+7 999 123-45-67'], emails: ['a@b.c'] }], [{ phones: ['+7 999 123-45-68'], emails: ['a@b.cd'] }], false],
    ['a phone equal to an e-mail text is not a match', [{ phones: ['79991234567'], emails: [] }], [{ phones: [], emails: ['79991234567@x'] }], false],
    ['nobody has contact points', [none], [none], false],
    ['only one side has them', [{ phones: ['+7 999 123-45-67'], emails: [] }], [], false],
    ['junk values never match each other', [{ phones: ['12'], emails: ['x'] }], [{ phones: ['12'], emails: ['x'] }], false],
  ])('%s', (_name, a, b, expected) => {
    expect(sharesContactPoint(a, b)).toBe(expected);
    expect(sharesContactPoint(b, a)).toBe(expected);
  });
});
