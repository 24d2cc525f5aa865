// The web UI's build: `npm run build` (scripts/build.mjs) runs it into dist/ui/, which the server
// serves at `/` (src/http/ui.ts). Asset names carry content hashes (long cache lifetimes there).
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

export default defineConfig({
  root: new URL(".", import.meta.url).pathname,
  base: "/",
  plugins: [react()],
  // Never copy a public/ folder: everything the app loads is imported, hashed and listed in index.html.
  publicDir: false,
  build: {
    outDir: new URL("../dist/ui", import.meta.url).pathname,
    emptyOutDir: true,
    assetsDir: "assets",
    target: "es2022",
    // The Content-Security-Policy allows no inline script: no polyfill snippet, no inlined assets.
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    sourcemap: false,
    reportCompressedSize: false,
  },
});
