import { afterEach, assert, beforeAll, describe, it } from "@effect/vitest"
import * as Classic from "@tether/protocol/Classic"
import * as Frame from "@tether/protocol/Frame"
import * as ClassicPeer from "./fixtures/ClassicPeer.js"
import * as P from "./fixtures/Processes.js"

beforeAll(P.assertBuilt)
afterEach(P.killAll)

/** Splits length-prefixed frames out of everything received. */
const frames = (bytes: Buffer): Array<string> => {
  const out: Array<string> = []
  const decoded = Frame.lengthPrefixed().decoder().push(bytes)
  if (decoded instanceof Frame.FrameError) throw decoded
  for (const f of decoded) out.push(Buffer.from(f).toString("utf8"))
  return out
}

const classicPackets = (bytes: Buffer): Array<Classic.Packet> => {
  const decoded = Frame.classic().decoder().push(bytes)
  if (decoded instanceof Frame.FrameError) throw decoded
  return decoded.map((f) => {
    const p = Classic.decodePacket(f)
    if (p instanceof Error) throw p
    return p
  })
}

describe("tether-server chat mode with tether-client", () => {
  it("two scripted clients chat through the server; SIGTERM drains and exits 0", async () => {
    const { port, server } = await P.startServer(["--log-format", "json"])
    // carol stays connected (stdin open) and prints what others say.
    const carol = P.start(P.clientBin, ["--port", String(port), "--user", "carol"])
    await server.waitFor(/"message":"logged in".*"user":"carol"/)
    const alice = P.start(P.clientBin, ["--port", String(port), "--user", "alice", "--say", "hello carol"])
    assert.strictEqual(await alice.exited(), 0, alice.output())
    await carol.waitFor(/<alice> hello carol/)
    // Lines piped on stdin are said one by one, the terminal's commands work (//: a line that
    // begins with /), /quit ends the script; the client exits after the last line is accepted.
    const bob = P.start(P.clientBin, ["--port", String(port), "--user", "bob"])
    bob.proc.stdin.end("one\n//two\n/join #dev\nthree\n/who\n/quit\nnot said\n")
    assert.strictEqual(await bob.exited(), 0, bob.output())
    await carol.waitFor(/<bob> one[\s\S]*<bob> \/two/)
    assert.match(bob.output(), /joined #dev \(now the current room\)[\s\S]*\] <bob> three[\s\S]*here in #dev: bob/)
    assert.notMatch(bob.output(), /not said/)
    assert.notMatch(carol.output(), /<carol>|three/)

    server.proc.kill("SIGTERM")
    assert.strictEqual(await server.exited(), 0)
    assert.match(server.output(), /"message":"stopped: \d+ sessions closed, \d+ messages delivered/)
    await carol.waitFor(/server closing the session: shutting down/)
    carol.proc.stdin.end()
    await carol.exited()
  })

  it("exit codes say what failed: login refused 3, could not connect 4, bad flags 2", async () => {
    const { port, server } = await P.startServer(["--log-format", "json"])
    P.start(P.clientBin, ["--port", String(port), "--user", "dup"])
    await server.waitFor(/"message":"logged in".*"user":"dup"/)
    const inUse = P.start(P.clientBin, ["--port", String(port), "--user", "dup", "--say", "hi"])
    assert.strictEqual(await inUse.exited(), 3, inUse.output())
    assert.match(inUse.output(), /login refused: user already connected/)
    const empty = P.start(P.clientBin, ["--port", String(port), "--user", "x", "--password", "", "--say", "hi"])
    assert.strictEqual(await empty.exited(), 3, empty.output())
    assert.match(empty.output(), /login refused/)
    const nobody = P.start(P.clientBin, ["--port", "1", "--user", "x", "--say", "hi"])
    assert.strictEqual(await nobody.exited(), 4)
    assert.match(nobody.output(), /could not connect/)
    const bad = P.start(P.serverBin, ["--heartbeat-timeout", "soon"])
    assert.strictEqual(await bad.exited(), 2)
    assert.match(bad.output(), /not a duration/)
  })

  it("max connections: the extra connection gets a refusal, the admitted ones carry on", async () => {
    const { port, server } = await P.startServer(["--max-connections", "1", "--log-format", "json"])
    const first = P.start(P.clientBin, ["--port", String(port), "--user", "first"])
    await server.waitFor(/"message":"logged in".*"user":"first"/)
    const extra = await P.rawClient(port)
    await extra.closed
    assert.match(frames(extra.received()).join("\n"), /"_tag":"Failure".*TooManyConnections/)
    first.proc.stdin.end("still here\n")
    assert.strictEqual(await first.exited(), 0, first.output())
  })
})

describe("tether-client across a server restart", () => {
  it("two scripted clients: they reconnect by themselves, say the history was lost, and a line typed meanwhile is sent once after the reconnect", async () => {
    const { port, server } = await P.startServer(["--log-format", "json"])
    const address = `127.0.0.1:${port}`
    const carol = P.start(P.clientBin, ["--server", address, "--user", "carol"])
    // bob's first server is down: he fails over to the second.
    const bob = P.start(P.clientBin, ["--server", "127.0.0.1:1", "--server", address, "--user", "bob"])
    await server.waitFor(/"message":"logged in".*"user":"carol"/)
    await server.waitFor(/"message":"logged in".*"user":"bob"/, 8000)
    bob.proc.stdin.write("before\n")
    await carol.waitFor(/<bob> before/)
    server.proc.kill("SIGTERM")
    assert.strictEqual(await server.exited(), 0)
    await bob.waitFor(/reconnecting/)
    bob.proc.stdin.write("while away\n")
    const again = P.start(P.serverBin, ["--port", String(port), "--log-format", "json"])
    await again.waitFor(/listening on/)
    for (const client of [carol, bob]) {
      await client.waitFor(/\* missed messages in #lobby could not be recovered \(the server lost its history/, 20000)
    }
    await bob.waitFor(/\* 1 queued line sent/, 5000)
    // The queued line went out once bob was back (in the new history); carol sees it too if she
    // was back first (the new history before her return is not replayed: she was told so).
    assert.strictEqual(bob.output().match(/<bob> while away/g)?.length, 1, "said once")
    bob.proc.stdin.write("after\n")
    await carol.waitFor(/<bob> after/, 10000)
    bob.proc.stdin.end()
    assert.strictEqual(await bob.exited(), 0, bob.output())
    carol.proc.stdin.end()
    assert.strictEqual(await carol.exited(), 0, carol.output())
    assert.isAtMost(carol.output().match(/<bob> while away/g)?.length ?? 0, 1, "never shown twice")
    assert.strictEqual(carol.output().match(/<bob> before/g)?.length, 1)
    assert.match(carol.output(), /\* server closing the session: shutting down/)
    assert.match(bob.output(), /reconnecting to 127\.0\.0\.1:1 in/, "bob says which server he tries")
  }, 45_000)
})

describe("tether-server classic mode", () => {
  it("the classic client logs in and gets ServerDemos; a mute client is kicked by the heartbeat", async () => {
    const { port } = await P.startServer(["--mode", "classic", "--heartbeat-interval", "200ms", "--heartbeat-timeout", "600ms"])
    const client = P.start(P.clientBin, ["--mode", "classic", "--port", String(port), "--count", "1"])
    assert.strictEqual(await client.exited(15_000), 0, client.output())
    assert.match(client.output(), new RegExp(`ServerDemo addr=127\\.0\\.0\\.1 port=${port} remark="server response: ok"`))

    // A peer that logs in and then never answers a HeartBeat.
    const mute = await P.rawClient(port)
    mute.socket.write(Classic.encodePacket(Classic.packet(Date.now(), { _tag: "Login", username: "mayee", password: "mayee" })) as Uint8Array)
    const lifetime = await mute.closed
    const packets = classicPackets(mute.received())
    assert.deepStrictEqual(packets[0]?.messages, [{ _tag: "LoginResponse", status: 0 }])
    assert.isTrue(packets.slice(1).every((p) => p.messages[0]._tag === "HeartBeat"))
    assert.isAtLeast(lifetime, 550, "not kicked before the timeout")
    assert.isBelow(lifetime, 3000)
  })

  it("two tether-clients and fifty Go-style peers log in as mayee / mayee at once, each its own session", async () => {
    const { port, server } = await P.startServer(["--mode", "classic", "--heartbeat-interval", "200ms", "--heartbeat-timeout", "1s", "--log-format", "json"])
    const clients = [0, 1].map(() => P.start(P.clientBin, ["--mode", "classic", "--port", String(port), "--count", "1"]))
    const peers = await Promise.all(Array.from({ length: 50 }, () => ClassicPeer.connect(port)))
    await ClassicPeer.eventually(() => peers.every((p) => p.statuses().length > 0), 10000, "every LoginResponse")
    assert.deepStrictEqual(peers.map((p) => p.statuses()), peers.map(() => [0]))
    for (const peer of peers) peer.send({ _tag: "ClientDemo" })
    await ClassicPeer.eventually(() => peers.every((p) => p.serverDemos() === 1), 10000, "a ServerDemo for each peer")
    for (const client of clients) {
      assert.strictEqual(await client.exited(8000), 0, client.output())
      assert.match(client.output(), /logged in as mayee/)
    }
    // The log tells the sessions apart: distinct session ids and remote addresses for one user.
    await server.waitFor(/logged in/)
    const logins = server.output().split("\n").filter((line) => line.includes("\"logged in\""))
      .map((line) => JSON.parse(line).annotations as { session: number; remote: string; user: string })
    // (The log rate-limits repeats of one message: 20 per 10 s, then a count of the rest.)
    assert.isAtLeast(logins.length, 20)
    assert.isTrue(logins.every((l) => l.user === "mayee"))
    const ids = new Set(logins.map((l) => l.session))
    const remotes = new Set(logins.map((l) => l.remote))
    assert.strictEqual(ids.size, logins.length)
    assert.strictEqual(remotes.size, logins.length)
    for (const peer of peers) peer.socket.destroy()
  })

  it("a wrong password gets status 5 and a close; the client exits non-zero", async () => {
    const { port } = await P.startServer(["--mode", "classic"])
    const client = P.start(P.clientBin, ["--mode", "classic", "--port", String(port), "--password", "wrong"])
    assert.strictEqual(await client.exited(), 3)
    assert.match(client.output(), /login refused \(status 5\)/)
    const raw = await P.rawClient(port)
    raw.socket.write(Classic.encodePacket(Classic.packet(0, { _tag: "ClientDemo" })) as Uint8Array)
    await raw.closed
    assert.deepStrictEqual(classicPackets(raw.received())[0]?.messages, [{ _tag: "LoginResponse", status: 5 }])
  })

  it("a malformed packet closes the connection with a log line", async () => {
    const { port, server } = await P.startServer(["--mode", "classic"])
    const raw = await P.rawClient(port)
    raw.socket.write(Buffer.from([4, 0, 1, 0]))
    await raw.closed
    await server.waitFor(/connection closed: .*(malformed|Malformed)/)
  })
})

describe("tether-server echo mode", () => {
  it("echoes frames, pings with PING, does not echo PONG, and closes a silent peer", async () => {
    const { port } = await P.startServer(["--mode", "echo", "--heartbeat-interval", "100ms", "--heartbeat-timeout", "400ms"])
    const peer = await P.rawClient(port)
    peer.socket.write(P.lengthFrame("hello"))
    await P.eventually(() => frames(peer.received()).includes("hello"), 2000, "the echo")
    await P.eventually(() => frames(peer.received()).includes("PING"), 2000, "a PING")
    peer.socket.write(Buffer.concat([P.lengthFrame("PONG"), P.lengthFrame("after pong")]))
    await P.eventually(() => frames(peer.received()).includes("after pong"), 2000, "the second echo")
    assert.notInclude(frames(peer.received()), "PONG")
    // Then silence: closed after the timeout.
    const lifetime = await peer.closed
    assert.isBelow(lifetime, 3000)
  })

  it("without heartbeat flags there are no pings; a declared length over 1 MiB closes the connection", async () => {
    const { port } = await P.startServer(["--mode", "echo"])
    const peer = await P.rawClient(port)
    peer.socket.write(P.lengthFrame(Buffer.alloc(1024 * 1024, 7)))
    await P.eventually(() => peer.received().length === 4 + 1024 * 1024, 3000, "the 1 MiB echo")
    const header = Buffer.alloc(4)
    header.writeUInt32BE(1024 * 1024 + 1)
    peer.socket.write(header)
    await peer.closed
    assert.notInclude(frames(peer.received()).map((f) => f.slice(0, 4)), "PING")
  })

  it("--framing lines echoes lines and uses PING/PONG lines", async () => {
    const { port } = await P.startServer(["--mode", "echo", "--framing", "lines", "--heartbeat-interval", "100ms"])
    const peer = await P.rawClient(port)
    peer.socket.write("hello\r\nPONG\nworld\n")
    await P.eventually(() => peer.received().toString().includes("world\n"), 2000, "the echoes")
    const lines = peer.received().toString().split("\n")
    assert.include(lines, "hello")
    assert.notInclude(lines, "PONG")
    await P.eventually(() => peer.received().toString().includes("PING\n"), 2000, "a PING line")
  })
})
