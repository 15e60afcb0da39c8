/** Minimal server-rendered pages (install wizard, errors), frameable by the portal. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

export function pickLang(value: unknown): 'ru' | 'en' {
  return typeof value === 'string' && /^(ru|ua|by|kz)$/i.test(value) ? 'ru' : 'en';
}

export function page(title: string, body: string): string {
  return `<!doctype html>
<html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>body{font:14px/1.5 "Open Sans","Helvetica Neue",Arial,sans-serif;color:#333;margin:24px}
h1{font-size:20px;font-weight:600}.error{color:#c0392b}code{background:#f5f7f8;padding:1px 4px}</style>
</head><body><h1>${escapeHtml(title)}</h1>${body}</body></html>`;
}
