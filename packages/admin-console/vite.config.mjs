// The console is built to dist/console: hashed files under assets/, no inline script or style
// (the server's Content-Security-Policy allows neither), nothing inlined as a data: URL, no source
// maps shipped, and one fixed base path, where the media server serves it.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

export default defineConfig({
  root: fileURLToPath(new URL('./src/web', import.meta.url)),
  base: '/_hsmedia/admin/',
  publicDir: false,
  build: {
    outDir: fileURLToPath(new URL('./dist/console', import.meta.url)),
    emptyOutDir: true,
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
    target: 'es2022',
    reportCompressedSize: false,
  },
});
