/**
 * The person's referral link (SPEC 4.1 `UF_CRM_SARAFAN_LINK`, SPEC 3 `GET /r/:portal/:code`). The
 * installation's public id goes in the path — the route has no other way to know which portal a
 * visitor came for — and never its member_id, which authenticates the portal's API calls and
 * must not be handed to every customer who receives a link.
 */
export function referralLink(appBaseUrl: string, publicIdOfPortal: string, code: string): string {
  return `${appBaseUrl.replace(/\/+$/, '')}/r/${encodeURIComponent(publicIdOfPortal)}/${encodeURIComponent(code)}`;
}
