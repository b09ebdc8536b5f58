/**
 * Decode throughput of Tether's framings and codecs, beside plain baselines in
 * the same run: a hand-written `readUInt32BE` + `subarray` splitter for
 * framing, and `JSON.parse` of the same payloads for the JSON codec.
 *
 * Run: npm run bench:protocol. Bounded: each case runs ~0.4 s, 3 times.
 */
import * as Classic from "@tether/protocol/Classic"
import * as Codec from "@tether/protocol/Codec"
import * as Frame from "@tether/protocol/Frame"
import * as Message from "@tether/protocol/Message"
import * as os from "node:os"

const RUN_MS = 400
const RUNS = 3
const CHUNK = 64 * 1024

interface Result {
  readonly mbps: number
  readonly framesPerSec: number
}

/** Runs `pass` (which decodes the whole stream once and returns frames seen) for RUN_MS. */
const measure = (bytesPerPass: number, pass: () => number): Result => {
  for (let i = 0; i < 3; i++) pass() // warm up
  const results: Array<Result> = []
  for (let run = 0; run < RUNS; run++) {
    let bytes = 0
    let frames = 0
    const start = process.hrtime.bigint()
    let elapsed = 0
    while (elapsed < RUN_MS) {
      frames += pass()
      bytes += bytesPerPass
      elapsed = Number(process.hrtime.bigint() - start) / 1e6
    }
    results.push({ mbps: bytes / 1e6 / (elapsed / 1000), framesPerSec: frames / (elapsed / 1000) })
  }
  results.sort((a, b) => a.mbps - b.mbps)
  return results[Math.floor(RUNS / 2)]!
}

const chunks = (stream: Uint8Array): Array<Buffer> => {
  const out: Array<Buffer> = []
  for (let at = 0; at < stream.length; at += CHUNK) out.push(Buffer.from(stream.subarray(at, at + CHUNK)))
  return out
}

/** The baseline splitter: what a careful hand-written node:net server does. */
const baselineSplit = (
  input: ReadonlyArray<Buffer>,
  onFrame: (frame: Buffer) => void,
  headerBytes = 4,
  readLength: (buf: Buffer, at: number) => number = (b, at) => b.readUInt32BE(at),
  // Bytes of the header that count in the length (classic: PktSize includes its header).
  headerInLength = headerBytes
): void => {
  let pending: Buffer | undefined
  for (const chunk of input) {
    const buf = pending ? Buffer.concat([pending, chunk]) : chunk
    let at = 0
    while (buf.length - at >= headerBytes) {
      const total = readLength(buf, at) + headerInLength
      if (buf.length - at < total) break
      onFrame(buf.subarray(at + headerBytes, at + total))
      at += total
    }
    pending = at < buf.length ? buf.subarray(at) : undefined
  }
}

const framed = (framing: Frame.Framing, payloads: ReadonlyArray<Uint8Array>, streamBytes: number) => {
  const one = framing.encodeAll(payloads)
  if (one instanceof Frame.FrameError) throw one
  const copies = Math.max(1, Math.ceil(streamBytes / one.length))
  const stream = new Uint8Array(one.length * copies)
  for (let i = 0; i < copies; i++) stream.set(one, i * one.length)
  return { stream, input: chunks(stream), frames: payloads.length * copies }
}

const decodeAll = <A>(framing: Frame.Framing, input: ReadonlyArray<Uint8Array>, onFrame?: (f: Uint8Array) => A) => () => {
  const decoder = framing.decoder()
  let n = 0
  for (const chunk of input) {
    const frames = decoder.push(chunk)
    if (frames instanceof Frame.FrameError) throw frames
    if (onFrame) for (const f of frames) onFrame(f)
    n += frames.length
  }
  return n
}

const rows: Array<Array<string>> = []
const row = (name: string, size: string, result: Result, baseline?: Result) =>
  rows.push([
    name,
    size,
    result.mbps.toFixed(0),
    result.framesPerSec >= 1e6 ? `${(result.framesPerSec / 1e6).toFixed(2)} M` : `${(result.framesPerSec / 1e3).toFixed(1)} k`,
    baseline ? (result.mbps / baseline.mbps).toFixed(2) : "1.00 (baseline)"
  ])

const STREAM = 8 * 1024 * 1024
const json = Codec.json(Message.Message)
const msgpack = Codec.msgpack(Message.Message)
const fail = (e: unknown): never => {
  throw e
}

for (const [label, size] of [["64 B", 64], ["16 KiB", 16 * 1024]] as const) {
  // Payloads: Requests whose encoded JSON is about `size` bytes.
  const filler = "x".repeat(Math.max(1, size - 32))
  const requests = Array.from({ length: 64 }, (_, i) => Message.Request.make({ id: i, body: filler }))
  const jsonPayloads = requests.map((r) => {
    const p = json.encode(r)
    return p instanceof Uint8Array ? p : fail(p)
  })
  const packPayloads = requests.map((r) => {
    const p = msgpack.encode(r)
    return p instanceof Uint8Array ? p : fail(p)
  })
  const lp = Frame.lengthPrefixed()

  // Framing only.
  const raw = framed(lp, jsonPayloads, STREAM)
  const baseline = measure(raw.stream.length, () => {
    let n = 0
    baselineSplit(raw.input, () => n++)
    return n
  })
  row("baseline: readUInt32BE + subarray", label, baseline)
  row("Frame.lengthPrefixed", label, measure(raw.stream.length, decodeAll(lp, raw.input)), baseline)
  const lines = framed(Frame.lines(), jsonPayloads, STREAM)
  row("Frame.lines", label, measure(lines.stream.length, decodeAll(Frame.lines(), lines.input)), baseline)

  // Framing + codec.
  const jsonBaseline = measure(raw.stream.length, () => {
    let n = 0
    baselineSplit(raw.input, (f) => {
      JSON.parse(f.toString("utf8"))
      n++
    })
    return n
  })
  row("baseline: split + JSON.parse (no validation)", label, jsonBaseline)
  row("lengthPrefixed + Codec.json (Schema)", label, measure(raw.stream.length, decodeAll(lp, raw.input, json.decode)), jsonBaseline)
  row("lines + Codec.json (Schema)", label, measure(lines.stream.length, decodeAll(Frame.lines(), lines.input, json.decode)), jsonBaseline)
  const packed = framed(lp, packPayloads, STREAM)
  row("lengthPrefixed + Codec.msgpack (Schema)", label, measure(packed.stream.length, decodeAll(lp, packed.input, msgpack.decode)), jsonBaseline)
}

// Classic: packets of 4-byte HeartBeats / ClientDemos and 36-byte Logins.
{
  const small = Classic.encodePacket(Classic.packet(0, { _tag: "HeartBeat" }))
  const messages = Array.from({ length: 255 }, (_, i): Classic.Message =>
    i % 3 === 0 ? { _tag: "Login", username: "mayee", password: "mayee" } : { _tag: "ClientDemo" })
  const big = Classic.encodePacket({ seq: 0, sendTime: 0, messages: messages as [Classic.Message, ...Array<Classic.Message>] })
  for (const [label, packet] of [["20 B (1 HeartBeat)", small], [`${(big as Uint8Array).length} B (255 msgs)`, big]] as const) {
    if (!(packet instanceof Uint8Array)) throw packet
    const classic = Frame.classic()
    const stream = framed(classic, [packet], STREAM)
    const base = measure(stream.stream.length, () => {
      let n = 0
      baselineSplit(stream.input, () => n++, 2, (b, at) => b.readUInt16LE(at), 0)
      return n
    })
    row("baseline: readUInt16LE + subarray", label, base)
    row("Frame.classic", label, measure(stream.stream.length, decodeAll(classic, stream.input)), base)
    row("Frame.classic + Classic.codec", label, measure(stream.stream.length, decodeAll(classic, stream.input, Classic.codec.decode)), base)
  }
}

const header = ["case", "frame size", "MB/s", "frames/s", "ratio to baseline"]
console.log(`# Protocol decode throughput\n`)
console.log(`${new Date().toISOString()} · node ${process.version} · ${os.cpus()[0]?.model ?? "cpu"} · median of ${RUNS} x ${RUN_MS} ms, ${CHUNK / 1024} KiB chunks\n`)
console.log(`| ${header.join(" | ")} |`)
console.log(`|${header.map(() => "---").join("|")}|`)
for (const r of rows) console.log(`| ${r.join(" | ")} |`)
