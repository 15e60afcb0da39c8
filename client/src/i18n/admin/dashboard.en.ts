/** English texts of the admin page's dashboard, spread into ../en.ts as `dash` (same keys as dashboard.ru.ts, checked through ../en.ts). */
export default {} as const;
