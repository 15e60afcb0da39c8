/**
 * The sandbox automation's expressions and conditions (sandbox/robot-expressions.ts): document
 * fields and earlier robots' return values resolve into text, a condition compares numbers when
 * both sides are numbers and text otherwise, and an empty value is never "more than" anything.
 */
import { describe, expect, it } from 'vitest';
import { activityReferences, evaluateCondition, expressionNumber, resolveExpressions, type ExpressionScope } from '../../sandbox/robot-expressions.js';
import type { ConditionOperator } from '../../sandbox/types.js';

const scope: ExpressionScope = {
  document: { TITLE: 'Кухня', OPPORTUNITY: '1500.00', CONTACT_IDS: ['1', '2'] },
  results: new Map([
    ['A3', { balance: '1500.00', tier: 'Gold', ok: 'Y' }],
    ['A4', { balance: '' }],
  ]),
};

describe('resolveExpressions', () => {
  it.each([
    ['{=Document:TITLE}', 'Кухня'],
    ['Оплата {=Document:TITLE} на {=Document:OPPORTUNITY}', 'Оплата Кухня на 1500.00'],
    ['{=Document:CONTACT_IDS}', '1,2'],
    ['{=A3:balance}', '1500.00'],
    ['{=A3:tier}/{=A3:ok}', 'Gold/Y'],
    ['{=A3:missing}', ''],
    ['{=A9:balance}', ''],
    ['{=Document:NOPE}', ''],
    ['{=Variable:x} stays', '{=Variable:x} stays'],
    ['plain', 'plain'],
  ])('%s → %s', (value, expected) => {
    expect(resolveExpressions(value, scope)).toBe(expected);
  });

  it('lists the activity references of a value, not the document fields', () => {
    expect(activityReferences('{=A3:balance} of {=Document:TITLE} and {=A12_34:x}')).toEqual([
      { activity: 'A3', key: 'balance' },
      { activity: 'A12_34', key: 'x' },
    ]);
  });
});

describe('evaluateCondition', () => {
  const cases: [string, ConditionOperator, string, boolean][] = [
    ['{=A3:balance}', '>', '1000', true],
    ['{=A3:balance}', '>', '1500', false],
    ['{=A3:balance}', '>=', '1500', true],
    ['{=A3:balance}', '<', '1500.01', true],
    ['{=A3:balance}', '<=', '1499.99', false],
    ['{=A3:balance}', '=', '1500', true],
    ['{=A3:balance}', '!=', '1500', false],
    ['{=A3:tier}', '=', 'Gold', true],
    ['{=A3:tier}', '!=', 'Gold', false],
    ['{=A3:tier}', '>', '1', false],
    ['{=A4:balance}', '>', '1000', false],
    ['{=A4:balance}', '<', '1000', false],
    ['{=A4:balance}', '=', '', true],
    ['{=Document:OPPORTUNITY}', '>', '{=A3:balance}', false],
    ['{=Document:OPPORTUNITY}', '>=', '{=A3:balance}', true],
  ];
  it.each(cases)('%s %s %s → %s', (operand, operator, value, pass) => {
    expect(evaluateCondition({ operand, operator, value }, scope).pass).toBe(pass);
  });

  it('explains the resolved comparison for the run log', () => {
    expect(evaluateCondition({ operand: '{=A3:balance}', operator: '>', value: '1000' }, scope).explained).toBe('1500.00 > 1000');
    expect(evaluateCondition({ operand: '{=A4:balance}', operator: '>', value: '1000' }, scope).explained).toBe('(пусто) > 1000');
  });
});

describe('expressionNumber', () => {
  it.each([
    ['1500', 1500],
    ['1500.50', 1500.5],
    ['1 500,50', 1500.5],
    ['1500.00|RUB', 1500],
    ['-3', -3],
    ['', null],
    ['abc', null],
    ['1.2.3', null],
  ])('%s → %s', (raw, n) => {
    expect(expressionNumber(raw)).toBe(n);
  });
});
