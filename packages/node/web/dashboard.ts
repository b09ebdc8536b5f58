/**
 * The dashboard page's script (browser; compiled by `tsc -b` to
 * `dist/web/dashboard.js`): polls `/dashboard/samples.json` every interval
 * and draws one SVG plot per group of series. Text from the network is set
 * with `textContent` only.
 */

interface Samples {
  readonly intervalMs: number
  readonly capacity: number
  readonly at: ReadonlyArray<number>
  readonly values: Readonly<Record<string, ReadonlyArray<number>>>
  readonly rooms: ReadonlyArray<Readonly<Record<string, unknown>>>
  readonly roomCount?: number
  readonly roomSeries?: Readonly<Record<string, ReadonlyArray<number | null>>>
  readonly nodes: ReadonlyArray<Readonly<Record<string, unknown>>>
}

interface Column {
  readonly key: string
  readonly label: string
  readonly show?: (value: unknown) => string
}

const number = (value: unknown) => (typeof value === "number" ? format(value) : String(value ?? ""))
const roomColumns: ReadonlyArray<Column> = [
  { key: "room", label: "room" },
  { key: "messagesPerSecond", label: "lines/s", show: number },
  { key: "members", label: "members here", show: number }
]
const nodeColumns: ReadonlyArray<Column> = [
  { key: "node", label: "node" },
  { key: "connections", label: "connections", show: number },
  { key: "messagesInPerSecond", label: "in/s", show: number },
  { key: "messagesOutPerSecond", label: "out/s", show: number },
  { key: "lastSeenAgoMs", label: "last seen", show: (v) => (typeof v === "number" ? `${(v / 1000).toFixed(1)} s ago` : "") }
]

interface Plot {
  readonly id: string
  readonly title: string
  readonly unit: string
  readonly lines: ReadonlyArray<{ readonly key: string; readonly label: string; readonly color: string }>
}

const plots: ReadonlyArray<Plot> = [
  { id: "connections", title: "Connections", unit: "", lines: [{ key: "connections", label: "active", color: "#3b7ddd" }] },
  {
    id: "messages",
    title: "Messages per second",
    unit: "/s",
    lines: [
      { key: "framesIn", label: "in", color: "#2f9e62" },
      { key: "framesOut", label: "out", color: "#e08a1e" }
    ]
  },
  {
    id: "closed",
    title: "Heartbeat timeouts and kicks",
    unit: "",
    lines: [
      { key: "heartbeatTimeouts", label: "heartbeat timeouts", color: "#d0453a" },
      { key: "kicks", label: "kicks", color: "#8e5bd6" }
    ]
  },
  {
    id: "refusals",
    title: "Refused connections and logins",
    unit: "",
    lines: [
      { key: "refused", label: "connections refused", color: "#c2410c" },
      { key: "loginFailures", label: "login failures", color: "#6b7385" }
    ]
  },
  {
    id: "bytes",
    title: "Bytes per second",
    unit: " B/s",
    lines: [
      { key: "bytesIn", label: "in", color: "#2f9e62" },
      { key: "bytesOut", label: "out", color: "#e08a1e" }
    ]
  }
]

const SVG = "http://www.w3.org/2000/svg"
const width = 600
const height = 160
const left = 44
const bottom = 18

const el = <K extends keyof HTMLElementTagNameMap>(tag: K, text?: string): HTMLElementTagNameMap[K] => {
  const node = document.createElement(tag)
  if (text !== undefined) node.textContent = text
  return node
}
const svgEl = (tag: string, attributes: Record<string, string | number>): SVGElement => {
  const node = document.createElementNS(SVG, tag)
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value))
  return node
}

const format = (value: number): string =>
  value >= 1e6 ? `${(value / 1e6).toFixed(1)}M` : value >= 1e4 ? `${(value / 1e3).toFixed(1)}k` : value >= 100
    ? value.toFixed(0)
    : Number.isInteger(value) ? String(value) : value.toFixed(1)

/** A round upper bound for the y axis. */
const ceiling = (max: number): number => {
  if (max <= 0) return 1
  const step = 10 ** Math.floor(Math.log10(max))
  for (const m of [1, 2, 5, 10]) if (max <= m * step) return m * step
  return 10 * step
}

const views = new Map<string, { readonly svg: SVGSVGElement; readonly now: HTMLElement; readonly legend: HTMLElement }>()

const legendOf = (legend: HTMLElement, plot: Plot) => {
  legend.replaceChildren(...plot.lines.map((line) => {
    const item = el("span")
    const swatch = el("i")
    swatch.style.background = line.color
    item.append(swatch, document.createTextNode(line.label))
    return item
  }))
}

/** The busiest rooms' lines per second over time, one line per room (at most 5: the server sends no more). */
const roomColors = ["#3b7ddd", "#2f9e62", "#e08a1e", "#8e5bd6", "#d0453a"]
const roomPlot = (samples: Samples): Plot => ({
  id: "roomActivity",
  title: "Busiest rooms: lines per second",
  unit: "/s",
  lines: Object.keys(samples.roomSeries ?? {}).slice(0, roomColors.length).map((room, i) => ({
    key: `room:${room}`,
    label: room.slice(0, 32),
    color: roomColors[i]!
  }))
})
/** The samples with each room's series as a value column (`room:<name>`). */
const withRooms = (samples: Samples): Samples => ({
  ...samples,
  values: {
    ...samples.values,
    ...Object.fromEntries(Object.entries(samples.roomSeries ?? {}).map(([room, column]) => [`room:${room}`, column as Array<number>]))
  }
})

const layout = () => {
  const main = document.getElementById("plots")!
  for (const plot of [...plots, roomPlot({ intervalMs: 0, capacity: 0, at: [], values: {}, rooms: [], nodes: [] })]) {
    const section = el("section")
    section.dataset.plot = plot.id
    const title = el("h2", plot.title)
    const now = el("span")
    now.className = "now"
    title.append(now)
    const svg = document.createElementNS(SVG, "svg")
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`)
    svg.setAttribute("preserveAspectRatio", "none")
    const legend = el("div")
    legend.className = "legend"
    legendOf(legend, plot)
    section.append(title, svg, legend)
    main.append(section)
    views.set(plot.id, { svg, now, legend })
  }
}

const draw = (plot: Plot, samples: Samples) => {
  const view = views.get(plot.id)!
  const svg = view.svg
  svg.replaceChildren()
  const span = samples.capacity * samples.intervalMs
  const end = samples.at.length > 0 ? samples.at[samples.at.length - 1]! : 0
  const columns = plot.lines.map((line) => samples.values[line.key] ?? [])
  const top = ceiling(Math.max(0, ...columns.flat()))
  const x = (at: number) => left + ((at - (end - span)) / span) * (width - left - 4)
  const y = (value: number) => (height - bottom) - (value / top) * (height - bottom - 6)
  for (const fraction of [0, 0.5, 1]) {
    const value = top * fraction
    svg.append(svgEl("line", { class: "grid", x1: left, x2: width, y1: y(value), y2: y(value) }))
    const label = svgEl("text", { class: "axis", x: left - 4, y: y(value) + 3, "text-anchor": "end" })
    label.textContent = format(value)
    svg.append(label)
  }
  const minutes = svgEl("text", { class: "axis", x: left, y: height - 4 })
  minutes.textContent = `last ${Math.round(span / 60000)} min`
  svg.append(minutes)
  plot.lines.forEach((line, i) => {
    const column = columns[i]!
    // A room's column has nulls where it was not among the busiest: no point there.
    const drawn = column.flatMap((value, j) =>
      value === null ? [] : [`${x(samples.at[j]!).toFixed(1)},${y(value).toFixed(1)}`]
    )
    const points = drawn.join(" ")
    svg.append(svgEl("polyline", {
      points,
      fill: "none",
      stroke: line.color,
      "stroke-width": 2,
      "stroke-linejoin": "round",
      "data-series": line.key,
      "data-points": drawn.length
    }))
  })
  view.now.textContent = plot.lines
    .map((line, i) => {
      const column = columns[i]!
      const last: number | null = column.length > 0 ? column[column.length - 1]! : 0
      return `${plot.lines.length > 1 ? `${line.label} ` : ""}${last === null ? "-" : format(last)}${plot.unit}`
    })
    .join(" · ")
}

/** Rows from the network, as text cells under `columns`. */
const table = (id: string, title: string, rows: ReadonlyArray<Readonly<Record<string, unknown>>>, columns: ReadonlyArray<Column>) => {
  const section = document.getElementById(id)!
  if (rows.length === 0) {
    if (section.dataset.rows !== undefined && section.dataset.rows !== "0") {
      const empty = el("p", id === "rooms" ? "No room has members here." : "No node has published a summary.")
      empty.className = "empty"
      section.replaceChildren(el("h2", title), empty)
    }
    section.dataset.rows = "0"
    return
  }
  const head = el("tr")
  for (const column of columns) head.append(el("th", column.label))
  const body = rows.map((row) => {
    const tr = el("tr")
    for (const column of columns) tr.append(el("td", (column.show ?? ((v) => String(v ?? "")))(row[column.key])))
    return tr
  })
  const t = el("table")
  t.append(head, ...body)
  section.replaceChildren(el("h2", title), t)
  section.dataset.rows = String(rows.length)
}

const status = (text: string, state: "ok" | "error") => {
  const node = document.getElementById("status")!
  node.textContent = text
  node.dataset.state = state
}

const poll = async (): Promise<number> => {
  try {
    const response = await fetch("/dashboard/samples.json", { cache: "no-store" })
    if (!response.ok) throw new Error(`HTTP ${response.status}`)
    const samples = (await response.json()) as Samples
    for (const plot of plots) draw(plot, samples)
    const rooms = roomPlot(samples)
    legendOf(views.get(rooms.id)!.legend, rooms)
    draw(rooms, withRooms(samples))
    const roomCount = samples.roomCount ?? samples.rooms.length
    table("rooms", `Busiest rooms (${samples.rooms.length} of ${roomCount})`, samples.rooms, roomColumns)
    table("nodes", `Nodes (${samples.nodes.length})`, samples.nodes, nodeColumns)
    const when = samples.at.length > 0 ? new Date(samples.at[samples.at.length - 1]!).toLocaleTimeString() : "-"
    status(`live · ${samples.at.length} samples · last ${when}`, "ok")
    document.body.dataset.samples = String(samples.at.length)
    return samples.intervalMs
  } catch (error) {
    status(`cannot reach the server (${String(error)}); retrying`, "error")
    return 2000
  }
}

const loop = async () => {
  const wait = await poll()
  setTimeout(loop, Math.max(250, wait))
}

export {}

layout()
void loop()
