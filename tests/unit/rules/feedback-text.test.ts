import { describe, expect, it } from 'vitest';
import { feedbackText, formatAmount } from '../../../src/rules/feedback-text.js';

describe('formatAmount', () => {
  it.each<[number, string]>([
    [0, '0.00 RUB'],
    [5, '0.05 RUB'],
    [123_456_78, '123 456.78 RUB'],
    [-1_000_00, '-1 000.00 RUB'],
  ])('%d → %s', (minor, text) => expect(formatAmount(minor, 'RUB')).toBe(text));
});

describe('feedbackText', () => {
  const credited = { type: 'reward_credited', amount: 1_500_00, currency: 'RUB', dealId: 12, level: 1, welcome: false, beneficiary: { entity: 'contact', id: 5 } } as const;
  it('tells a credited reward on the deal, on the person and to the responsible user, in Russian and English', () => {
    expect(feedbackText('ru', credited, 'deal')).toBe('Сарафан: Награда за рекомендацию (уровень 1) 1 500.00 RUB начислена за сделку #12 (контакт #5).');
    expect(feedbackText('ru', credited, 'person')).toBe('Сарафан: Награда за рекомендацию (уровень 1) 1 500.00 RUB начислена за сделку #12.');
    expect(feedbackText('en', credited, 'user')).toBe('Sarafan: Referral reward (level 1) of 1 500.00 RUB credited to contact #5 for deal #12.');
    expect(feedbackText('en', { ...credited, type: 'reward_reversed', amount: -1_500_00 }, 'person')).toBe('Sarafan: Referral reward (level 1) of 1 500.00 RUB reversed for deal #12.');
    expect(feedbackText('ru', { ...credited, welcome: true, type: 'reward_reversed' }, 'person')).toBe('Сарафан: Приветственный бонус 1 500.00 RUB отменён за сделку #12.');
  });
  it('names the reason of a rejection', () => {
    const rejected = { type: 'referral_rejected', code: 'ABC234', reason: 'self_referral', referrer: { entity: 'contact', id: 3 } } as const;
    expect(feedbackText('ru', rejected, 'deal')).toBe('Сарафан: рекомендация по коду ABC234 отклонена — самоприглашение (тот же клиент, телефон или e-mail).');
    expect(feedbackText('en', { ...rejected, reason: 'already_customer', code: null }, 'person')).toBe('Sarafan: the referral was rejected — already a customer before the referral.');
  });
  it('tells an attribution, with the referee on the deal', () => {
    const attributed = { type: 'referral_attributed', code: 'ABC234', referrer: { entity: 'contact', id: 3 }, referee: { entity: 'lead', id: 8 } } as const;
    expect(feedbackText('en', attributed, 'deal')).toBe('Sarafan: the client (lead #8) was referred with code ABC234 by contact #3.');
    expect(feedbackText('ru', attributed, 'person')).toBe('Сарафан: пришёл по рекомендации по коду ABC234, пригласил контакт #3.');
  });
  it('tells an override and a redemption', () => {
    expect(feedbackText('en', { type: 'referral_overridden', referrer: { entity: 'contact', id: 3 }, userId: 1, comment: 'known client' }, 'person')).toBe(
      'Sarafan: an administrator (user #1) accepted the rejected referral by contact #3. Comment: known client',
    );
    expect(feedbackText('ru', { type: 'redeemed', amount: 250_00, currency: 'RUB', dealId: 4 }, 'deal')).toBe('Сарафан: списано 250.00 RUB бонусов в оплату сделки #4.');
  });
});
