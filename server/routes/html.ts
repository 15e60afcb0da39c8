/** Minimal server-rendered pages (install wizard, frame, errors), frameable by the portal. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

export type Lang = 'ru' | 'en';

export function pickLang(value: unknown): Lang {
  return typeof value === 'string' && /^(ru|ua|by|kz)$/i.test(value) ? 'ru' : 'en';
}

/** `head` is trusted markup added to <head> (extra styles). */
export function page(title: string, body: string, opts: { head?: string; lang?: 'ru' | 'en' } = {}): string {
  return `<!doctype html>
<html${opts.lang ? ` lang="${opts.lang}"` : ''}><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>body{font:14px/1.5 "Open Sans","Helvetica Neue",Arial,sans-serif;color:#333;margin:24px}
h1{font-size:20px;font-weight:600}.error{color:#c0392b}code{background:#f5f7f8;padding:1px 4px}</style>${opts.head ?? ''}
</head><body><h1>${escapeHtml(title)}</h1>${body}</body></html>`;
}
