/** The pure parts of robot calls (issue 10): documents, lenient money and percent properties, texts. */
import { describe, expect, it } from 'vitest';
import { robotAmount, robotDocument, robotError, robotMoney, robotPercent } from '../../../src/rules/robot-calls.js';

describe('robotDocument', () => {
  it.each([
    ['DEAL_123', { entity: 'deal', id: 123 }],
    ['LEAD_45', { entity: 'lead', id: 45 }],
    ['deal_7', { entity: 'deal', id: 7 }],
    ['CONTACT_7', { entity: 'other', raw: 'CONTACT_7' }],
    ['DYNAMIC_128_4', { entity: 'other', raw: 'DYNAMIC_128_4' }],
    ['DEAL_0', { entity: 'other', raw: 'DEAL_0' }],
    ['DEAL_', { entity: 'other', raw: 'DEAL_' }],
    ['DEAL_12x', { entity: 'other', raw: 'DEAL_12x' }],
  ])('%s', (raw, expected) => {
    expect(robotDocument(raw)).toEqual(expected);
  });
});

describe('robotAmount', () => {
  it.each([
    ['1500', 150000],
    ['1500.00', 150000],
    ['1 500,50', 150050],
    ['1500.5|RUB', 150050],
    ['0.01', 1],
  ])('%s → %d minor units', (raw, minor) => {
    expect(robotAmount(raw)).toBe(minor);
  });
  it.each(['abc', '', '0', '-5', '1.005', '1e3', '12.3.4', 'RUB|100'])('%j is not an amount', (raw) => {
    expect(robotAmount(raw)).toBeNull();
  });
});

describe('robotPercent', () => {
  it.each([
    ['5', 5],
    ['2,5', 2.5],
    ['7.25 %', 7.25],
    ['100', 100],
  ])('%s', (raw, p) => {
    expect(robotPercent(raw)).toBe(p);
  });
  it.each(['0', '100.01', 'five', '-1', ''])('%j is not a percent', (raw) => {
    expect(robotPercent(raw)).toBeNull();
  });
});

describe('texts', () => {
  it('money has two decimals', () => {
    expect(robotMoney(150050)).toBe('1500.50');
    expect(robotMoney(0)).toBe('0.00');
  });
  it('errors are in the portal language and name the property', () => {
    expect(robotError({ reason: 'invalid_property', property: 'amount' }, 'en')).toBe('Invalid value of property "amount"');
    expect(robotError({ reason: 'invalid_property', property: 'amount' }, 'ru')).toBe('Неверное значение свойства «amount»');
    expect(robotError({ reason: 'not_deal_or_lead' }, 'en')).toBe("Sarafan's robots work on deals and leads only");
  });
});
