/**
 * One room's bounded, numbered history in memory: the machinery of
 * `History.layerMemory`. Synchronous and clock-free (the caller passes the
 * time), so every rule is testable on its own.
 *
 * Rules:
 * - offsets are 1, 2, 3, ... within the log's epoch, without gaps;
 * - entries leave only from the head (oldest first), when the log holds more
 *   than `maxEntries`, more than `maxBytes` of payload (UTF-16 units), or an
 *   entry is older than `maxAgeMs` (`now - at > maxAgeMs`); every operation
 *   trims first, so what the log holds always satisfies the limits at the
 *   time of its last operation;
 * - `recover(from)` is all entries after `from`, or Unrecoverable: never a
 *   partial list.
 *
 * @internal
 */
import type * as History from "../History.js"

/** @internal */
export class RoomLog {
  private entries: Array<History.Entry> = []
  private head = 0
  private bytes = 0
  private last = 0

  constructor(readonly epoch: string, private readonly limits: History.Limits) {}

  /** The log's position: its epoch and last offset (0 before the first entry). */
  position(): History.Position {
    return { epoch: this.epoch, offset: this.last }
  }

  /** How many entries are held. */
  size(): number {
    return this.entries.length - this.head
  }

  /** Entries held now (oldest first). For tests and metrics. */
  held(): ReadonlyArray<History.Entry> {
    return this.entries.slice(this.head)
  }

  /**
   * Appends the entry `render` builds for the next offset. `render` is called
   * exactly once, before anything changes: if it throws, the log is as before.
   */
  append(now: number, render: (position: History.Position, at: number) => string): History.Entry {
    const offset = this.last + 1
    const payload = render({ epoch: this.epoch, offset }, now)
    const entry: History.Entry = { offset, at: now, payload }
    this.entries.push(entry)
    this.bytes += payload.length
    this.last = offset
    this.trim(now)
    return entry
  }

  /** Drops the head entries that break a limit at `now`. */
  trim(now: number): void {
    const { maxAgeMs, maxBytes, maxEntries } = this.limits
    const entries = this.entries
    let head = this.head
    while (head < entries.length) {
      const oldest = entries[head]!
      if (entries.length - head > maxEntries || this.bytes > maxBytes || now - oldest.at > maxAgeMs) {
        this.bytes -= oldest.payload.length
        head++
      } else {
        break
      }
    }
    // Compact once the dead head is both large and most of the array.
    if (head > 1024 && head * 2 > entries.length) {
      this.entries = entries.slice(head)
      head = 0
    }
    this.head = head
  }

  /** Every entry after `from`, complete, or why not. */
  recover(from: History.Position, now: number): History.Recovery {
    this.trim(now)
    const position = this.position()
    // A position this history never had (another epoch, or beyond its last
    // offset) refers to a history that is not this one.
    if (
      from.epoch !== this.epoch || !Number.isSafeInteger(from.offset) || from.offset < 0 || from.offset > this.last
    ) return { _tag: "Unrecoverable", reason: "EpochChanged", position }
    if (from.offset === this.last) return { _tag: "Recovered", entries: [], position }
    const first = this.head < this.entries.length ? this.entries[this.head]!.offset : this.last + 1
    if (from.offset + 1 < first) return { _tag: "Unrecoverable", reason: "TooOld", position }
    const start = this.head + (from.offset + 1 - first)
    return { _tag: "Recovered", entries: this.entries.slice(start), position }
  }
}
