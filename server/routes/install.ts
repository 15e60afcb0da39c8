/**
 * POST /b24/install — the install wizard page (reference §1.2–1.4). Verifies and registers,
 * then answers a page that finishes the install through the real frame SDK
 * (`installFinish`). Failures are shown to the admin as a page, with the HTTP status of the
 * error code.
 */
import { Router } from 'express';
import { installApp } from '../../src/handlers/install-app.js';
import { installFormSchema, parseOrThrow } from '../../src/bitrix/payloads.js';
import { AppError, isAppError } from '../../src/handlers/errors.js';
import { scrubSecrets } from '../logger.js';
import type { Deps, RegistrationReport } from '../../src/handlers/ports.js';
import { httpStatusFor } from '../middleware/error-handler.js';
import { page, escapeHtml, pickLang } from './html.js';

const TEXT = {
  ru: {
    title: 'Установка «Сарафана»',
    working: 'Завершаем установку…',
    done: 'Готово: поля, события и вкладки зарегистрированы. Сарафан установлен.',
    failed: 'Установка не завершена. Не удалось зарегистрировать:',
    retry: 'Откройте установку ещё раз, чтобы повторить.',
    error: 'Установка не удалась',
  },
  en: {
    title: 'Installing Sarafan',
    working: 'Finishing the installation…',
    done: 'Done: fields, events and tabs are registered. Sarafan is installed.',
    failed: 'The installation is not finished. These could not be registered:',
    retry: 'Open the installation again to retry.',
    error: 'Installation failed',
  },
};

export function installRoutes(deps: Deps): Router {
  const router = Router();
  router.post('/b24/install', async (req, res) => {
    const input = { ...(req.query as Record<string, unknown>), ...(req.body as Record<string, unknown>) };
    const lang = pickLang(input.LANG);
    const t = TEXT[lang];
    try {
      const form = parseOrThrow(installFormSchema, input, 'install form');
      const { report } = await installApp(deps, {
        memberId: form.member_id,
        domain: form.DOMAIN ?? '',
        refreshToken: form.REFRESH_ID,
        applicationToken: form.APPLICATION_TOKEN,
        ...(typeof input.LANG === 'string' && input.LANG ? { lang } : {}),
      });
      res.type('html').send(report.failed.length ? failedPage(t, report) : finishPage(deps.appBaseUrl, t));
    } catch (e) {
      // The admin sees a page in the install slider, never a JSON error. Failures that are not
      // ours to name (the portal refused a registration read …) are a 502 with the reason.
      const error = isAppError(e) ? e : new AppError('portal_error', e instanceof Error ? scrubSecrets(e.message) : 'Registration failed');
      if (!isAppError(e)) deps.log.error({ error: error.message }, 'install.failed');
      res.status(httpStatusFor(error.code)).type('html').send(page(t.error, `<p class="error">${escapeHtml(t.error)}: ${escapeHtml(error.message)}</p>`));
    }
  });
  return router;
}

function failedPage(t: (typeof TEXT)['en'], report: RegistrationReport): string {
  const items = report.failed.map((f) => `<li><code>${escapeHtml(f.item)}</code>: ${escapeHtml(f.error)}</li>`).join('');
  return page(t.title, `<p class="error">${escapeHtml(t.failed)}</p><ul>${items}</ul><p>${escapeHtml(t.retry)}</p>`);
}

function finishPage(appBaseUrl: string, t: (typeof TEXT)['en']): string {
  const done = JSON.stringify(t.done);
  return page(
    t.title,
    `<p id="status">${escapeHtml(t.working)}</p>
<script src="${escapeHtml(appBaseUrl)}/static/b24jssdk.js"></script>
<script>
(async () => {
  const status = document.getElementById('status');
  try {
    const $b24 = await B24Js.initializeB24Frame();
    if ($b24.isInstallMode) await $b24.installFinish();
    status.textContent = ${done};
    status.dataset.state = 'finished';
  } catch (e) {
    status.textContent = String(e && e.message || e);
    status.dataset.state = 'error';
  }
})();
</script>`,
  );
}
