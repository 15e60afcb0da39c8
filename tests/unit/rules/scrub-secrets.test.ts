import { describe, expect, it } from 'vitest';
import { CENSOR, maskSecrets, scrubSecrets } from '../../../src/rules/scrub-secrets.js';

describe('scrubSecrets', () => {
  it.each([
    ['POST https://x.bitrix24.ru/rest/crm.deal.get?auth=abc123def456&id=3', 'auth='],
    ['{"auth":"abc123def456","id":3}', '"auth":"'],
    ['auth[access_token]=abc123def456', 'auth[access_token]='],
    ['Authorization: Bearer abc123def456', 'Bearer '],
  ])('masks the token in %s', (text, kept) => {
    const out = scrubSecrets(text);
    expect(out).not.toContain('abc123def456');
    expect(out).toContain(kept);
    expect(out).toContain(CENSOR);
  });

  it('leaves ordinary words alone (oauth, author)', () => {
    expect(scrubSecrets('oauth=server author: Ivan')).toBe('oauth=server author: Ivan');
  });
});

describe('maskSecrets', () => {
  it('masks the known secrets wherever they stand, and what scrubSecrets masks', () => {
    const out = maskSecrets('failed with tokenvalue-1234 in the body; access_token=other-9876', ['tokenvalue-1234', 'short']);
    expect(out).toBe(`failed with ${CENSOR} in the body; access_token=${CENSOR}`);
  });
});
