/**
 * The web chat's HTML: a static shell. Everything shown is drawn by
 * `web/chat.ts` with DOM calls (`textContent`), never by parsing HTML.
 *
 * @internal
 */
export const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Tether chat</title>
<style>
  :root { color-scheme: light dark; --fg: #1d2330; --muted: #6b7385; --bg: #f6f7fa; --card: #fff; --line: #e3e6ee; --accent: #2f6fde; }
  @media (prefers-color-scheme: dark) { :root { --fg: #e6e8ee; --muted: #9aa2b5; --bg: #12151c; --card: #1b1f29; --line: #2b3140; --accent: #6d9cf0; } }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.45 system-ui, sans-serif; color: var(--fg); background: var(--bg); height: 100vh; display: flex; flex-direction: column; }
  header { display: flex; align-items: baseline; gap: 1rem; padding: 0.7rem 1.2rem; border-bottom: 1px solid var(--line); }
  h1 { font-size: 1.15rem; margin: 0; }
  #state { color: var(--muted); }
  #state[data-state="connected"] { color: #2a9d57; }
  #state[data-state="reconnecting"], #state[data-state="failed"] { color: #d0453a; }
  #me { margin-left: auto; color: var(--muted); }
  #login { margin: 4rem auto; background: var(--card); padding: 1.4rem; border-radius: 8px; display: grid; gap: 0.6rem; width: 20rem; box-shadow: 0 1px 3px rgba(0,0,0,.1); }
  #login p { margin: 0; color: #d0453a; min-height: 1.2em; }
  input, button { font: inherit; padding: 0.4rem 0.6rem; border-radius: 5px; border: 1px solid var(--line); background: var(--card); color: var(--fg); }
  button { background: var(--accent); color: #fff; border: none; cursor: pointer; }
  button:disabled { opacity: 0.5; cursor: default; }
  #chat { flex: 1; display: grid; grid-template-columns: 1fr 12rem; min-height: 0; }
  #chat[hidden], #login[hidden] { display: none; }
  #left { display: flex; flex-direction: column; min-height: 0; }
  #transcript { flex: 1; overflow-y: auto; margin: 0; padding: 0.8rem 1.2rem; list-style: none; }
  #transcript li { padding: 2px 0; white-space: pre-wrap; overflow-wrap: anywhere; }
  #transcript .from { font-weight: 600; margin-right: 0.4rem; }
  #transcript .info { color: var(--muted); font-style: italic; }
  #transcript .own.pending { opacity: 0.55; }
  #transcript time { color: var(--muted); font-size: 11px; margin-right: 0.5rem; font-variant-numeric: tabular-nums; }
  #say { display: flex; gap: 0.5rem; padding: 0.7rem 1.2rem; border-top: 1px solid var(--line); }
  #say input { flex: 1; }
  aside { border-left: 1px solid var(--line); padding: 0.8rem 1rem; overflow-y: auto; }
  aside h2 { font-size: 0.9rem; margin: 0 0 0.4rem; color: var(--muted); }
  #who { list-style: none; margin: 0; padding: 0; }
  #who li { padding: 1px 0; overflow-wrap: anywhere; }
</style>
</head>
<body>
<header><h1>Tether chat</h1><span id="state" data-state="idle">not connected</span><span id="me"></span></header>
<form id="login">
  <label>Name <input id="user" name="user" autocomplete="username" maxlength="32" required></label>
  <label>Password <input id="password" name="password" type="password" autocomplete="current-password" maxlength="128" required></label>
  <button type="submit">Join</button>
  <p id="login-error" role="alert"></p>
</form>
<div id="chat" hidden>
  <div id="left">
    <ul id="transcript" aria-live="polite"></ul>
    <form id="say"><input id="text" autocomplete="off" maxlength="16384" placeholder="Say something"><button type="submit" id="send">Send</button></form>
  </div>
  <aside><h2>Here</h2><ul id="who"></ul></aside>
</div>
<script type="module" src="/chat.js"></script>
</body>
</html>
`
