/**
 * The bias report as one self-contained HTML page (inline CSS and SVG, no
 * scripts, nothing fetched): the findings to review first, then a label ×
 * probe heat map of associations in the label space, per-group prediction
 * bars, and every test. Every text from the inputs is escaped.
 */
import { escapeXml } from '../util/xml';
import type { BiasReport } from './run';
import { Finding } from './findings';
import { GroupSummary } from './dataset_probes';
import { AssociationCell } from './embedding_tests';

const esc = escapeXml;
const PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];

function color(i: number): string {
  return i < PALETTE.length ? PALETTE[i] : `hsl(${(i * 137.508) % 360}, 55%, 50%)`;
}

function num(x: number | undefined, digits = 3): string {
  return x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(digits);
}

function pval(p: number): string {
  return !Number.isFinite(p) ? '–' : p < 1e-4 ? p.toExponential(1) : p.toFixed(4);
}

function status(f: Finding): string {
  if (f.review) return `<span class="tag ${f.review.decision}">${f.review.decision}</span>`;
  return f.flagged ? '<span class="tag pending">to review</span>' : '';
}

function findingRows(fs: readonly Finding[]): string {
  return fs
    .map(
      (f) => `<tr class="${f.flagged ? 'flagged' : ''}">
<td><code>${esc(f.id)}</code></td><td>${esc(f.title)}</td><td class="n">${num(f.effect)}</td>
<td class="n">${f.ci ? `[${num(f.ci[0])}, ${num(f.ci[1])}]` : '–'}</td><td class="n">${pval(f.p)}</td><td class="n">${pval(f.q)}</td>
<td>${status(f)}${f.review?.note ? `<div class="note">${esc(f.review.note)}</div>` : ''}</td>
<td>${f.examples.length ? `<details><summary>${f.examples.length}</summary>${f.examples.map((e) => `<div><code>${esc(e)}</code></div>`).join('')}</details>` : ''}</td></tr>`,
    )
    .join('\n');
}

function table(fs: readonly Finding[]): string {
  return `<table><thead><tr><th>id</th><th>finding</th><th>effect</th><th>95% interval</th><th>p</th><th>q (BH)</th><th>review</th><th>examples</th></tr></thead>
<tbody>${findingRows(fs)}</tbody></table>`;
}

/** Rows: labels; columns: probe sets; blue toward side a, red toward side b. */
export function heatmapSvg(cells: readonly AssociationCell[], sets: ReadonlyArray<{ id: string; a: string; b: string }>): string {
  const labels = [...new Set(cells.map((c) => c.label))];
  if (!labels.length || !sets.length) return '';
  const cw = 92;
  const ch = 26;
  const left = 12 + 7 * Math.min(24, Math.max(...labels.map((l) => l.length)));
  const top = 70;
  const w = left + sets.length * cw + 20;
  const h = top + labels.length * ch + 30;
  const out = [`<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" font-family="sans-serif" font-size="12">`];
  sets.forEach((s, j) => {
    const x = left + j * cw + cw / 2;
    out.push(`<text x="${x}" y="${top - 40}" text-anchor="middle" font-weight="bold">${esc(s.id)}</text>`);
    out.push(`<text x="${x}" y="${top - 24}" text-anchor="middle" fill="#2b5d9b" font-size="10">+ ${esc(s.a.slice(0, 16))}</text>`);
    out.push(`<text x="${x}" y="${top - 10}" text-anchor="middle" fill="#b3322c" font-size="10">− ${esc(s.b.slice(0, 16))}</text>`);
  });
  labels.forEach((l, i) => {
    const y = top + i * ch;
    out.push(`<text x="${left - 6}" y="${y + ch / 2 + 4}" text-anchor="end">${esc(l.slice(0, 24))}</text>`);
    sets.forEach((s, j) => {
      const c = cells.find((x) => x.label === l && x.set === s.id);
      if (!c) return;
      const t = Math.max(-1, Math.min(1, c.effect / 2));
      const fill = t >= 0 ? `rgba(43,93,155,${t.toFixed(3)})` : `rgba(179,50,44,${(-t).toFixed(3)})`;
      const x = left + j * cw;
      out.push(`<rect x="${x}" y="${y}" width="${cw - 2}" height="${ch - 2}" fill="${fill}" stroke="#ddd"/>`);
      out.push(
        `<text x="${x + cw / 2}" y="${y + ch / 2 + 4}" text-anchor="middle" fill="${Math.abs(t) > 0.6 ? 'white' : 'black'}">${num(c.effect, 2)}${c.p < 0.05 ? '*' : ''}</text>`,
      );
    });
  });
  out.push(`<text x="${left}" y="${h - 8}" fill="#555" font-size="11">effect size of s(label, a, b); * p &lt; 0.05 before correction</text>`, '</svg>');
  return out.join('\n');
}

/** One panel per attribute: for each group, bars of the fraction predicted as each label. */
export function groupBarsSvg(attribute: string, groups: readonly GroupSummary[], labels: readonly string[]): string {
  const bw = 14;
  const gap = 26;
  const gw = labels.length * bw + gap;
  const left = 44;
  const top = 34;
  const plotH = 160;
  const w = left + groups.length * gw + 160;
  const h = top + plotH + 60;
  const max = Math.max(0.05, ...groups.flatMap((g) => g.rates));
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" font-family="sans-serif" font-size="11">`,
    `<text x="${left}" y="18" font-size="13" font-weight="bold">${esc(attribute)}: predicted emotion by group</text>`,
    `<line x1="${left}" y1="${top + plotH}" x2="${left + groups.length * gw}" y2="${top + plotH}" stroke="#999"/>`,
    `<text x="${left - 6}" y="${top + 4}" text-anchor="end">${(100 * max).toFixed(0)}%</text>`,
    `<text x="${left - 6}" y="${top + plotH}" text-anchor="end">0</text>`,
  ];
  groups.forEach((g, k) => {
    const x0 = left + k * gw;
    g.rates.forEach((r, e) => {
      const bh = (plotH * r) / max;
      out.push(
        `<rect x="${x0 + e * bw}" y="${top + plotH - bh}" width="${bw - 2}" height="${bh}" fill="${color(e)}"><title>${esc(`${g.group}: ${labels[e]} ${(100 * r).toFixed(1)}%`)}</title></rect>`,
      );
    });
    out.push(`<text x="${x0 + (labels.length * bw) / 2}" y="${top + plotH + 16}" text-anchor="middle">${esc(g.group.slice(0, 18))}</text>`);
    out.push(
      `<text x="${x0 + (labels.length * bw) / 2}" y="${top + plotH + 30}" text-anchor="middle" fill="#555">n ${g.n}${Number.isFinite(g.accuracy) ? `, acc ${(100 * g.accuracy).toFixed(0)}%` : ''}</text>`,
    );
  });
  labels.forEach((l, e) => {
    const y = top + e * 16;
    const x = left + groups.length * gw + 10;
    out.push(`<rect x="${x}" y="${y}" width="10" height="10" fill="${color(e)}"/><text x="${x + 14}" y="${y + 9}">${esc(l.slice(0, 20))}</text>`);
  });
  out.push('</svg>');
  return out.join('\n');
}

export function reportHtml(r: BiasReport): string {
  const flagged = r.findings.filter((f) => f.flagged);
  const attrs = [...new Set(r.groups.map((g) => g.attribute))];
  const example = flagged[0]?.id ?? 'weat:gender';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tinyemo bias report</title>
<style>
body{font-family:system-ui,sans-serif;margin:24px;max-width:1200px;color:#222}
h1{font-size:22px} h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;width:100%;font-size:13px} td,th{border:1px solid #ddd;padding:4px 6px;vertical-align:top}
th{background:#f4f4f4;text-align:left} td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.flagged{background:#fff6e5} .tag{padding:1px 6px;border-radius:8px;font-size:11px;white-space:nowrap}
.pending{background:#ffe0a3} .confirmed{background:#f6b3ad} .dismissed{background:#cfe8cf} .note{color:#555;font-size:12px}
.summary td{border:none;padding:2px 12px 2px 0} code{font-size:12px} .muted{color:#666}
</style></head><body>
<h1>Bias report</h1>
<table class="summary">
<tr><td>model</td><td><code>${esc(r.model)}</code></td></tr>
<tr><td>label space</td><td>${esc(r.labelSpace)}</td></tr>
<tr><td>probe words placed with</td><td>${esc(r.embeddingSpace ?? 'nothing (no LLM for this label space): embedding tests skipped')}</td></tr>
<tr><td>data</td><td>${r.data ? `<code>${esc(r.data)}</code>, ${r.n} samples` : 'none'}${r.attributes ? `; attributes from <code>${esc(r.attributes)}</code>` : ''}</td></tr>
<tr><td>tests</td><td>${r.counts.tests} (Benjamini–Hochberg over all, α = ${r.settings.alpha}); flagged ${r.counts.flagged}: ${r.counts.pending} to review, ${r.counts.confirmed} confirmed, ${r.counts.dismissed} dismissed</td></tr>
</table>
${r.notes.map((n) => `<p class="muted">${esc(n)}</p>`).join('\n')}
${r.warnings.map((n) => `<p><b>warning:</b> ${esc(n)}</p>`).join('\n')}
<h2>Flagged findings</h2>
${flagged.length ? table(flagged) : '<p>None: no test is both significant after correction and above its effect threshold.</p>'}
<p class="muted">To record a decision, append a line to <code>review.jsonl</code> in the report folder (or the file given with --review) and run again:
<code>${esc(JSON.stringify({ id: example, decision: 'confirmed', note: 'why', reviewer: 'you' }))}</code> (or "dismissed"; the last line for an id wins).</p>
${r.heatmap.length ? `<h2>Label × probe associations in the label space</h2>\n${heatmapSvg(r.heatmap, r.probeSets)}` : ''}
${
  attrs.length
    ? `<h2>Groups</h2>\n${attrs
        .map((a) =>
          groupBarsSvg(
            a,
            r.groups.filter((g) => g.attribute === a),
            r.labels,
          ),
        )
        .join('\n')}`
    : ''
}
<h2>All tests</h2>
<details><summary>${r.findings.length} tests</summary>${table(r.findings)}</details>
<p class="muted">tinyemo ${esc(r.tinyemo)} · thresholds: effect sizes ≥ ${r.settings.thresholds.weat}, rate and recall gaps ≥ ${r.settings.thresholds['prediction-rate']}, context ΔV ≥ ${r.settings.thresholds.context} · seed ${r.settings.seed}</p>
</body></html>
`;
}
