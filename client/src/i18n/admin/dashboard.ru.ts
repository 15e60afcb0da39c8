/** Russian texts of the admin page's dashboard, spread into ../ru.ts as `dash`. */
export default {} as const;
