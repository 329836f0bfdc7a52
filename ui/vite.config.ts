import { defineConfig } from 'vitest/config';

// Static output for Tauri (src-tauri/tauri.conf.json → build.frontendDist = ../ui/dist).
export default defineConfig({
  clearScreen: false,
  server: { port: 5173, strictPort: true, host: '127.0.0.1' },
  build: {
    target: 'safari15',
    outDir: 'dist',
    emptyOutDir: true,
    // Everything is bundled; nothing is fetched from anywhere at run time.
    assetsInlineLimit: 0,
  },
  css: { preprocessorOptions: { scss: { quietDeps: true, silenceDeprecations: ['import'] } } },
  test: {
    environment: 'jsdom',
    include: ['src/**/*.test.ts'],
  },
});
