/**
 * The web chat page: `GET /` (a static shell) and `GET /chat.js` (its script,
 * `packages/node/web/chat.ts` and `chatState.ts` with the protocol's Schemas
 * and codec from `@tether/protocol`, bundled by esbuild at build time into
 * `dist/web/chat.bundle.js`). The page speaks Tether's chat protocol over the
 * WebSocket at `/ws` (see `NodeWebSocket`), one JSON message per text
 * message. Everything from the network is rendered with `textContent`; the
 * page's CSP allows no inline script.
 *
 * @since 0.2.0
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import * as Page from "./internal/chatPage.js"
import * as WebAsset from "./internal/webAsset.js"

// Bundled by `npm run build` (scripts/bundle-web.mjs); found from src/ (tests) and dist/ alike.
const loadScript = WebAsset.cachedFile(new URL("../dist/web/chat.bundle.js", import.meta.url))

const pageHeaders = WebAsset.pageHeaders("; base-uri 'none'; form-action 'none'")

/**
 * `GET /` (the page) and `GET /chat.js` (its script).
 *
 * @since 0.2.0
 * @category routes
 */
export const router: HttpRouter.HttpRouter = HttpRouter.empty.pipe(
  HttpRouter.get("/", Effect.succeed(HttpServerResponse.html(Page.html).pipe(HttpServerResponse.setHeaders(pageHeaders)))),
  HttpRouter.get(
    "/chat.js",
    Effect.map(loadScript, (body) =>
      body === undefined
        ? HttpServerResponse.text("the chat script is not built: run `npm run build`", { status: 503 })
        : HttpServerResponse.text(body, { contentType: "text/javascript; charset=utf-8" }).pipe(
          HttpServerResponse.setHeaders(pageHeaders)
        ))
  )
)
