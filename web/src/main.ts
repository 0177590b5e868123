import { createApp } from 'vue';
import App from './App.vue';
import { router } from './router';
import { installUi } from './ui';

const app = createApp(App);
installUi(app);
app.use(router).mount('#app');
