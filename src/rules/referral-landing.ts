/**
 * Where a referral link sends its visitor (SPEC 3 `GET /r/:portal/:code`). Only to the program's
 * own `landingUrl` — checked again here although it was validated when the program was saved,
 * because a redirect target is the one value a mistake turns into an open redirect — with the
 * code and the campaign tags merged into its query.
 */

export type AgentClass = 'desktop' | 'mobile' | 'bot' | 'other';

/** The shape of a referral code in a link: the code alphabet and prefix (letters and digits). */
const CODE_IN_LINK = /^[A-Za-z0-9]{1,32}$/;
/** A public id as the store generates it (20 hex digits). */
const PUBLIC_ID = /^[0-9a-f]{20}$/;

/** Refuse malformed path parts before any look-up: they cannot name a portal or a code. */
export function isLinkShaped(publicId: string, code: string): boolean {
  return PUBLIC_ID.test(publicId) && CODE_IN_LINK.test(code);
}

/**
 * The landing URL with `ref`, `utm_source=sarafan` and `utm_medium=referral` set in its query:
 * its other parameters and fragment are kept; ours replace any of the same name, since the
 * visitor came through this link. Null when there is no landing URL or it is not http(s).
 */
export function landingLocation(landingUrl: string | null, code: string): string | null {
  if (landingUrl === null) return null;
  let url: URL;
  try {
    url = new URL(landingUrl);
  } catch {
    return null;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return null;
  if (url.username || url.password) return null;
  url.searchParams.set('ref', code);
  url.searchParams.set('utm_source', 'sarafan');
  url.searchParams.set('utm_medium', 'referral');
  // URL serialisation percent-encodes control characters: no CR/LF can reach the Location header.
  return url.href;
}

/**
 * A coarse class of the visitor's user agent, all the funnel keeps of it: link previews of
 * messengers and crawlers fetch a shared link without anyone clicking, so they are told apart.
 */
export function agentClassOf(userAgent: string | undefined): AgentClass {
  const ua = userAgent ?? '';
  if (!ua.trim()) return 'other';
  if (/bot|crawl|spider|slurp|preview|facebookexternalhit|whatsapp|telegram|vkshare|skype|curl|wget|python|headless/i.test(ua)) return 'bot';
  if (/mobile|android|iphone|ipad|ipod/i.test(ua)) return 'mobile';
  if (/mozilla|opera/i.test(ua)) return 'desktop';
  return 'other';
}

/**
 * The language of a portal's referral page: the one its install wizard ran in (Russian for the
 * Russian-speaking Bitrix24 languages, else English), and when that is not known, its domain
 * (Bitrix24's Russian-language clouds: .ru, .by, .kz, .ua).
 */
export function portalLang(domain: string, lang: string | null = null): 'ru' | 'en' {
  if (lang) return /^(ru|ua|by|kz)$/i.test(lang) ? 'ru' : 'en';
  return /\.(ru|by|kz|ua|su|xn--p1ai)$/i.test(domain.replace(/\.$/, '').replace(/:\d+$/, '')) ? 'ru' : 'en';
}
