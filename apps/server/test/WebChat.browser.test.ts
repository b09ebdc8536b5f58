/**
 * The web chat page in a real browser (Debian's Chromium, headless, driven by
 * playwright-core) against the chat server and its HTTP side in-process: two
 * pages and one TCP peer chat; the server stops and starts again on the same
 * ports and the pages show reconnecting, then connected; a hostile text
 * renders as text. Screenshots are kept in test-artifacts/webchat.png and
 * webchat-reconnecting.png (gitignored).
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { chromium, type Page } from "playwright-core"
import { peer, startChat } from "./fixtures/ChatHttp.js"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..")
const artifacts = path.join(root, "test-artifacts")

const launch = Effect.acquireRelease(
  Effect.promise(async () => {
    const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "tether-chromium-"))
    const context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: "/usr/bin/chromium",
      headless: true,
      viewport: { width: 1000, height: 640 },
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync"
      ]
    })
    return { context, userDataDir }
  }),
  ({ context, userDataDir }) =>
    Effect.promise(async () => {
      await context.close()
      fs.rmSync(userDataDir, { recursive: true, force: true })
    })
)

const join = async (page: Page, url: string, user: string) => {
  await page.goto(url)
  await page.fill("#user", user)
  await page.fill("#password", "pw")
  await page.click("#login button")
  await page.waitForSelector("#state[data-state=connected]", { timeout: 5000 })
}

const say = async (page: Page, text: string) => {
  await page.fill("#text", text)
  await page.click("#send")
}

/** The transcript's texts (each line's `.text`, as rendered). */
const lines = (page: Page) => page.locator("#transcript li .text").allTextContents()

// Predicates as functions, not strings (Playwright evaluates a string with eval, which the page's CSP forbids).
interface Doc {
  readonly querySelectorAll: (selector: string) => ArrayLike<{ readonly textContent: string | null }>
}

const hasLine = (page: Page, text: string) =>
  page.waitForFunction(
    (t: string) =>
      Array.from((globalThis as unknown as { readonly document: Doc }).document.querySelectorAll("#transcript li .text"))
        .some((e) => e.textContent === t),
    text,
    { timeout: 5000 }
  )

const whoCount = (page: Page, n: number) =>
  page.waitForFunction(
    (count: number) => (globalThis as unknown as { readonly document: Doc }).document.querySelectorAll("#who li").length === count,
    n,
    { timeout: 5000 }
  )

describe("the web chat page in Chromium", () => {
  it.scopedLive("two pages and a TCP peer chat; a restart shows reconnecting, then connected; network text stays text", () =>
    Effect.gen(function*() {
      const first = yield* Scope.make()
      const started = yield* startChat().pipe(Scope.extend(first))
      const { port, url } = started
      const httpPort = Number(new URL(url).port)
      const { context } = yield* launch
      const hostile = "<img src=x onerror=\"document.title='owned'\">\u0007\u001b[31mred\u200e"

      const [ann, ben] = yield* Effect.promise(async () => {
        const ann = await context.newPage()
        const ben = await context.newPage()
        await join(ann, url, "ann")
        await join(ben, url, "ben")
        return [ann, ben] as const
      })
      const errors: Array<string> = []
      for (const page of [ann, ben]) page.on("pageerror", (error) => errors.push(String(error)))

      const cli = yield* Effect.promise(async () => {
        const cli = await peer(port)
        cli.send({ _tag: "Login", user: "cli", password: "pw" })
        await cli.waitFor("logged in", (ms) => ms.some((m) => m._tag === "LoginResult" && m.status === 0))
        return cli
      })

      yield* Effect.promise(async () => {
        // Who is here: both pages list all three (the TCP user among them).
        await whoCount(ann, 3)
        assert.deepStrictEqual(await ann.locator("#who li").allTextContents(), ["ann", "ben", "cli"])
        assert.deepStrictEqual(await ben.locator("#who li").allTextContents(), ["ann", "ben", "cli"])

        await say(ann, "hello from the browser")
        await hasLine(ben, "hello from the browser")
        await cli.waitFor("ann's line", (ms) => ms.some((m) => m._tag === "Said" && m.from === "ann" && m.text === "hello from the browser"))
        // Acknowledged: ann's own line is no longer pending.
        await ann.waitForSelector("#transcript li.own:not(.pending)", { timeout: 5000 })

        cli.send({ _tag: "Say", id: 1, text: "hello from the terminal" })
        cli.send({ _tag: "Say", id: 2, text: hostile })
        for (const page of [ann, ben]) {
          await hasLine(page, "hello from the terminal")
          await hasLine(page, hostile)
          assert.strictEqual(await page.locator("#transcript img, #who img").count(), 0)
          assert.notStrictEqual(await page.title(), "owned")
        }
      })

      // The server stops (drain: Bye, close) and comes back on the same ports.
      yield* Scope.close(first, Exit.void)
      yield* Effect.promise(async () => {
        for (const page of [ann, ben]) {
          await page.waitForSelector("#state[data-state=reconnecting]", { timeout: 5000 })
          assert.match((await page.textContent("#state")) ?? "", /^reconnecting in \d+ s, attempt \d+ of 10$/)
          await hasLine(page, "server closing the session: shutting down")
        }
        assert.strictEqual(await ann.locator("#send").isDisabled(), true)
        fs.mkdirSync(artifacts, { recursive: true })
        await ben.screenshot({ path: path.join(artifacts, "webchat-reconnecting.png") })
      })
      yield* startChat({ port, httpPort })
      yield* Effect.promise(async () => {
        for (const page of [ann, ben]) {
          await page.waitForSelector("#state[data-state=connected]", { timeout: 10_000 })
          assert.strictEqual(await page.textContent("#state"), "connected")
        }
        await whoCount(ben, 2)
        await say(ben, "back again")
        await hasLine(ann, "back again")
        // The transcript kept what was said before the restart.
        assert.includeMembers(await lines(ann), ["hello from the browser", "hello from the terminal", hostile, "back again"])
        assert.deepStrictEqual(errors, [])

        await ann.screenshot({ path: path.join(artifacts, "webchat.png") })
        assert.isAbove(fs.statSync(path.join(artifacts, "webchat.png")).size, 10_000)
      })
      cli.socket.destroy()
    }), 60_000)
})
