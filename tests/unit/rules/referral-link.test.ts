import { describe, expect, it } from 'vitest';
import { referralLink } from '../../../src/rules/referral-link.js';

describe('referralLink', () => {
  it.each([
    ['https://sarafan.example.com', 'abc123', 'SHOP7KX3M9A', 'https://sarafan.example.com/r/abc123/SHOP7KX3M9A'],
    ['https://sarafan.example.com/', 'abc123', '7KX3M9A', 'https://sarafan.example.com/r/abc123/7KX3M9A'],
    ['https://sarafan.example.com//', 'abc123', '7KX3M9A', 'https://sarafan.example.com/r/abc123/7KX3M9A'],
    ['https://example.com/apps/sarafan/', 'abc123', '7KX3M9A', 'https://example.com/apps/sarafan/r/abc123/7KX3M9A'],
    ['https://sarafan.example.com', 'a/b c?d#e', '7KX3M9A', 'https://sarafan.example.com/r/a%2Fb%20c%3Fd%23e/7KX3M9A'],
  ])('%s + %s + %s → %s', (base, portal, code, expected) => {
    expect(referralLink(base, { publicId: portal }, code)).toBe(expected);
  });
});
