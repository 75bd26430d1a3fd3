/**
 * The demo page at GET /: choose or drop an image, see the label scores as
 * bars, then (with a reasoning model) the reasoning as it streams. One file,
 * no external assets, so it works offline; every failure is shown on the
 * page. The server's CSP allows its inline script and requests to itself
 * only.
 */
export const DEMO_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tinyemo</title>
<style>
  :root { font-family: system-ui, sans-serif; color: #1d2433; background: #f6f7fb; }
  body { max-width: 760px; margin: 2rem auto; padding: 0 1rem; }
  h1 { font-size: 1.4rem; margin-bottom: .2rem; }
  p.sub { margin-top: 0; color: #5a6478; }
  #drop { border: 2px dashed #9aa5bd; border-radius: 10px; padding: 1.5rem; text-align: center; background: #fff; cursor: pointer; }
  #drop.over { border-color: #3b6fe0; background: #eef3ff; }
  #preview { max-width: 100%; max-height: 280px; display: none; margin: 1rem auto 0; border-radius: 6px; }
  #key { display: none; margin: 1rem 0; } #key input { width: 22rem; }
  #error { display: none; margin: 1rem 0; padding: .7rem 1rem; border-radius: 6px; background: #fde8e8; color: #8a1c1c; }
  .bar { display: grid; grid-template-columns: 8rem 1fr 4rem; gap: .6rem; align-items: center; margin: .35rem 0; }
  .track { background: #e3e7f0; border-radius: 4px; height: 1rem; overflow: hidden; }
  .fill { background: #3b6fe0; height: 100%; }
  .bar.top .fill { background: #e0823b; }
  #reasoning { white-space: pre-wrap; background: #fff; border-radius: 6px; padding: 1rem; min-height: 2rem; display: none; }
  .status { color: #5a6478; font-size: .9rem; }
</style>
</head>
<body>
<h1>tinyemo</h1>
<p class="sub">Emotion classification and reasoning about an image, on this server.</p>
<div id="key"><label>API key <input id="keyInput" type="password" autocomplete="off"></label></div>
<div id="drop" tabindex="0">Drop an image here, or click to choose one
  <input id="file" type="file" accept="image/*" hidden>
  <img id="preview" alt="the chosen image">
</div>
<div id="error" role="alert"></div>
<h2 id="labelsHeading" style="display:none">Labels</h2>
<div id="scores"></div>
<h2 id="reasonHeading" style="display:none">Reasoning</h2>
<div id="reasoning" aria-live="polite"></div>
<p class="status" id="status"></p>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
let ready = { reason: false, auth: false, labels: [] };

function showError(message) {
  $("error").textContent = message;
  $("error").style.display = "block";
  $("status").textContent = "";
}

function headers(extra) {
  const h = Object.assign({}, extra);
  const key = $("keyInput").value.trim();
  if (key) h.authorization = "Bearer " + key;
  return h;
}

async function failure(res) {
  try {
    const j = await res.json();
    return j.error ? j.error.message + " (" + res.status + " " + j.error.code + ")" : "HTTP " + res.status;
  } catch (e) {
    return "HTTP " + res.status;
  }
}

function drawScores(predictions) {
  const box = $("scores");
  box.textContent = "";
  $("labelsHeading").style.display = "block";
  predictions.forEach((p, i) => {
    const row = document.createElement("div");
    row.className = "bar" + (i === 0 ? " top" : "");
    row.dataset.label = p.label;
    const name = document.createElement("span");
    name.textContent = p.label;
    const track = document.createElement("div");
    track.className = "track";
    const fill = document.createElement("div");
    fill.className = "fill";
    fill.style.width = Math.max(0, Math.min(1, (p.score + 1) / 2)) * 100 + "%";
    track.appendChild(fill);
    const value = document.createElement("span");
    value.textContent = p.score.toFixed(3);
    row.append(name, track, value);
    box.appendChild(row);
  });
}

async function streamReasoning(file) {
  const out = $("reasoning");
  out.textContent = "";
  out.style.display = "block";
  $("reasonHeading").style.display = "block";
  $("status").textContent = "writing the reasoning…";
  const res = await fetch("/v1/reason", { method: "POST", body: file, headers: headers({ "content-type": file.type || "application/octet-stream", accept: "text/event-stream" }) });
  if (!res.ok) return showError(await failure(res));
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\\n\\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const isError = block.startsWith("event: error");
      const data = block.split("\\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\\n");
      if (!data) continue;
      const event = JSON.parse(data);
      if (isError) return showError(event.error.message);
      if (event.type === "text") out.textContent += event.text;
      if (event.type === "done") $("status").textContent = "done: " + event.tokens + " tokens";
    }
  }
}

async function run(file) {
  $("error").style.display = "none";
  $("reasoning").style.display = "none";
  $("reasonHeading").style.display = "none";
  $("scores").textContent = "";
  const img = $("preview");
  img.src = URL.createObjectURL(file);
  img.style.display = "block";
  $("status").textContent = "classifying…";
  try {
    const res = await fetch("/v1/classify?top_k=" + Math.max(1, ready.labels.length), { method: "POST", body: file, headers: headers({ "content-type": file.type || "application/octet-stream" }) });
    if (!res.ok) return showError(await failure(res));
    const j = await res.json();
    drawScores(j.results[0].predictions);
    $("status").textContent = "";
    if (ready.reason) await streamReasoning(file);
  } catch (e) {
    showError("the request failed: " + e.message);
  }
}

const drop = $("drop");
drop.addEventListener("click", (e) => { if (e.target !== $("file")) $("file").click(); });
drop.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") $("file").click(); });
$("file").addEventListener("change", () => { if ($("file").files[0]) run($("file").files[0]); });
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  const f = e.dataTransfer.files[0];
  if (f) run(f);
  else showError("drop an image file");
});

fetch("/readyz").then((r) => r.json()).then((j) => {
  ready = j;
  if (j.auth) $("key").style.display = "block";
  $("status").textContent = j.ready ? "ready: " + j.labels.join(", ") + (j.reason ? " · reasoning on" : "") : "the server is not ready";
}).catch((e) => showError("the server did not answer: " + e.message));
</script>
</body>
</html>
`;
