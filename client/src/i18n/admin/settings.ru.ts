/** Russian texts of the admin page's settings, spread into ../ru.ts as `settings`. */
export default {} as const;
