/**
 * Which portal endpoints Sarafan may call (SPEC 9): outside B24_ALLOW_INSECURE_PORTALS only
 * `https://` URLs on public hosts. A portal endpoint comes from the OAuth server's answer, but a
 * compromised or misconfigured answer must still not turn the gateway into a proxy towards
 * loopback, the cloud metadata service or the office network (SSRF).
 *
 * Three layers: `checkPortalEndpoint` (the URL itself: scheme, credentials, host name or IP
 * literal), `assertResolvesPublic` (what the name resolves to, before the first call to a new
 * portal) and `createPublicOnlyLookup` (the same check inside every connection the gateway
 * opens, so a name that re-resolves to a private address later — DNS rebinding — is refused).
 */
import { promises as dnsPromises, type LookupAddress } from 'node:dns';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { AppError } from '../handlers/errors.js';

/** `dns.promises.lookup` with `{ all: true }`; injectable for tests. */
export type LookupAll = (hostname: string, options: { all: true }) => Promise<LookupAddress[]>;

/** The code of the error a refused connection fails with (the gateway never retries it). */
export const INSECURE_LOOKUP_CODE = 'ERR_INSECURE_PORTAL';

const NON_PUBLIC = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], // "this network"
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // CGNAT
  ['127.0.0.0', 8],
  ['169.254.0.0', 16], // link-local, cloud metadata
  ['172.16.0.0', 12],
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.0.2.0', 24], // TEST-NET-1
  ['192.168.0.0', 16],
  ['198.18.0.0', 15], // benchmarking
  ['198.51.100.0', 24], // TEST-NET-2
  ['203.0.113.0', 24], // TEST-NET-3
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, broadcast
] as const) {
  NON_PUBLIC.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [
  ['::', 128], // unspecified
  ['::1', 128],
  ['::', 96], // IPv4-compatible (deprecated)
  ['100::', 64], // discard-only
  ['2001:db8::', 32], // documentation
  ['fc00::', 7], // unique-local
  ['fe80::', 10], // link-local
  ['fec0::', 10], // site-local (deprecated)
  ['ff00::', 8], // multicast
] as const) {
  NON_PUBLIC.addSubnet(net, prefix, 'ipv6');
}
// BlockList checks IPv4-mapped IPv6 (::ffff:a.b.c.d) against the IPv4 rules itself.

const NON_PUBLIC_SUFFIXES = ['.localhost', '.local', '.internal', '.home.arpa', '.lan'];

/** True for an IP literal (v4 or v6, without brackets) that is routable on the public internet. */
export function isPublicAddress(ip: string): boolean {
  const family = isIP(ip);
  if (family === 4) return !NON_PUBLIC.check(ip, 'ipv4');
  if (family !== 6) return false;
  if (NON_PUBLIC.check(ip, 'ipv6')) return false;
  // NAT64 (64:ff9b::/96) and 6to4 (2002::/16) carry an IPv4 address: judge that one.
  const embedded = embeddedIPv4(ip);
  return embedded === null || !NON_PUBLIC.check(embedded, 'ipv4');
}

/** Host part without brackets or a trailing dot, lower case. */
function bareHost(hostname: string): string {
  let h = hostname.toLowerCase();
  if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1);
  while (h.endsWith('.')) h = h.slice(0, -1);
  return h;
}

/** True for a host name or IP literal that may be a public portal. Resolution is checked separately. */
export function isPublicHost(hostname: string): boolean {
  const host = bareHost(hostname);
  if (!host) return false;
  if (isIP(host)) return isPublicAddress(host);
  if (host === 'localhost' || !host.includes('.')) return false;
  return !NON_PUBLIC_SUFFIXES.some((suffix) => host.endsWith(suffix));
}

/** A URL for messages: never the credentials, never the query. */
function shown(url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname}`;
}

/**
 * The parsed endpoint when Sarafan may call it, else AppError('insecure_portal'). Credentials in
 * the URL and schemes other than http(s) are refused even with `allowInsecure`, which relaxes
 * only https and public-host requirements (sandbox and tests on localhost).
 */
export function checkPortalEndpoint(url: string, opts: { allowInsecure: boolean }): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new AppError('insecure_portal', 'The portal endpoint is not a valid URL');
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
    throw new AppError('insecure_portal', `The portal endpoint ${shown(parsed)} is not an http(s) URL`);
  }
  if (parsed.username || parsed.password) {
    throw new AppError('insecure_portal', `The portal endpoint ${shown(parsed)} carries credentials`);
  }
  if (opts.allowInsecure) return parsed;
  if (parsed.protocol !== 'https:') {
    throw new AppError('insecure_portal', `The portal endpoint ${shown(parsed)} is not https`);
  }
  if (!isPublicHost(parsed.hostname)) {
    throw new AppError('insecure_portal', `The portal endpoint ${shown(parsed)} is not a public host`);
  }
  return parsed;
}

const defaultLookup: LookupAll = (hostname, options) => dnsPromises.lookup(hostname, options);

/**
 * Resolves `hostname` and refuses it (AppError 'insecure_portal') when any address is not
 * public; AppError('portal_unavailable') when it does not resolve.
 */
export async function assertResolvesPublic(hostname: string, lookup: LookupAll = defaultLookup): Promise<void> {
  const host = bareHost(hostname);
  if (isIP(host)) {
    if (!isPublicAddress(host)) throw new AppError('insecure_portal', `The portal host ${host} is not a public address`);
    return;
  }
  let addresses: LookupAddress[];
  try {
    addresses = await lookup(host, { all: true });
  } catch (e) {
    throw new AppError('portal_unavailable', `The portal host ${host} does not resolve`, [], { cause: e });
  }
  if (!addresses.length) throw new AppError('portal_unavailable', `The portal host ${host} does not resolve`);
  if (addresses.some((a) => !isPublicAddress(a.address))) {
    throw new AppError('insecure_portal', `The portal host ${host} resolves to a non-public address`);
  }
}

/**
 * A `lookup` for `https.Agent` that fails the connection (code ERR_INSECURE_PORTAL) when the
 * host resolves to a non-public address, so the check holds for every connection, not only the
 * first one.
 */
export function createPublicOnlyLookup(lookup: LookupAll = defaultLookup): LookupFunction {
  return (hostname, options, callback) => {
    lookup(hostname, { all: true }).then(
      (all) => {
        const family = options.family === 4 || options.family === 6 ? options.family : 0;
        const addresses = family ? all.filter((a) => a.family === family) : all;
        const bad = addresses.find((a) => !isPublicAddress(a.address));
        if (bad || !addresses.length) {
          const err: NodeJS.ErrnoException = new Error(
            bad ? `The portal host ${hostname} resolves to a non-public address` : `The portal host ${hostname} does not resolve`,
          );
          err.code = bad ? INSECURE_LOOKUP_CODE : 'ENOTFOUND';
          callback(err, '', 0);
          return;
        }
        if (options.all) callback(null, addresses);
        else callback(null, addresses[0]!.address, addresses[0]!.family);
      },
      (e: NodeJS.ErrnoException) => callback(e, '', 0),
    );
  };
}

/** The IPv4 address inside a NAT64 (64:ff9b::/96) or 6to4 (2002::/16) address, else null. */
function embeddedIPv4(ip: string): string | null {
  const words = ipv6Words(ip);
  if (!words) return null;
  const v4 = (hi: number, lo: number): string => `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;
  if (words[0] === 0x64 && words[1] === 0xff9b && words.slice(2, 6).every((w) => w === 0)) return v4(words[6]!, words[7]!);
  if (words[0] === 0x2002) return v4(words[1]!, words[2]!);
  return null;
}

/** The eight 16-bit words of an IPv6 literal (accepts a trailing dotted quad), or null. */
function ipv6Words(ip: string): number[] | null {
  let text = ip.toLowerCase();
  const zone = text.indexOf('%');
  if (zone >= 0) text = text.slice(0, zone);
  const quad = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (quad) {
    const [a, b, c, d] = quad.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, quad.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const head = halves[0] ? halves[0].split(':') : [];
  const tail = halves.length === 2 && halves[1] ? halves[1].split(':') : [];
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return null;
  const words = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...tail].map((w) => Number.parseInt(w, 16));
  return words.length === 8 && words.every((w) => Number.isInteger(w) && w >= 0 && w <= 0xffff) ? words : null;
}
