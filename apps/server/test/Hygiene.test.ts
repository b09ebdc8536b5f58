import { afterEach, assert, beforeAll, describe, it } from "@effect/vitest"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import type * as net from "node:net"
import * as P from "./fixtures/Processes.js"

beforeAll(P.assertBuilt)
afterEach(P.killAll)

/** Sends `bytes` on a fresh raw connection and waits until the server closes it. */
const sendAndWaitClose = async (port: number, bytes: Buffer) => {
  const peer = await P.rawClient(port)
  peer.socket.write(bytes)
  await Promise.race([peer.closed, new Promise((_, reject) => setTimeout(() => reject(new Error("not closed")), 15_000))])
}

describe("log hygiene", () => {
  it("a 1 MiB bad Login yields a log of bounded size; a forged log line cannot start at column 0", async () => {
    // (By default a peer is cut off after 64 KiB before login; let these frames reach the decoder.)
    const { port, server } = await P.startServer(["--max-login-bytes", String(4 * 1024 * 1024)])
    const before = Buffer.byteLength(server.output())
    const forged = "\n[12:00:00.000] ERROR (#1): FORGED as if the server said it\r"
    // 1. A Login whose user name is 1 MiB and starts with a fake log line (InvalidMessage).
    await sendAndWaitClose(port, P.lengthFrame(JSON.stringify({ _tag: "Login", user: forged + "a".repeat(1024 * 1024 - 256), password: "pw" })))
    // 2. A frame that is not JSON, new lines included (InvalidJson quotes the text).
    await sendAndWaitClose(port, P.lengthFrame(`x${forged}${"b".repeat(1024 * 1024 - 256)}`))
    // 3. An unknown tag carrying the fake line.
    await sendAndWaitClose(port, P.lengthFrame(JSON.stringify({ _tag: forged, x: "c".repeat(1024 * 1024 - 256) })))
    await P.eventually(() => (server.output().match(/connection closed/g) ?? []).length >= 3, 15_000, "three closes logged")
    const logged = server.output()
    const bytes = Buffer.byteLength(logged) - before
    // Before: each bad frame was logged whole, twice (~2.1 MB per MiB sent).
    assert.isBelow(bytes, 8 * 1024, logged.slice(0, 4000))
    for (const line of logged.split(/\r?\n|\r/)) assert.notMatch(line, /^\[12:00:00\.000\] ERROR|^FORGED/, line)
    assert.notMatch(logged, /[\u001b\u0085\u2028]/)
    assert.match(logged, /"Login" at \[user\]/, logged)
  }, 90_000)

  it("--log-level none still prints the listening line, and nothing else", async () => {
    const { port, server } = await P.startServer(["--log-level", "none"])
    const alice = P.start(P.clientBin, ["--port", String(port), "--user", "alice", "--say", "hi"])
    assert.strictEqual(await alice.exited(15_000), 0, alice.output())
    assert.match(server.output(), /^\[[\d:.]+\] INFO \(#\d+\): listening on 127\.0\.0\.1:\d+\n  mode: chat\n  tls: off\n$/)
  }, 60_000)
})

describe("process hygiene", () => {
  it("a closed stdout (EPIPE) does not take the server down: it serves, then drains on SIGTERM and exits 0", async () => {
    const { port, server } = await P.startServer(["--log-level", "debug"])
    // The log reader goes away: every line from now on meets a broken pipe.
    server.proc.stdout.destroy()
    for (const user of ["alice", "bob"]) {
      const client = P.start(P.clientBin, ["--port", String(port), "--user", user, "--say", `hello from ${user}`])
      assert.strictEqual(await client.exited(15_000), 0, client.output())
    }
    const carol = P.start(P.clientBin, ["--port", String(port), "--user", "carol"])
    await P.eventually(() => server.proc.exitCode === null, 1000)
    // No log to tell when carol is in: dave says it until she hears it.
    for (let attempt = 0; attempt < 5 && !/<dave> still there\?/.test(carol.output()); attempt++) {
      const dave = P.start(P.clientBin, ["--port", String(port), "--user", "dave", "--say", "still there?"])
      assert.strictEqual(await dave.exited(15_000), 0, dave.output())
      await new Promise((r) => setTimeout(r, 500))
    }
    await carol.waitFor(/<dave> still there\?/, 5_000)
    server.proc.kill("SIGTERM")
    assert.strictEqual(await server.exited(15_000), 0, server.output())
    await carol.waitFor(/server closing the session: shutting down/, 15_000)
    assert.notMatch(server.output(), /EPIPE|Unhandled/)
  }, 90_000)

  it("out of file descriptors: it is logged and the open sessions carry on", async () => {
    const { port, server } = await P.startServer(["--log-format", "json"])
    const carol = P.start(P.clientBin, ["--port", String(port), "--user", "carol"])
    await server.waitFor(/"message":"logged in".*"user":"carol"/, 15_000)
    const pid = server.proc.pid!
    const open = fs.readdirSync(`/proc/${pid}/fd`).length
    // Room for two more descriptors: then every accept fails with EMFILE.
    const soft = /^Max open files\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/limits`, "utf8"))![1]!
    execFileSync("prlimit", [`--pid=${pid}`, `--nofile=${open + 2}:`])
    const flood: Array<net.Socket> = []
    for (let i = 0; i < 60; i++) flood.push((await P.rawClient(port)).socket)
    // Node (libuv) closes what it cannot accept without a word: the descriptor watch says it.
    await server.waitFor(/"message":"file descriptors (exhausted|nearly exhausted)/, 15_000)
    assert.strictEqual(server.proc.exitCode, null)
    for (const socket of flood) socket.destroy()
    execFileSync("prlimit", [`--pid=${pid}`, `--nofile=${soft}:`])
    // The session opened before carries on; new ones are accepted again.
    const alice = P.start(P.clientBin, ["--port", String(port), "--user", "alice", "--say", "after the storm"])
    assert.strictEqual(await alice.exited(15_000), 0, alice.output())
    await carol.waitFor(/<alice> after the storm/, 15_000)
    server.proc.kill("SIGTERM")
    assert.strictEqual(await server.exited(15_000), 0)
  }, 90_000)
})
