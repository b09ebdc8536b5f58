/**
 * The dashboard's per-room columns over time: for each room that was among
 * the busiest at some sample of the window, its rate at each sample (null
 * where it was not among the busiest: not known). At most `maxTracked` rooms
 * (the one longest out of the busiest gives way); a room out of the busiest
 * for a whole window is dropped. Columns share the sampler's ring slots.
 *
 * @internal
 */
export class RoomSeries {
  private readonly columns = new Map<string, { readonly values: Array<number | null>; lastTop: number }>()
  private sample = 0

  constructor(private readonly capacity: number, private readonly maxTracked: number) {}

  /** Records the sample at ring `slot`: `rates` of the busiest rooms, null for every other room kept. */
  record(slot: number, rates: ReadonlyArray<{ readonly room: string; readonly messagesPerSecond: number }>): void {
    this.sample++
    for (const column of this.columns.values()) column.values[slot] = null
    for (const { messagesPerSecond, room } of rates) {
      let column = this.columns.get(room)
      if (column === undefined) {
        if (this.columns.size >= this.maxTracked) this.evictLongestOut()
        column = { values: new Array<number | null>(this.capacity).fill(null), lastTop: 0 }
        this.columns.set(room, column)
      }
      column.values[slot] = messagesPerSecond
      column.lastTop = this.sample
    }
    for (const [room, column] of this.columns) {
      if (this.sample - column.lastTop >= this.capacity) this.columns.delete(room)
    }
  }

  /** The room's ring of values (slots as the sampler's), if it is kept. */
  column(room: string): ReadonlyArray<number | null> | undefined {
    return this.columns.get(room)?.values
  }

  get size(): number {
    return this.columns.size
  }

  private evictLongestOut(): void {
    let oldest: string | undefined
    let at = Infinity
    for (const [room, column] of this.columns) {
      if (column.lastTop < at) {
        at = column.lastTop
        oldest = room
      }
    }
    if (oldest !== undefined) this.columns.delete(oldest)
  }
}
