/**
 * The dashboard's HTML: a static shell. Everything shown is drawn by
 * `web/dashboard.ts` from `/dashboard/samples.json` with DOM calls
 * (`textContent`, `createElementNS`), never by parsing HTML.
 *
 * @internal
 */
export const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Tether dashboard</title>
<style>
  :root { color-scheme: light dark; --fg: #1d2330; --muted: #6b7385; --bg: #f6f7fa; --card: #fff; --grid: #e3e6ee; }
  @media (prefers-color-scheme: dark) { :root { --fg: #e6e8ee; --muted: #9aa2b5; --bg: #12151c; --card: #1b1f29; --grid: #2b3140; } }
  body { margin: 0; font: 14px/1.4 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
  header { display: flex; align-items: baseline; gap: 1rem; padding: 0.8rem 1.2rem; }
  h1 { font-size: 1.2rem; margin: 0; }
  #status { color: var(--muted); }
  #status[data-state="error"] { color: #d0453a; }
  main { display: grid; grid-template-columns: repeat(auto-fill, minmax(420px, 1fr)); gap: 1rem; padding: 0 1.2rem 1.2rem; }
  section { background: var(--card); border-radius: 8px; padding: 0.8rem 1rem; box-shadow: 0 1px 2px rgba(0,0,0,.08); }
  h2 { font-size: 0.95rem; margin: 0 0 0.4rem; display: flex; flex-wrap: wrap; gap: 0 1rem; justify-content: space-between; }
  h2 .now { font-weight: normal; color: var(--muted); font-variant-numeric: tabular-nums; }
  svg { width: 100%; height: 160px; display: block; }
  svg .grid { stroke: var(--grid); stroke-width: 1; }
  svg .axis { fill: var(--muted); font-size: 10px; }
  .legend { display: flex; gap: 1rem; color: var(--muted); font-size: 12px; margin-top: 0.3rem; }
  .legend i { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 4px; vertical-align: -1px; }
  table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
  td, th { text-align: left; padding: 2px 6px; border-bottom: 1px solid var(--grid); }
  .empty { color: var(--muted); }
  .note { color: var(--muted); font-size: 12px; padding: 0 1.2rem 1rem; }
</style>
</head>
<body>
<header><h1>Tether</h1><span id="status">connecting…</span></header>
<main id="plots"></main>
<p class="note">Counts per sampling interval where no unit is shown. Raw series: <a href="/metrics">/metrics</a> · health: <a href="/healthz">/healthz</a></p>
<main>
  <section id="rooms"><h2>Rooms</h2><p class="empty">Per-room activity appears here once rooms exist.</p></section>
  <section id="nodes"><h2>Nodes</h2><p class="empty">Each node of a cluster appears here in cluster mode.</p></section>
</main>
<script type="module" src="/dashboard/dashboard.js"></script>
</body>
</html>
`
