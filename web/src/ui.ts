/** The Arco Design components the app uses, each with its own compiled CSS (no full bundle). */
import type { App } from 'vue';
import { Layout, Menu, Button, Form, Input, Select, Table, Alert, Card, Breadcrumb, Tag, Spin, Modal, Progress, Space, Grid, InputNumber, Tabs, Empty, Checkbox, ConfigProvider } from '@arco-design/web-vue';
import '@arco-design/web-vue/es/layout/style/css.js';
import '@arco-design/web-vue/es/menu/style/css.js';
import '@arco-design/web-vue/es/button/style/css.js';
import '@arco-design/web-vue/es/form/style/css.js';
import '@arco-design/web-vue/es/input/style/css.js';
import '@arco-design/web-vue/es/select/style/css.js';
import '@arco-design/web-vue/es/table/style/css.js';
import '@arco-design/web-vue/es/alert/style/css.js';
import '@arco-design/web-vue/es/card/style/css.js';
import '@arco-design/web-vue/es/breadcrumb/style/css.js';
import '@arco-design/web-vue/es/tag/style/css.js';
import '@arco-design/web-vue/es/spin/style/css.js';
import '@arco-design/web-vue/es/modal/style/css.js';
import '@arco-design/web-vue/es/progress/style/css.js';
import '@arco-design/web-vue/es/space/style/css.js';
import '@arco-design/web-vue/es/grid/style/css.js';
import '@arco-design/web-vue/es/input-number/style/css.js';
import '@arco-design/web-vue/es/tabs/style/css.js';
import '@arco-design/web-vue/es/empty/style/css.js';
import '@arco-design/web-vue/es/checkbox/style/css.js';

export function installUi(app: App): void {
  app.use(ConfigProvider);
  app.use(Layout);
  app.use(Menu);
  app.use(Button);
  app.use(Form);
  app.use(Input);
  app.use(Select);
  app.use(Table);
  app.use(Alert);
  app.use(Card);
  app.use(Breadcrumb);
  app.use(Tag);
  app.use(Spin);
  app.use(Modal);
  app.use(Progress);
  app.use(Space);
  app.use(Grid);
  app.use(InputNumber);
  app.use(Tabs);
  app.use(Empty);
  app.use(Checkbox);
}
