import { defineConfig } from 'vite';
import vue from '@vitejs/plugin-vue';

// During development the API (and its event stream) is proxied like Nginx does:
// /api/... → the API service, /ml/... → the ML service.
const api = process.env.GRIDLAKE_API_URL ?? 'http://127.0.0.1:8000';

export default defineConfig({
  plugins: [vue()],
  build: {
    outDir: 'dist',
    assetsDir: 'assets',
    chunkSizeWarningLimit: 800,
    rollupOptions: {
      output: {
        // big libraries in their own long-cached chunks; pages are split per route
        manualChunks(id: string) {
          if (id.includes('node_modules/echarts') || id.includes('node_modules/zrender')) {
            return 'echarts';
          }
          if (id.includes('node_modules/@arco-design')) return 'arco';
          if (id.includes('node_modules/vue') || id.includes('node_modules/@vue')) return 'vue';
          return undefined;
        },
      },
    },
  },
  server: { proxy: { '/api': { target: api, changeOrigin: false } } },
  preview: { proxy: { '/api': { target: api, changeOrigin: false } } },
  test: { include: ['tests/**/*.test.ts'], environment: 'node' },
});
