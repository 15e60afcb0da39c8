export { webRoutes, type WebHooks } from './routes.js';
