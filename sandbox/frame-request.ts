/**
 * What the portal sends when it opens an app page (install wizard, main page, card tab):
 * reference §1.3 — the form fields POSTed into the iframe, and DOMAIN/PROTOCOL/LANG/APP_SID in
 * the query string. One definition for the web CRM's frames and the headless installer.
 */
import type { Portal, SandboxApp } from './types.js';

export interface FrameTokens {
  accessToken: string;
  refreshToken: string;
  expiresIn: number;
}

/** The form fields, in Bitrix24's order; PLACEMENT_OPTIONS only for placements (a JSON string). */
export function frameForm(portal: Portal, app: SandboxApp, tokens: FrameTokens, placement: string, options: Record<string, string> | null): [string, string][] {
  const fields: [string, string][] = [
    ['AUTH_ID', tokens.accessToken],
    ['AUTH_EXPIRES', String(tokens.expiresIn)],
    ['REFRESH_ID', tokens.refreshToken],
    ['SERVER_ENDPOINT', `${portal.origin}/rest/`],
  ];
  if (app.applicationToken) fields.push(['APPLICATION_TOKEN', app.applicationToken]);
  fields.push(['APPLICATION_SCOPE', app.scope], ['member_id', portal.memberId], ['status', 'L'], ['PLACEMENT', placement]);
  if (options) fields.push(['PLACEMENT_OPTIONS', JSON.stringify(options)]);
  return fields;
}

/** The app URL with the query Bitrix24 adds. */
export function frameUrl(portal: Portal, handler: string, appSid: string, lang = 'ru'): string {
  const url = new URL(handler);
  url.searchParams.set('DOMAIN', portal.domain);
  url.searchParams.set('PROTOCOL', portal.protocol === 'https' ? '1' : '0');
  url.searchParams.set('LANG', lang);
  url.searchParams.set('APP_SID', appSid);
  return url.toString();
}
