// Bundles tether-server (compiled by `tsc -b` into dist/) with Effect, the
// @effect packages and @tether's packages into dist/bundle/ (one chunk per
// lazily imported mode and flag), which bin/tether-server runs while it is
// newer than every file it was built from. Why: Effect's modules as
// published keep their JSDoc and every export; the process holds all of that
// source and its functions for its life. Tree-shaken, an echo server holds
// ~18 MiB less (bench/RESULTS.md, issue 17). Not minified: names stay
// readable in stack traces and CPU profiles. CommonJS and native packages
// (ws, yaml, msgpackr, node-redis, OpenTelemetry, ...) stay external,
// imported from node_modules as before. Run by `npm run build` after tsc.
import { build } from "esbuild"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const app = fileURLToPath(new URL("..", import.meta.url))
const outdir = path.join(app, "dist/bundle")
const bundled = /^(effect|@effect\/[^/]+|@tether\/[^/]+|fast-check|pure-rand|find-my-way-ts|multipasta)(\/|$)/

const plugin = {
  name: "tether-server",
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (args) =>
      args.path.startsWith("node:") || !bundled.test(args.path) ? { path: args.path, external: true } : undefined)
    // Our modules that find files next to themselves (the web pages' scripts):
    // their own URL, as seen from the bundle's folder.
    b.onLoad({ filter: /\.js$/ }, async (args) => {
      if (args.path.includes(`${path.sep}node_modules${path.sep}`)) return undefined
      const source = await fs.promises.readFile(args.path, "utf8")
      if (!source.includes("import.meta.url")) return undefined
      const own = `new URL(${JSON.stringify(path.relative(outdir, args.path).split(path.sep).join("/"))}, import.meta.url).href`
      return { contents: source.replaceAll("import.meta.url", own), loader: "js", resolveDir: path.dirname(args.path) }
    })
  }
}

const started = Date.now()
fs.rmSync(outdir, { recursive: true, force: true })
const result = await build({
  entryPoints: [path.join(app, "dist/main.js")],
  outdir,
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  sourcemap: true,
  legalComments: "none",
  metafile: true,
  logLevel: "warning",
  plugins: [plugin]
})
// What the bin checks before it runs the bundle, and when the bundle was made:
// our own inputs, and npm's record of node_modules (rewritten by every install).
const relative = (file) => path.relative(outdir, file).split(path.sep).join("/")
const inputs = Object.keys(result.metafile.inputs).map((input) => path.resolve(input))
  .filter((input) => !input.includes(`${path.sep}node_modules${path.sep}`))
  .concat(path.resolve(app, "../../node_modules/.package-lock.json"))
  .map(relative)
fs.writeFileSync(path.join(outdir, "inputs.json"), JSON.stringify({ built: started, inputs }))
