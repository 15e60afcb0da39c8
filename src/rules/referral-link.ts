/**
 * The person's referral link (SPEC 4.1 `UF_CRM_SARAFAN_LINK`, SPEC 3 `GET /r/:portal/:code`). The
 * installation's public id goes in the path — the route has no other way to know which portal a
 * visitor came for — and never its member_id, which authenticates the portal's API calls and
 * must not be handed to every customer who receives a link. The portal is passed as an object
 * with its `publicId`, so that handing over a bare string (the member_id) does not typecheck.
 */
export function referralLink(appBaseUrl: string, portal: { publicId: string }, code: string): string {
  return `${appBaseUrl.replace(/\/+$/, '')}/r/${encodeURIComponent(portal.publicId)}/${encodeURIComponent(code)}`;
}
