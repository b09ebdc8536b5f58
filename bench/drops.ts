/**
 * The drop test at scale (issue 13, `npm run soak`): chat clients
 * (`ChatClient`) in two rooms, each through its own fault-injecting proxy
 * (`@tether/node/FaultProxy`), against a spawned `tether-server` (chat mode,
 * in-memory history), while the network drops connections every few seconds
 * on a seeded schedule. Afterwards: lines acknowledged, lost (acknowledged
 * but missing from some member's transcript of its room), duplicated (shown
 * twice to someone), whether every transcript equals the server's history
 * (as an unproxied observer sees it: every offset 1..N, checked against the
 * room's position at the end), reconnects, and the time from a drop to the client
 * having resumed both rooms. Goals: lost 0, duplicated 0. The server runs in
 * its own process (its CPU is read from /proc); the clients and proxies
 * share this one.
 *
 * Bounded: `DROPS_SECONDS` of talk (default 60), `DROPS_CLIENTS` clients
 * (default 200), each saying one line every 2 s; then at most 60 s for the
 * outboxes to drain and 30 s for the transcripts to settle. A quarter of the
 * drops are silent (the proxy stops relaying and keeps both sockets open):
 * the client notices by its heartbeat timeout (5 s), the server only by its
 * own, later one (10 s). `DROPS_SEED` picks the schedule (default 13);
 * `DROPS_SERVER_BIN` runs another build's server; `DROPS_SERVER_LOG` appends
 * its log to a file.
 */
import * as FaultProxy from "@tether/node/FaultProxy"
import * as NodeTether from "@tether/node/NodeTether"
import * as Codec from "@tether/protocol/Codec"
import * as Frame from "@tether/protocol/Frame"
import * as Message from "@tether/protocol/Message"
import * as ChatClient from "@tether/runtime/ChatClient"
import * as Client from "@tether/runtime/Client"
import * as Heartbeat from "@tether/runtime/Heartbeat"
import * as TetherProtocol from "@tether/runtime/TetherProtocol"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Stream from "effect/Stream"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { monitorEventLoopDelay } from "node:perf_hooks"
import { fileURLToPath } from "node:url"

const seconds = Number(process.env.DROPS_SECONDS ?? 60)
const clientCount = Number(process.env.DROPS_CLIENTS ?? 200)
const seed = Number(process.env.DROPS_SEED ?? 13)
const lineEveryMs = 2_000
const linesEach = Math.max(1, Math.floor((seconds * 1_000) / lineEveryMs))
const rooms = ["#lobby", "#ops"] as const
const silentShare = 0.25
const dropShare = 0.1

/** mulberry32: a small seeded PRNG, so a run's drops are reproducible. */
const prng = (s: number) => () => {
  s = (s + 0x6d2b79f5) | 0
  let t = Math.imul(s ^ (s >>> 15), 1 | s)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

interface Member {
  readonly name: string
  readonly chat: ChatClient.ChatClient
  readonly proxy: FaultProxy.FaultProxy
  readonly said: Map<string, Array<string>>
  readonly trouble: Array<string>
  acked: number
  reconnects: number
  refused100: number
  readonly reasons: Map<string, number>
  /** When the unresolved drop happened (ms), and the rooms resumed since. */
  cutAt: number | undefined
  resumed: Set<string>
}

const fmt = (n: number) => n.toLocaleString("en-US")
// DROPS_SERVER_BIN: another build's server (e.g. one without takeover, for a before/after).
const serverBin = process.env.DROPS_SERVER_BIN ??
  path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../apps/server/bin/tether-server")
/** CPU seconds (user + system) of process `pid` so far. */
const cpuOf = (pid: number) => {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")
  return (Number(fields[11]) + Number(fields[12])) / 100
}

/** A chat server in its own process: pings every 1 s, timeout 10 s, history large enough for the whole run, no rate limit in the way. */
const serverProcess = Effect.acquireRelease(
  Effect.async<{ readonly pid: number; readonly port: number; readonly kill: () => void }, Error>((resume) => {
    const child = spawn(process.execPath, [
      serverBin, "--mode", "chat", "--port", "0", "--log-level", "info", "--heartbeat", "ping",
      "--heartbeat-interval", "1s", "--heartbeat-timeout", "10s",
      "--history-size", "100000", "--rate-messages", "1000"
    ], { stdio: ["ignore", "pipe", "inherit"] })
    let out = ""
    const timer = setTimeout(() => resume(Effect.fail(new Error(`server did not start: ${out.slice(-500)}`))), 15_000)
    const log = process.env.DROPS_SERVER_LOG
    child.stdout!.on("data", (c: Buffer) => {
      if (log !== undefined) fs.appendFileSync(log, c)
      if (out.length < 8192) out += c.toString()
      const m = /listening on [\d.]+:(\d+)/.exec(out)
      if (m && timer) {
        clearTimeout(timer)
        resume(Effect.succeed({ pid: child.pid!, port: Number(m[1]), kill: () => child.kill("SIGTERM") }))
        out = "listening"
      }
    })
  }),
  (server) => Effect.sync(server.kill)
)

/**
 * The server's history of each room, as an observer that never drops sees
 * it: it joins both rooms before anyone speaks (unproxied) and keeps every
 * `Said` with its offset. `read` asks for each room's position (a `Join` of
 * a room it is in answers with it) and returns the lines once offsets 1..N
 * have all arrived: every entry of the history, in order, each once.
 */
const observe = (port: number) =>
  Effect.gen(function*() {
    const lines = new Map<string, Array<{ readonly offset: number; readonly text: string }>>(rooms.map((r) => [r, []]))
    const positions = new Map<string, number>()
    const client = yield* Client.make<Message.Message>({
      connect: NodeTether.connect({ port, connectTimeout: "2 seconds" }),
      framing: Frame.lengthPrefixed(),
      codec: Codec.json(Message.Message),
      dialect: TetherProtocol.dialect,
      reconnect: false,
      login: TetherProtocol.clientLogin("history-reader", "secret"),
      onMessage: (m) =>
        Effect.sync(() => {
          if (m._tag === "RoomJoined") positions.set(m.room, m.offset)
          if (m._tag === "Said") lines.get(m.room ?? Message.defaultRoom)?.push({ offset: m.offset ?? -1, text: m.text })
        })
    })
    yield* client.awaitConnected
    yield* client.send(Message.Join.make({ room: "#ops" }))
    for (let tries = 0; tries < 200 && !positions.has("#ops"); tries++) yield* Effect.sleep("50 millis")
    const read = Effect.gen(function*() {
      positions.clear()
      for (const room of rooms) yield* client.send(Message.Join.make({ room }))
      for (let tries = 0; tries < 600; tries++) {
        if (rooms.every((r) => positions.has(r) && lines.get(r)!.length >= positions.get(r)!)) break
        yield* Effect.sleep("50 millis")
      }
      const histories = new Map<string, Array<string>>()
      for (const room of rooms) {
        const got = lines.get(room)!
        if (got.length !== positions.get(room) || got.some((l, i) => l.offset !== i + 1)) {
          return yield* Effect.dieMessage(`${room}: the observer saw ${got.length} lines, not offsets 1..${positions.get(room)}`)
        }
        histories.set(room, got.map((l) => l.text))
      }
      return histories
    })
    return { read }
  })

const program = Effect.gen(function*() {
  const server = yield* serverProcess
  const port = server.port
  const random = prng(seed)
  const members: Array<Member> = []
  const resumeTimes: Array<number> = []
  for (let i = 0; i < clientCount; i++) {
    const proxy = yield* FaultProxy.make({ port })
    const chat = yield* ChatClient.make({
      connect: NodeTether.connect({ port: proxy.port, connectTimeout: "5 seconds" }),
      user: `c${i}`,
      password: "secret",
      heartbeat: Heartbeat.answer({ timeout: "5 seconds" }),
      reconnect: { base: "100 millis", max: "2 seconds", attempts: 1_000, resetAfter: "5 seconds" }
    })
    const member: Member = {
      name: `c${i}`,
      chat,
      proxy,
      said: new Map(rooms.map((r) => [r, []])),
      trouble: [],
      acked: 0,
      reconnects: 0,
      refused100: 0,
      reasons: new Map(),
      cutAt: undefined,
      resumed: new Set()
    }
    const resumedOne = (room: string) => {
      member.resumed.add(room)
      if (member.cutAt !== undefined && rooms.every((r) => member.resumed.has(r))) {
        resumeTimes.push(Date.now() - member.cutAt)
        member.cutAt = undefined
      }
    }
    yield* chat.events.pipe(
      Stream.runForEach((event) =>
        Effect.sync(() => {
          switch (event._tag) {
            case "Said":
              member.said.get(event.room)?.push(event.said.text)
              if (event.missed !== undefined) member.trouble.push(`gap of ${event.missed} in ${event.room}`)
              return
            case "Acked":
              member.acked++
              return
            case "Replayed":
              return resumedOne(event.room)
            case "Unrecoverable":
              member.trouble.push(`unrecoverable ${event.room}`)
              return resumedOne(event.room)
            case "SayRefused":
              member.trouble.push(`refused ${event.line.text}: ${event.code}`)
              return
            case "Connection": {
              const state = event.state
              if (state._tag === "Connected" && state.reconnected) member.reconnects++
              if (state._tag === "Reconnecting") {
                if (state.reason.includes("status 100")) member.refused100++
                const reason = state.reason.replace(/\d+/g, "N")
                member.reasons.set(reason, (member.reasons.get(reason) ?? 0) + 1)
              }
              if (state._tag === "GaveUp") member.trouble.push(state.reason)
              return
            }
          }
        })
      ),
      Effect.forkScoped
    )
    members.push(member)
  }
  const t0 = Date.now()
  // Everyone in both rooms before the drops start (a join lost to a drop is asked again).
  for (let tries = 0; tries < 600; tries++) {
    let all = true
    for (const m of members) {
      if ((yield* m.chat.rooms).includes("#ops")) continue
      all = false
      if ((yield* m.chat.state)._tag === "Connected") yield* Effect.ignore(m.chat.join("#ops"))
    }
    if (all) break
    yield* Effect.sleep("50 millis")
  }
  const joinedMs = Date.now() - t0
  if (!(yield* Effect.forEach(members, (m) => m.chat.rooms)).every((r) => r.includes("#ops"))) {
    return yield* Effect.dieMessage("not every client joined #ops within 30 s")
  }

  const observer = yield* observe(port)

  // Drops: every 2 to 4 s, each client's connection with probability 10%; a quarter silent.
  let drops = 0
  let silent = 0
  const dropping = yield* Effect.forkScoped(Effect.gen(function*() {
    for (;;) {
      yield* Effect.sleep(2_000 + Math.floor(random() * 2_000))
      const at = Date.now()
      for (const m of members) {
        if (random() >= dropShare) continue
        const how: FaultProxy.Break = random() < silentShare ? "silent" : "reset"
        if (m.proxy.cut(() => true, how) === 0) continue
        drops++
        if (how === "silent") silent++
        if (m.cutAt === undefined) (m.cutAt = at, m.resumed.clear())
      }
    }
  }))

  // Talk: each client one line every 2 s (staggered), alternating rooms.
  const cpu0 = process.cpuUsage()
  const serverCpu0 = cpuOf(server.pid)
  const lag = monitorEventLoopDelay({ resolution: 20 })
  lag.enable()
  const talkStart = Date.now()
  yield* Effect.forEach(members, (m, i) =>
    Effect.gen(function*() {
      yield* Effect.sleep(Math.floor((i / clientCount) * lineEveryMs))
      for (let k = 0; k < linesEach; k++) {
        yield* m.chat.say(`${m.name}-${k}`, rooms[k % 2]).pipe(Effect.orDie)
        yield* Effect.sleep(lineEveryMs)
      }
    }), { concurrency: "unbounded", discard: true })
  const talkMs = Date.now() - talkStart
  yield* Fiber.interrupt(dropping)
  const drained = yield* Effect.forEach(members, (m) => m.chat.awaitDrained, { concurrency: "unbounded", discard: true }).pipe(
    Effect.timeout("60 seconds"),
    Effect.option
  )
  const cpu = process.cpuUsage(cpu0)
  const serverCpu = cpuOf(server.pid) - serverCpu0
  lag.disable()

  const histories = yield* observer.read
  for (let tries = 0; tries < 600; tries++) {
    if (members.every((m) => rooms.every((r) => m.said.get(r)!.length >= histories.get(r)!.length))) break
    yield* Effect.sleep("50 millis")
  }

  // Lost: acknowledged lines missing from some member's transcript of their room; duplicated: shown twice to someone.
  let acked = 0
  let lost = 0
  let duplicated = 0
  let equal = true
  const seenBy = members.map((m) => new Map(rooms.map((r) => [r, new Set(m.said.get(r))])))
  for (const m of members) acked += m.acked
  for (const [i, m] of members.entries()) {
    for (let k = 0; k < linesEach; k++) {
      const room = rooms[k % 2]!
      const text = `${m.name}-${k}`
      if (!histories.get(room)!.includes(text)) continue
      if (seenBy.some((s) => !s.get(room)!.has(text))) lost++
    }
    for (const room of rooms) {
      const transcript = m.said.get(room)!
      duplicated += transcript.length - seenBy[i]!.get(room)!.size
      const h = histories.get(room)!
      if (transcript.length !== h.length || transcript.some((t, j) => t !== h[j])) equal = false
    }
  }
  const typed = clientCount * linesEach
  const inHistory = histories.get("#lobby")!.length + histories.get("#ops")!.length
  const historyDuplicates = inHistory - new Set([...histories.get("#lobby")!, ...histories.get("#ops")!]).size
  const notInHistory = typed - (inHistory - historyDuplicates)
  const reconnects = members.reduce((n, m) => n + m.reconnects, 0)
  const refused100 = members.reduce((n, m) => n + m.refused100, 0)
  const reasons = new Map<string, number>()
  for (const m of members) for (const [r, n] of m.reasons) reasons.set(r, (reasons.get(r) ?? 0) + n)
  const trouble = members.flatMap((m) => m.trouble.map((t) => `${m.name}: ${t}`))
  const sorted = resumeTimes.slice().sort((a, b) => a - b)
  const pct = (p: number) => sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!
  const unresolved = members.filter((m) => m.cutAt !== undefined).length

  const rows: Array<[string, string]> = [
    ["clients / rooms / lines typed", `${clientCount} / 2 (everyone in both) / ${fmt(typed)} (${linesEach} each, one per 2 s)`],
    ["talk time / drops (silent)", `${(talkMs / 1000).toFixed(1)} s / ${fmt(drops)} (${fmt(silent)})`],
    ["lines acknowledged", fmt(acked)],
    ["lines lost (acked, missing for some member)", fmt(lost)],
    ["lines duplicated (shown twice to someone)", fmt(duplicated)],
    ["typed lines not in history / twice in history", `${fmt(notInHistory)} / ${fmt(historyDuplicates)}`],
    ["every transcript equals the server's history", equal ? "yes" : "no"],
    ["all outboxes drained", drained._tag === "Some" ? "yes" : "no (60 s)"],
    ["reconnects / logins refused 100 (retried)", `${fmt(reconnects)} / ${fmt(refused100)}`],
    ["why connections ended (client's view)", Array.from(reasons).sort((a, b) => b[1] - a[1]).map(([r, n]) => `${r}: ${fmt(n)}`).join("; ")],
    ["time from drop to both rooms resumed: p50 / p99 / max", `${pct(0.5)} / ${pct(0.99)} / ${sorted.at(-1) ?? 0} ms (${sorted.length} resumes, ${unresolved} unresolved)`],
    ["gaps, refusals, unrecoverable, gave up", trouble.length === 0 ? "none" : `${trouble.length}: ${trouble.slice(0, 3).join("; ")}`],
    ["server CPU during talk (its own process)", `${(serverCpu * 1000 / talkMs * 100).toFixed(0)}% of one core`],
    ["bench CPU during talk (proxies + clients)", `${((cpu.user + cpu.system) / 1000 / talkMs * 100).toFixed(0)}% of one core; event loop delay p99 ${(lag.percentile(99) / 1e6).toFixed(0)} ms, max ${(lag.max / 1e6).toFixed(0)} ms`],
    ["time for everyone to join #ops", `${joinedMs} ms`]
  ]
  console.log(`\n## Drops (seed ${seed})\n\n| measure | value |\n|---|---|`)
  for (const [k, v] of rows) console.log(`| ${k} | ${v} |`)
  const pass = lost === 0 && duplicated === 0 && equal && notInHistory === 0 && historyDuplicates === 0
  console.log(`\ngoals (lost 0, duplicated 0, transcripts equal): ${pass ? "met" : "NOT met"}`)
  if (!pass) process.exitCode = 1
})

Effect.runPromise(
  Effect.scoped(program).pipe(Effect.provide(Logger.minimumLogLevel(LogLevel.Error)))
).catch((error) => {
  console.error(error)
  process.exitCode = 1
})
