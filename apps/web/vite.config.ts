import { defineConfig } from 'vite'

// The page is served by the API: index.html at `/`, every other file under `/app/` (the API's
// web-page.ts reads dist/ and serves nothing else). Nothing is inlined into the HTML or into
// data: URLs, so that the page's Content-Security-Policy can refuse every inline script and style.
export default defineConfig({
  base: '/app/',
  build: {
    outDir: 'dist',
    assetsDir: '',
    emptyOutDir: true,
    target: 'es2022',
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    reportCompressedSize: true,
  },
})
