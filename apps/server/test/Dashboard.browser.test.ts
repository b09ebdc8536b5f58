/**
 * The live dashboard in a real browser: Debian's Chromium, headless, driven
 * by playwright-core, against the chat server and its HTTP side in-process.
 * While two peers chat, the plots (and the busiest rooms' plot and table)
 * must show the traffic; a screenshot is
 * kept in test-artifacts/dashboard.png (gitignored).
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Browser from "./fixtures/Browser.js"
import { peer, startChat } from "./fixtures/ChatHttp.js"

const artifacts = Browser.artifacts()
const launch = Browser.launch({ width: 1280, height: 900 })

/** Points of a plotted line, as [x, y] in the SVG's viewBox (y grows downwards; the x axis is at y = 142). */
const points = (attribute: string | null) =>
  (attribute ?? "").split(" ").filter((p) => p.length > 0).map((p) => p.split(",").map(Number) as [number, number])

describe("/dashboard in Chromium", () => {
  it.scopedLive("plots connections and messages per second in and out while peers chat; network text stays text", () =>
    Effect.gen(function*() {
      const { port, url } = yield* startChat({ sampler: { interval: "250 millis", capacity: 240 } })
      const { context } = yield* launch
      yield* Effect.promise(async () => {
        const alice = await peer(port)
        const bob = await peer(port)
        alice.send({ _tag: "Login", user: "alice", password: "pw" })
        bob.send({ _tag: "Login", user: "bob", password: "pw" })
        await bob.waitFor("logged in", (ms) => ms.some((m) => m._tag === "LoginResult"))

        const page = await context.newPage()
        const errors: Array<string> = []
        page.on("pageerror", (error) => errors.push(String(error)))
        await page.goto(`${url}/dashboard`)
        // While the lines flow, the busiest room's row and its line in the room plot show them.
        const roomMoved = (async () => {
          for (const end = Date.now() + 10_000; Date.now() < end;) {
            const [listed, rate, plotted] = await page.evaluate(() => {
              const d = (globalThis as unknown as {
                document: {
                  querySelectorAll: (s: string) => ArrayLike<{ textContent: string | null }>
                  querySelector: (s: string) => { textContent: string | null; getAttribute: (a: string) => string | null } | null
                }
              }).document
              return [
                Array.from(d.querySelectorAll("#rooms td")).some((td) => td.textContent === "#lobby"),
                Number(d.querySelector("#rooms tr:nth-child(2) td:nth-child(2)")?.textContent ?? 0),
                Number(d.querySelector("[data-plot=roomActivity] polyline")?.getAttribute("data-points") ?? 0)
              ] as const
            })
            if (listed && rate > 0 && plotted > 0) return
            await new Promise((r) => setTimeout(r, 100))
          }
          throw new Error("the busiest room's row and plot did not show the lines")
        })()
        // Bounded chat: 60 lines, one every 50 ms (~3 s), while the page polls.
        for (let id = 1; id <= 60; id++) {
          alice.send({ _tag: "Say", id, text: `line ${id}` })
          await new Promise((r) => setTimeout(r, 50))
        }
        await roomMoved
        await bob.waitFor("60 lines", (ms) => ms.filter((m) => m._tag === "Said").length === 60)
        await page.waitForFunction("Number(document.body.dataset.samples ?? 0) >= 12", undefined, { timeout: 10_000 })

        // Read in one go: the page redraws every second, so separate reads could see two samples.
        const [inAttr, outAttr, connectionsAttr] = await page.evaluate(() =>
          [
            "[data-plot=messages] polyline[data-series=framesIn]",
            "[data-plot=messages] polyline[data-series=framesOut]",
            "[data-plot=connections] polyline[data-series=connections]"
          ].map((selector) =>
            (globalThis as unknown as { document: { querySelector: (s: string) => { getAttribute: (a: string) => string | null } | null } })
              .document.querySelector(selector)?.getAttribute("points") ?? null
          )
        )
        const framesIn = points(inAttr ?? null)
        const framesOut = points(outAttr ?? null)
        const connections = points(connectionsAttr ?? null)
        assert.isAtLeast(framesIn.length, 12)
        assert.strictEqual(framesOut.length, framesIn.length)
        // Traffic shows as points above the x axis, on both lines.
        assert.isTrue(framesIn.some(([, y]) => y < 142), JSON.stringify(framesIn))
        assert.isTrue(framesOut.some(([, y]) => y < 142), JSON.stringify(framesOut))
        assert.isTrue(connections.some(([, y]) => y < 142), JSON.stringify(connections))
        assert.strictEqual(await page.textContent("[data-plot=connections] .now"), "2")
        assert.match((await page.textContent("#status")) ?? "", /^live · \d+ samples/)
        // The room plot: the lobby's line, with points above the x axis (its lines per second), named in the legend.
        const lobby = points(await page.getAttribute("[data-plot=roomActivity] polyline[data-series='room:#lobby']", "points"))
        assert.isTrue(lobby.some(([, y]) => y < 142), JSON.stringify(lobby))
        assert.strictEqual(await page.textContent("[data-plot=roomActivity] .legend"), "#lobby")
        assert.deepStrictEqual(
          await page.locator("#rooms th").allTextContents(),
          ["room", "lines/s", "members here"]
        )
        assert.strictEqual(await page.textContent("#rooms td:nth-child(3)"), "2")
        for (const plot of ["connections", "messages", "closed", "refusals", "bytes", "roomActivity"]) {
          assert.strictEqual(await page.locator(`[data-plot=${plot}] svg polyline`).count() > 0, true, plot)
        }
        assert.deepStrictEqual(errors, [])

        fs.mkdirSync(artifacts, { recursive: true })
        await page.screenshot({ path: path.join(artifacts, "dashboard.png"), fullPage: true })
        assert.isAbove(fs.statSync(path.join(artifacts, "dashboard.png")).size, 10_000)
        alice.socket.destroy()
        bob.socket.destroy()

        // Rows from the network (rooms, nodes) are text, never HTML: a hostile room name shows as typed.
        const hostile = "<img src=x onerror=\"document.title='owned'\">\u0007bell"
        const crafted = await context.newPage()
        await crafted.route("**/dashboard/samples.json", (route) =>
          route.fulfill({
            contentType: "application/json",
            body: JSON.stringify({
              intervalMs: 1000,
              capacity: 10,
              at: [1, 2],
              values: { connections: [1, 2] },
              rooms: [{ room: hostile, members: 2, messagesPerSecond: 1 }],
              roomCount: 1,
              roomSeries: { [hostile]: [1, 2] },
              nodes: [{ node: "<b>n1</b>", connections: 2, messagesInPerSecond: 1, messagesOutPerSecond: 2, lastSeenAgoMs: 500 }]
            })
          }))
        await crafted.goto(`${url}/dashboard`)
        await crafted.waitForSelector("#rooms td")
        assert.strictEqual(await crafted.textContent("#rooms td"), hostile)
        assert.strictEqual(await crafted.textContent("#nodes td"), "<b>n1</b>")
        assert.strictEqual(await crafted.textContent("[data-plot=roomActivity] .legend"), hostile.slice(0, 32))
        assert.deepStrictEqual(await crafted.locator("#nodes td").allTextContents(), ["<b>n1</b>", "2", "1", "2", "0.5 s ago"])
        assert.strictEqual(await crafted.locator("img, #nodes b").count(), 0)
        assert.notStrictEqual(await crafted.title(), "owned")
      })
    }), 60_000)
})
