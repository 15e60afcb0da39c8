/** The app's main page (PLACEMENT DEFAULT). */
import { start } from '../mount';
import MainPage from '../views/MainPage.vue';

void start(() => ({ component: MainPage, props: {} }), { admin: true });
