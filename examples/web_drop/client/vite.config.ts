import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// The server address `npm run dev` proxies the API and WebSocket to.
const apiTarget = process.env.WEB_DROP_URL ?? 'http://127.0.0.1:3000';

export default defineConfig({
  plugins: [react()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // The committed build must be reproducible byte for byte, so no
    // source maps (they embed absolute paths on some setups) and no
    // build-time stamps anywhere.
    sourcemap: false,
    target: 'es2022',
  },
  server: {
    proxy: {
      '/api': { target: apiTarget, ws: true },
    },
  },
});
