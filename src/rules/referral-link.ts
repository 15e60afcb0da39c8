/**
 * The person's referral link (SPEC 4.1 `UF_CRM_SARAFAN_LINK`). The portal's member id goes in the
 * path because the landing route has no other way to know which portal a visitor came for.
 */
export function referralLink(appBaseUrl: string, memberIdOfPortal: string, code: string): string {
  return `${appBaseUrl.replace(/\/+$/, '')}/r/${encodeURIComponent(memberIdOfPortal)}/${encodeURIComponent(code)}`;
}
