/**
 * The web chat page in a real browser (Debian's Chromium, headless, driven by
 * playwright-core) against the chat server and its HTTP side in-process: two
 * pages and the real terminal client (`tether-client`, spawned, its stdin
 * scripted, its output read) chat in #lobby, and the pages in a room they
 * join; a hostile text renders as text on the pages and escaped in the
 * terminal. One page's WebSocket is dropped (routed
 * through Playwright, which closes it and refuses reconnects for a while)
 * while the server stays up: the page shows reconnecting, queues a line typed
 * meanwhile, then resumes and shows the missed lines once, in order, and its
 * queued line reaches the others once. Then the server stops and starts
 * again on the same ports (an in-memory history is gone): the pages say the
 * missed messages could not be recovered, the terminal client that it
 * reconnected; every user's lines still reach the others. Screenshots are kept in
 * test-artifacts/webchat.png, webchat-resumed.png and
 * webchat-reconnecting.png (gitignored).
 */
import { afterEach, assert, beforeAll, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import * as fs from "node:fs"
import * as path from "node:path"
import type { Page } from "playwright-core"
import WebSocket from "ws"
import * as Browser from "./fixtures/Browser.js"
import { startChat } from "./fixtures/ChatHttp.js"
import * as P from "./fixtures/Processes.js"

beforeAll(P.assertBuilt)
afterEach(P.killAll)

const artifacts = Browser.artifacts()
const launch = Browser.launch({ width: 1000, height: 640 })

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

/** The texts of the transcript's lines that are in `wanted`, in the order shown. */
const shown = async (page: Page, wanted: ReadonlyArray<string>) => (await lines(page)).filter((t) => wanted.includes(t))

const joinRoom = async (page: Page, room: string) => {
  await page.fill("#room", room)
  await page.click("#join-button")
  await page.waitForSelector(`#rooms button[data-room="${room}"][aria-current=true]`, { timeout: 5000 })
}

const showRoom = async (page: Page, room: string) => {
  await page.click(`#rooms button[data-room="${room}"]`)
  await page.waitForSelector(`#rooms button[data-room="${room}"][aria-current=true]`, { timeout: 5000 })
}

const stateIs = (page: Page, text: string) =>
  page.waitForFunction(
    (t: string) =>
      (globalThis as unknown as { readonly document: { getElementById(id: string): { textContent: string | null } | null } })
        .document.getElementById("state")?.textContent === t,
    text,
    { timeout: 15_000 }
  ).catch(async (error) => {
    throw new Error(`the state line reads ${JSON.stringify(await page.textContent("#state"))}, not ${JSON.stringify(text)}: ${error}`)
  })

const whoCount = (page: Page, n: number) =>
  page.waitForFunction(
    (count: number) => (globalThis as unknown as { readonly document: Doc }).document.querySelectorAll("#who li").length === count,
    n,
    { timeout: 5000 }
  )

describe("the web chat page in Chromium", () => {
  it.scopedLive("two pages and tether-client chat; a dropped page resumes with the missed lines once and sends what was typed offline; a restart is unrecoverable; network text stays text", () =>
    Effect.gen(function*() {
      const first = yield* Scope.make()
      const started = yield* startChat().pipe(Scope.extend(first))
      const { port, url } = started
      const httpPort = Number(new URL(url).port)
      // The terminal user: tether-client with a scripted stdin (each line said; kept open until the
      // end), started now so that its process starts while the browser does.
      const cli = P.start(P.clientBin, ["--port", String(port), "--user", "cli", "--heartbeat-timeout", "120s"])
      const { context } = yield* launch
      const hostile = "<img src=x onerror=\"document.title='owned'\">\u0007\u001b[31mred\u200e"

      // ann's WebSocket goes through Playwright to a `ws` client of the test's, so that the test can
      // drop it (both ends close at once) while the server stays up, and refuse reconnects for a while.
      const route = { live: [] as Array<{ readonly drop: () => void }>, offline: false }
      const [ann, ben] = yield* Effect.promise(async () => {
        const ann = await context.newPage()
        const ben = await context.newPage()
        await ann.routeWebSocket(/\/ws$/, (page) => {
          if (route.offline) return page.close({ code: 1001, reason: "offline (test)" })
          const server = new WebSocket(page.url())
          const early: Array<string> = []
          page.onMessage((m) => (server.readyState === WebSocket.OPEN ? server.send(String(m)) : early.push(String(m))))
          server.on("open", () => early.splice(0).forEach((m) => server.send(m)))
          server.on("message", (data) => page.send(String(data)))
          server.on("close", () => page.close({ code: 1001, reason: "connection closed" }))
          server.on("error", () => page.close({ code: 1001, reason: "connection failed" }))
          page.onClose(() => server.close())
          route.live.push({ drop: () => server.terminate() })
        })
        await join(ann, url, "ann")
        await join(ben, url, "ben")
        return [ann, ben] as const
      })
      const errors: Array<string> = []
      for (const page of [ann, ben]) page.on("pageerror", (error) => errors.push(String(error)))

      // The terminal user connected (it started while the browser did).
      yield* Effect.promise(() => cli.waitFor(/^\* connected$/m, 10_000))
      const type = (line: string) => cli.proc.stdin.write(`${line}\n`)
      /** How many times the client printed `from`'s line `text`. */
      const printed = (from: string, text: string) =>
        cli.output().split("\n").filter((l) => l.endsWith(`<${from}> ${text}`)).length

      yield* Effect.promise(async () => {
        // Who is here: both pages list all three (the terminal user among them).
        await whoCount(ann, 3)
        assert.deepStrictEqual(await ann.locator("#who li").allTextContents(), ["ann", "ben", "cli"])
        assert.deepStrictEqual(await ben.locator("#who li").allTextContents(), ["ann", "ben", "cli"])

        await say(ann, "hello from the browser")
        await hasLine(ben, "hello from the browser")
        await cli.waitFor(/\] <ann> hello from the browser$/m)
        // Acknowledged: ann's own line is no longer pending.
        await ann.waitForSelector("#transcript li.own:not(.pending)", { timeout: 5000 })

        type("hello from the terminal")
        type(hostile)
        for (const page of [ann, ben]) {
          await hasLine(page, "hello from the terminal")
          await hasLine(page, hostile)
          assert.strictEqual(await page.locator("#transcript img, #who img").count(), 0)
          assert.notStrictEqual(await page.title(), "owned")
        }
        // ben's hostile line in the terminal: escaped, no control character reaches it.
        await say(ben, `ben says ${hostile}`)
        const [line] = await cli.waitFor(/\] <ben> ben says .*$/m)
        assert.include(line, "\\x1b[31mred")
        assert.notMatch(line, /[\u0000-\u001f\u007f-\u009f\u200e]/)
      })

      // ann and ben join #side, then ann loses its connection while the server stays up.
      yield* Effect.promise(async () => {
        await joinRoom(ann, "#side")
        await joinRoom(ben, "#side")
        await hasLine(ann, "ben joined")
        await showRoom(ann, "#lobby")
        await showRoom(ben, "#lobby")

        route.offline = true
        // The server sees its session end, and the page its socket close.
        for (const live of route.live.splice(0)) live.drop()
        await ann.waitForSelector("#state[data-state=reconnecting]", { timeout: 5000 })
        // Typed while disconnected: shown at once, pending, sent after the reconnect.
        assert.strictEqual(await ann.locator("#send").isDisabled(), false)
        await say(ann, "typed while offline")
        await ann.waitForSelector("#transcript li.own.pending", { timeout: 5000 })

        type("missed one")
        await hasLine(ben, "missed one")
        await showRoom(ben, "#side")
        await say(ben, "missed in side")
        await hasLine(ben, "missed in side")
        await showRoom(ben, "#lobby")
        await say(ben, "missed two")
        await hasLine(ben, "missed two")
        type("missed three")
        await hasLine(ben, "missed three")
        // Still offline: the reconnect attempts fail and are counted.
        await ann.waitForFunction(
          () =>
            /attempt [2-9] of 10$/.test(
              (globalThis as unknown as { readonly document: Doc & { getElementById(id: string): { textContent: string | null } } })
                .document.getElementById("state").textContent ?? ""
            ),
          undefined,
          { timeout: 8000 }
        )
        assert.match((await ann.textContent("#state")) ?? "", /^reconnecting in \d+ s, attempt [2-9] of 10$/)
        route.offline = false

        await stateIs(ann, "connected · 3 missed messages replayed in #lobby · 1 missed message replayed in #side")
        const missed = ["hello from the terminal", "missed one", "missed two", "missed three", "typed while offline"]
        await ann.waitForSelector("#transcript li.own:not(.pending) >> text=typed while offline", { timeout: 5000 })
        assert.deepStrictEqual(await shown(ann, missed), missed)
        assert.strictEqual(await ann.locator("#transcript li.pending").count(), 0)
        // The line typed offline reached the others, once.
        await hasLine(ben, "typed while offline")
        await cli.waitFor(/\] <ann> typed while offline$/m)
        assert.strictEqual((await lines(ben)).filter((t) => t === "typed while offline").length, 1)
        assert.strictEqual(printed("ann", "typed while offline"), 1)
        fs.mkdirSync(artifacts, { recursive: true })
        await ann.screenshot({ path: path.join(artifacts, "webchat-resumed.png") })
        await showRoom(ann, "#side")
        assert.deepStrictEqual(await shown(ann, ["missed in side"]), ["missed in side"])
        await showRoom(ann, "#lobby")
      })

      // The server stops (drain: Bye, close) and comes back on the same ports.
      yield* Scope.close(first, Exit.void)
      yield* Effect.promise(async () => {
        for (const page of [ann, ben]) {
          await page.waitForSelector("#state[data-state=reconnecting]", { timeout: 5000 })
          assert.match((await page.textContent("#state")) ?? "", /^reconnecting in \d+ s, attempt \d+ of 10$/)
          await hasLine(page, "server closing the session: shutting down")
        }
        await ben.screenshot({ path: path.join(artifacts, "webchat-reconnecting.png") })
      })
      yield* startChat({ port, httpPort })
      yield* Effect.promise(async () => {
        // A new in-memory server: the history the pages' positions refer to is gone, and they say so.
        // Both pages were in #lobby and #side.
        for (const page of [ben, ann]) {
          await stateIs(
            page,
            "connected · missed messages in #lobby could not be recovered · missed messages in #side could not be recovered"
          )
        }
        // Said while the terminal client may still be reconnecting: it gets the line live or
        // replayed from the new history, once either way.
        await say(ben, "back again")
        await hasLine(ann, "back again")
        // The terminal client was told, waited, reconnected, and says what its resume found.
        await cli.waitFor(/^\* server closing the session: shutting down$/m)
        await cli.waitFor(/; reconnecting in [\d.]+ s, attempt 1 of 10$/m)
        await cli.waitFor(/^\* reconnected$/m, 15_000)
        await cli.waitFor(/^\* missed messages in #lobby could not be recovered \(/m)
        await cli.waitFor(/\] <ben> back again$/m)
        await whoCount(ben, 3)
        type("the terminal is back")
        for (const page of [ann, ben]) await hasLine(page, "the terminal is back")
        // The transcript kept what was said before the restart.
        assert.includeMembers(await lines(ann), ["hello from the browser", "hello from the terminal", hostile, "missed three", "back again"])
        // Each line reached the terminal once, across the drop and the restart.
        for (const [from, text] of [["ann", "hello from the browser"], ["ben", "missed two"], ["ben", "back again"]] as const) {
          assert.strictEqual(printed(from, text), 1, `${from}: ${text}`)
        }
        assert.deepStrictEqual(errors, [])

        await ann.screenshot({ path: path.join(artifacts, "webchat.png") })
        assert.isAbove(fs.statSync(path.join(artifacts, "webchat.png")).size, 10_000)
      })
      // Its stdin ends: the scripted client exits 0 once every line it said was accepted.
      yield* Effect.promise(async () => {
        cli.proc.stdin.end()
        assert.strictEqual(await cli.exited(), 0, cli.output())
      })
    }), 60_000)
})
