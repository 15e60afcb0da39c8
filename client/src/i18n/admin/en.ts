import dash from './dashboard.en';
import settings from './settings.en';
import type ru from './ru';

type Messages<T> = { [K in keyof T]: T[K] extends string ? string : Messages<T[K]> };

/** English texts of the admin page; same keys as ./ru.ts, checked by the type. */
const en: Messages<typeof ru> = { settings, dash };
export default en;
