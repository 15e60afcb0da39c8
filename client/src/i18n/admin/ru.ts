import dash from './dashboard.ru';
import settings from './settings.ru';

/**
 * Russian texts of the admin page (the main page only): loaded with the page's texts by the main
 * entry, so the card tabs never download them.
 */
export default { settings, dash } as const;
