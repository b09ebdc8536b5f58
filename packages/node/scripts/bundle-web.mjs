// Bundles the web chat page's script (compiled by `tsc -b` into dist/web/chat.js)
// with what it imports from @tether/protocol and effect into one file the
// browser loads: dist/web/chat.bundle.js. Run by `npm run build` after tsc.
import { build } from "esbuild"
import { fileURLToPath } from "node:url"

const dist = fileURLToPath(new URL("../dist/web/", import.meta.url))
await build({
  entryPoints: [`${dist}chat.js`],
  outfile: `${dist}chat.bundle.js`,
  bundle: true,
  format: "esm",
  platform: "browser",
  target: "es2022",
  minify: true,
  sourcemap: true,
  legalComments: "none",
  logLevel: "warning"
})
