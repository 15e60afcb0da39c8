/**
 * Sarafan as a local application of the sandbox portal: the keys a sandbox-mode Sarafan uses,
 * and the URLs the portal opens (install wizard, main page and tabs).
 */
import type { AppSpec } from './server.js';

export const SANDBOX_CLIENT_ID = 'local.sarafan.sandbox';
export const SANDBOX_CLIENT_SECRET = 'sarafan-sandbox-secret';

export function sarafanApp(appBaseUrl: string, keys = { clientId: SANDBOX_CLIENT_ID, clientSecret: SANDBOX_CLIENT_SECRET }): AppSpec {
  const base = appBaseUrl.replace(/\/+$/, '');
  return {
    clientId: keys.clientId,
    clientSecret: keys.clientSecret,
    code: 'sarafan',
    title: 'Сарафан',
    version: '1',
    scope: 'crm,placement,bizproc,im,user_brief',
    handlerUrl: `${base}/b24/frame`,
    installUrl: `${base}/b24/install`,
  };
}
