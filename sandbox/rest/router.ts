/** Entry point of the REST layer (see ./index.ts). */
export { restRoutes, methodTable, requestParams, CORS_HEADERS, type RestOptions } from './index.js';
