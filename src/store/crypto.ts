/**
 * Tokens at rest (SPEC 9): AES-256-GCM with a key derived from SARAFAN_SECRET_KEY. The envelope
 * `v1:<iv>:<tag>:<ciphertext>` (base64 parts, random 12-byte IV) names its version so the key
 * derivation can change later without a flag day. A wrong key fails loudly — GCM authentication
 * rejects it — and the error never carries the stored data.
 */
import { createCipheriv, createDecipheriv, randomBytes, scryptSync } from 'node:crypto';
import { AppError } from '../handlers/errors.js';

export interface TokenCipher {
  encrypt(plaintext: string): string;
  decrypt(envelope: string): string;
}

const VERSION = 'v1';
// A fixed salt is fine here: the salt's job (defeating precomputation across many users' keys)
// does not apply to one server secret; scrypt still makes a weak secret costly to brute-force.
const SALT = 'sarafan.token-cipher.v1';

export function createTokenCipher(secretKey: string): TokenCipher {
  if (secretKey.length === 0) throw new AppError('internal', 'token cipher: the secret key is empty');
  const key = scryptSync(secretKey, SALT, 32);

  return {
    encrypt(plaintext) {
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      const data = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
      const tag = cipher.getAuthTag();
      return [VERSION, iv.toString('base64'), tag.toString('base64'), data.toString('base64')].join(':');
    },

    decrypt(envelope) {
      const parts = envelope.split(':');
      if (parts.length !== 4 || parts[0] !== VERSION) {
        throw new AppError('internal', 'token cipher: stored value is not a v1 envelope');
      }
      const iv = Buffer.from(parts[1] ?? '', 'base64');
      const tag = Buffer.from(parts[2] ?? '', 'base64');
      const data = Buffer.from(parts[3] ?? '', 'base64');
      if (iv.length !== 12 || tag.length !== 16) {
        throw new AppError('internal', 'token cipher: stored value is malformed');
      }
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, iv);
        decipher.setAuthTag(tag);
        return Buffer.concat([decipher.update(data), decipher.final()]).toString('utf8');
      } catch {
        // No cause attached: the underlying error is generic, and nothing of the data may leak.
        throw new AppError('internal', 'token cipher: cannot decrypt a stored token (wrong SARAFAN_SECRET_KEY?)');
      }
    },
  };
}
