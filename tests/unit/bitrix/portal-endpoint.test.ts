import type { LookupAddress } from 'node:dns';
import { describe, expect, it } from 'vitest';
import { AppError } from '../../../src/handlers/errors.js';
import {
  assertResolvesPublic,
  checkPortalEndpoint,
  createPublicOnlyLookup,
  isPublicAddress,
  type LookupAll,
} from '../../../src/bitrix/portal-endpoint.js';

function codeOf(fn: () => unknown): string | null {
  try {
    fn();
    return null;
  } catch (e) {
    return e instanceof AppError ? e.code : `not an AppError: ${String(e)}`;
  }
}

const resolvesTo =
  (...addresses: string[]): LookupAll =>
  async () =>
    addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));

describe('checkPortalEndpoint', () => {
  it.each([
    'https://acme.bitrix24.ru/rest/',
    'https://portal.example.test/rest/',
    'https://8.8.8.8/rest/',
    'https://[2a00:1450:4001:80b::200e]/rest/',
    'https://[::ffff:8.8.8.8]/rest/',
    'https://[64:ff9b::808:808]/rest/',
    'https://b24-abc.bitrix24.com:8443/rest/',
  ])('allows %s', (url) => {
    expect(codeOf(() => checkPortalEndpoint(url, { allowInsecure: false }))).toBeNull();
  });

  it.each([
    ['http://acme.bitrix24.ru/rest/', 'plain http'],
    ['ftp://acme.bitrix24.ru/rest/', 'not http(s)'],
    ['not a url', 'unparseable'],
    ['https://localhost/rest/', 'localhost'],
    ['https://LOCALHOST./rest/', 'localhost with a trailing dot'],
    ['https://app.localhost/rest/', '*.localhost'],
    ['https://printer.local/rest/', '*.local'],
    ['https://metadata.google.internal/rest/', '*.internal'],
    ['https://intranet/rest/', 'single label'],
    ['https://127.0.0.1/rest/', 'loopback v4'],
    ['https://0x7f.1/rest/', 'loopback in hex'],
    ['https://2130706433/rest/', 'loopback as a number'],
    ['https://0.0.0.0/rest/', '0.0.0.0/8'],
    ['https://10.1.2.3/rest/', '10/8'],
    ['https://172.16.0.1/rest/', '172.16/12'],
    ['https://172.31.255.254/rest/', '172.16/12 upper end'],
    ['https://192.168.1.1/rest/', '192.168/16'],
    ['https://169.254.169.254/rest/', 'link-local (metadata)'],
    ['https://100.64.0.1/rest/', 'CGNAT'],
    ['https://[::1]/rest/', 'loopback v6'],
    ['https://[::]/rest/', 'unspecified v6'],
    ['https://[fd12:3456::1]/rest/', 'unique-local'],
    ['https://[fc00::1]/rest/', 'unique-local fc'],
    ['https://[fe80::1]/rest/', 'link-local v6'],
    ['https://[::ffff:127.0.0.1]/rest/', 'mapped loopback'],
    ['https://[::ffff:10.0.0.1]/rest/', 'mapped private'],
    ['https://[::ffff:192.168.0.1]:8443/rest/', 'mapped private with a port'],
    ['https://[64:ff9b::a00:1]/rest/', 'NAT64 of a private address'],
    ['https://user:pass@acme.bitrix24.ru/rest/', 'credentials'],
    ['https://user@acme.bitrix24.ru/rest/', 'user name'],
  ])('refuses %s (%s)', (url) => {
    expect(codeOf(() => checkPortalEndpoint(url, { allowInsecure: false }))).toBe('insecure_portal');
  });

  it.each(['http://localhost:3000/rest/', 'http://127.0.0.1:4000/rest/', 'https://10.0.0.5/rest/', 'http://[::1]:3000/rest/'])(
    'allowInsecure allows %s',
    (url) => {
      expect(checkPortalEndpoint(url, { allowInsecure: true }).href).toBe(url);
    },
  );

  it('keeps refusing credentials and odd schemes with allowInsecure', () => {
    expect(codeOf(() => checkPortalEndpoint('http://u:p@localhost/rest/', { allowInsecure: true }))).toBe('insecure_portal');
    expect(codeOf(() => checkPortalEndpoint('file:///etc/passwd', { allowInsecure: true }))).toBe('insecure_portal');
  });

  it('names the problem without echoing credentials', () => {
    try {
      checkPortalEndpoint('https://alice:s3cret@10.0.0.1/rest/?auth=zzz', { allowInsecure: false });
      expect.unreachable();
    } catch (e) {
      expect((e as Error).message).toMatch(/credentials/);
      expect((e as Error).message).not.toMatch(/s3cret|alice|zzz/);
    }
    expect(() => checkPortalEndpoint('http://acme.bitrix24.ru/rest/', { allowInsecure: false })).toThrow(/not https/);
    expect(() => checkPortalEndpoint('https://192.168.0.1/rest/', { allowInsecure: false })).toThrow(/not a public host/);
  });
});

describe('isPublicAddress', () => {
  it.each([
    ['8.8.8.8', true],
    ['93.184.216.34', true],
    ['172.32.0.1', true],
    ['100.128.0.1', true],
    ['2606:4700::1111', true],
    ['127.0.0.1', false],
    ['100.127.255.255', false],
    ['224.0.0.1', false],
    ['255.255.255.255', false],
    ['::ffff:169.254.169.254', false],
    ['2002:c0a8:101::1', false], // 6to4 of 192.168.1.1
    ['fe80::1%eth0', false],
    ['not-an-ip', false],
  ])('%s → %s', (ip, expected) => {
    expect(isPublicAddress(ip)).toBe(expected);
  });
});

describe('assertResolvesPublic', () => {
  it('accepts a name resolving only to public addresses', async () => {
    await expect(assertResolvesPublic('acme.bitrix24.ru', resolvesTo('93.184.216.34', '2606:4700::1111'))).resolves.toBeUndefined();
  });

  it('refuses a name with any non-public address', async () => {
    await expect(assertResolvesPublic('evil.example.com', resolvesTo('93.184.216.34', '10.0.0.7'))).rejects.toMatchObject({
      code: 'insecure_portal',
    });
    await expect(assertResolvesPublic('evil.example.com', resolvesTo('::1'))).rejects.toMatchObject({ code: 'insecure_portal' });
  });

  it('judges IP literals without resolving them', async () => {
    const lookup: LookupAll = async () => {
      throw new Error('must not resolve');
    };
    await expect(assertResolvesPublic('[::1]', lookup)).rejects.toMatchObject({ code: 'insecure_portal' });
    await expect(assertResolvesPublic('8.8.8.8', lookup)).resolves.toBeUndefined();
  });

  it('reports a name that does not resolve as unavailable', async () => {
    const lookup: LookupAll = async () => {
      throw Object.assign(new Error('getaddrinfo ENOTFOUND'), { code: 'ENOTFOUND' });
    };
    await expect(assertResolvesPublic('nowhere.example.com', lookup)).rejects.toMatchObject({ code: 'portal_unavailable' });
  });
});

describe('createPublicOnlyLookup', () => {
  function run(lookup: LookupAll, all: boolean): Promise<{ err: NodeJS.ErrnoException | null; address: string | LookupAddress[] }> {
    return new Promise((resolve) => {
      createPublicOnlyLookup(lookup)('portal.example.test', { all }, (err: NodeJS.ErrnoException | null, address: string | LookupAddress[]) =>
        resolve({ err, address }),
      );
    });
  }

  it('passes public addresses through in both callback forms', async () => {
    expect(await run(resolvesTo('93.184.216.34'), false)).toEqual({ err: null, address: '93.184.216.34' });
    expect(await run(resolvesTo('93.184.216.34'), true)).toEqual({ err: null, address: [{ address: '93.184.216.34', family: 4 }] });
  });

  it('fails the connection when the name re-resolves to a private address', async () => {
    const { err } = await run(resolvesTo('192.168.10.10'), false);
    expect(err?.code).toBe('ERR_INSECURE_PORTAL');
  });
});
