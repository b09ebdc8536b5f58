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
  readonly nodes: ReadonlyArray<Readonly<Record<string, unknown>>>
}

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

const views = new Map<string, { readonly svg: SVGSVGElement; readonly now: HTMLElement }>()

const layout = () => {
  const main = document.getElementById("plots")!
  for (const plot of plots) {
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
    for (const line of plot.lines) {
      const item = el("span")
      const swatch = el("i")
      swatch.style.background = line.color
      item.append(swatch, document.createTextNode(line.label))
      legend.append(item)
    }
    section.append(title, svg, legend)
    main.append(section)
    views.set(plot.id, { svg, now })
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
    const points = column.map((value, j) => `${x(samples.at[j]!).toFixed(1)},${y(value).toFixed(1)}`).join(" ")
    svg.append(svgEl("polyline", {
      points,
      fill: "none",
      stroke: line.color,
      "stroke-width": 2,
      "stroke-linejoin": "round",
      "data-series": line.key,
      "data-points": column.length
    }))
  })
  view.now.textContent = plot.lines
    .map((line, i) => {
      const column = columns[i]!
      const last = column.length > 0 ? column[column.length - 1]! : 0
      return `${plot.lines.length > 1 ? `${line.label} ` : ""}${format(last)}${plot.unit}`
    })
    .join(" · ")
}

/** Rows from the network, as text cells. */
const table = (id: string, rows: ReadonlyArray<Readonly<Record<string, unknown>>>) => {
  if (rows.length === 0) return
  const section = document.getElementById(id)!
  const keys = Object.keys(rows[0]!)
  const head = el("tr")
  for (const key of keys) head.append(el("th", key))
  const body = rows.map((row) => {
    const tr = el("tr")
    for (const key of keys) tr.append(el("td", String(row[key] ?? "")))
    return tr
  })
  const t = el("table")
  t.append(head, ...body)
  section.replaceChildren(el("h2", section.querySelector("h2")?.textContent ?? id), t)
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
    table("rooms", samples.rooms)
    table("nodes", samples.nodes)
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
