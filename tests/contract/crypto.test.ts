/** Tokens at rest: the AES-256-GCM envelope every store adapter writes (src/store/crypto.ts). */
import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/handlers/errors.js';
import { createTokenCipher } from '../../src/store/crypto.js';

const secretToken = 'refresh-token-0123456789-plaintext';

const failure = (fn: () => unknown): AppError => {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(AppError);
    return e as AppError;
  }
  throw new Error('expected a failure');
};

describe('token cipher', () => {
  const cipher = createTokenCipher('secret-key-A');

  it('round-trips through a v1 envelope with a random IV', () => {
    const a = cipher.encrypt(secretToken);
    const b = cipher.encrypt(secretToken);
    expect(a).toMatch(/^v1:[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$/);
    expect(Buffer.from(a.split(':')[1]!, 'base64')).toHaveLength(12);
    expect(a).not.toBe(b);
    expect(a).not.toContain('plaintext');
    expect(cipher.decrypt(a)).toBe(secretToken);
    expect(cipher.decrypt(cipher.encrypt(''))).toBe('');
  });

  it('fails loudly on a wrong key, without the data in the error', () => {
    const envelope = cipher.encrypt(secretToken);
    const error = failure(() => createTokenCipher('secret-key-B').decrypt(envelope));
    expect(error.code).toBe('internal');
    expect(`${error.message} ${JSON.stringify(error.details)} ${String(error.cause)}`).not.toMatch(/plaintext|v1:/);
    expect(error.message).not.toContain(envelope.split(':')[3]!);
  });

  it('rejects tampered and malformed envelopes', () => {
    const [v, iv, tag, data] = cipher.encrypt(secretToken).split(':') as [string, string, string, string];
    const flipped = Buffer.from(data, 'base64');
    flipped[0] = flipped[0]! ^ 1;
    expect(failure(() => cipher.decrypt([v, iv, tag, flipped.toString('base64')].join(':'))).code).toBe('internal');
    expect(failure(() => cipher.decrypt('plain-token')).code).toBe('internal');
    expect(failure(() => cipher.decrypt(`v2:${iv}:${tag}:${data}`)).code).toBe('internal');
    expect(failure(() => cipher.decrypt(`v1:AAAA:${tag}:${data}`)).code).toBe('internal');
  });

  it('refuses an empty secret', () => {
    expect(failure(() => createTokenCipher('')).code).toBe('internal');
  });
});
