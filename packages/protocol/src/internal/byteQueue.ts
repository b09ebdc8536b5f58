/**
 * A queue of byte chunks that hands out exact-length slices without ever
 * re-concatenating what it holds: every byte is copied at most once, so
 * decoding a stream costs O(bytes) however it is split.
 *
 * @internal
 */
/** What an unused slot holds (no reference to a chunk read). */
const noChunk = new Uint8Array(0)

export class ByteQueue {
  /**
   * The chunks held: `chunks[head, end)`. Emptied by overwriting, not by
   * `length = 0`: V8 frees an emptied array's storage and the next push
   * allocates 17 slots again (~150 B per chunk read on a connection whose
   * frames each come in a chunk of their own).
   */
  private chunks: Array<Uint8Array> = [noChunk]
  private end = 0
  private head = 0
  private offset = 0
  /** Bytes held and not yet taken. */
  available = 0

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return
    // Held as plain Uint8Array views: `subarray` of a Node Buffer builds a
    // Buffer through its subclass constructor, measurably slower per frame.
    const view = chunk.constructor === Uint8Array ? chunk : new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length)
    if (this.end < this.chunks.length) this.chunks[this.end] = view
    else this.chunks.push(view)
    this.end++
    this.available += chunk.length
  }

  /**
   * The chunk holding the next unread byte (at index {@link position}), for a
   * decoder's fast path over bytes that do not cross a chunk; caller
   * guarantees available > 0.
   */
  current(): Uint8Array {
    return this.chunks[this.head]!
  }

  /** Index of the next unread byte in {@link current}. */
  get position(): number {
    return this.offset
  }

  /**
   * Skips `skip` bytes and takes the `n` after them as a view, all within
   * {@link current} (caller guarantees position + skip + n <= current().length).
   */
  takeWithin(skip: number, n: number): Uint8Array {
    const start = this.offset + skip
    const out = this.chunks[this.head]!.subarray(start, start + n)
    this.advance(skip + n)
    return out
  }

  /** The byte at `index` (0 = next unread byte); caller guarantees index < available. */
  byteAt(index: number): number {
    let i = this.head
    let at = this.offset + index
    while (at >= this.chunks[i]!.length) {
      at -= this.chunks[i]!.length
      i++
    }
    return this.chunks[i]![at]!
  }

  /**
   * Takes `n` bytes (caller guarantees n <= available). Within one chunk this
   * is a zero-copy view; across chunks the bytes are copied once.
   */
  take(n: number): Uint8Array {
    const first = this.chunks[this.head]!
    const rest = first.length - this.offset
    if (n <= rest) {
      const out = first.subarray(this.offset, this.offset + n)
      this.advance(n)
      return out
    }
    const out = new Uint8Array(n)
    let written = 0
    while (written < n) {
      const chunk = this.chunks[this.head]!
      const count = Math.min(n - written, chunk.length - this.offset)
      out.set(chunk.subarray(this.offset, this.offset + count), written)
      written += count
      this.advance(count)
    }
    return out
  }

  /** Drops `n` bytes (caller guarantees n <= available). */
  skip(n: number): void {
    while (n > 0) {
      const chunk = this.chunks[this.head]!
      const count = Math.min(n, chunk.length - this.offset)
      this.advance(count)
      n -= count
    }
  }

  /**
   * Index (relative to the next unread byte) of the first `byte` at or after
   * `from`, or -1. Uses the native `indexOf` of each chunk.
   */
  indexOf(byte: number, from: number): number {
    let base = 0
    let start = this.offset
    for (let i = this.head; i < this.end; i++) {
      const chunk = this.chunks[i]!
      const size = chunk.length - start
      if (from < base + size) {
        const found = chunk.indexOf(byte, start + Math.max(0, from - base))
        if (found !== -1) return base + found - start
      }
      base += size
      start = 0
    }
    return -1
  }

  private advance(n: number): void {
    this.offset += n
    this.available -= n
    if (this.offset === this.chunks[this.head]!.length) {
      this.head++
      this.offset = 0
      if (this.head === this.end) {
        // All taken: the slots stay for the next chunks (many slots are let go).
        if (this.end > 64) this.chunks = [noChunk]
        else for (let i = 0; i < this.end; i++) this.chunks[i] = noChunk
        this.head = this.end = 0
      } else if (this.head >= 64) {
        this.chunks = this.chunks.slice(this.head, this.end)
        this.end -= this.head
        this.head = 0
      }
    }
  }
}
