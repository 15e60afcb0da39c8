/** English texts of the admin page's settings, spread into ../en.ts as `settings` (same keys as settings.ru.ts, checked through ../en.ts). */
export default {} as const;
