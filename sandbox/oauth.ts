/**
 * The sandbox's OAuth server (reference §2): `GET|POST /oauth/token/` with
 * `grant_type=refresh_token`, rotating both tokens.
 */
import { Router } from 'express';
import type { SandboxPortal } from './portal.js';
import { PortalError } from './types.js';
import { CORS_HEADERS, requestParams } from './rest/index.js';

export function oauthRoutes(portal: SandboxPortal): Router {
  const router = Router();
  router.all(['/oauth/token', '/oauth/token/'], async (req, res) => {
    res.set(CORS_HEADERS);
    if (req.method === 'OPTIONS') {
      res.status(204).end();
      return;
    }
    try {
      const params = await requestParams(req);
      const grant = String(params.grant_type ?? '');
      if (grant !== 'refresh_token') throw new PortalError('unsupported_grant_type', 'The authorization grant type is not supported', 400);
      const clientId = String(params.client_id ?? '');
      const clientSecret = String(params.client_secret ?? '');
      const refreshToken = String(params.refresh_token ?? '');
      if (!clientId) throw new PortalError('invalid_client', 'Client id is missing', 401);
      const t = portal.refresh(clientId, clientSecret, refreshToken);
      const endpoint = `${portal.origin}/rest/`;
      res.status(200).json({
        access_token: t.accessToken,
        expires: t.expires,
        expires_in: t.expiresIn,
        scope: t.scope,
        domain: portal.domain,
        server_endpoint: endpoint,
        status: 'L',
        client_endpoint: endpoint,
        member_id: portal.memberId,
        user_id: t.userId,
        refresh_token: t.refreshToken,
      });
    } catch (e) {
      if (e instanceof PortalError) res.status(e.status).json({ error: e.code, error_description: e.description });
      else {
        console.error('sandbox OAuth: unexpected failure', e);
        res.status(500).json({ error: 'server_error', error_description: 'Internal server error' });
      }
    }
  });
  return router;
}
