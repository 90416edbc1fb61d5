/** A small, dependency-free SVG chart of a benchmark run: each target as a bar against its limit. */
export interface ChartRow {
  label: string;
  value: number;
  unit: string;
  /** The target; the bar is drawn relative to it. */
  target: number;
  /** "max": lower is better (value must stay ≤ target); "min": higher is better. */
  kind: "max" | "min";
}

export interface ChartGroup {
  title: string;
  rows: { label: string; values: { name: string; value: number }[]; unit: string }[];
}

const escape = (text: string) => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
const fmt = (value: number) => (value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2));

export function renderChart(title: string, subtitle: string, targets: ChartRow[], groups: ChartGroup[]): string {
  const width = 980;
  const labelWidth = 260;
  const barWidth = 460;
  const rowHeight = 30;
  const parts: string[] = [];
  let y = 70;
  parts.push(`<text x="20" y="30" font-size="20" font-weight="bold">${escape(title)}</text>`);
  parts.push(`<text x="20" y="52" font-size="12" fill="#555">${escape(subtitle)}</text>`);

  parts.push(`<text x="20" y="${y + 10}" font-size="15" font-weight="bold">Targets (bar = value ÷ target; the dashed line is the target)</text>`);
  y += 26;
  const scaleMax = Math.max(2, ...targets.map((t) => t.value / t.target));
  const x0 = 20 + labelWidth;
  const targetX = x0 + barWidth / scaleMax;
  for (const row of targets) {
    const ratio = row.value / row.target;
    const good = row.kind === "max" ? row.value <= row.target : row.value >= row.target;
    const w = Math.max(2, (barWidth * Math.min(ratio, scaleMax)) / scaleMax);
    parts.push(`<text x="20" y="${y + 19}" font-size="13">${escape(row.label)}</text>`);
    parts.push(`<rect x="${x0}" y="${y + 6}" width="${w.toFixed(1)}" height="18" fill="${good ? "#2e7d32" : "#c62828"}" rx="2"/>`);
    const verdict = good ? "meets" : "misses";
    parts.push(
      `<text x="${x0 + barWidth + 10}" y="${y + 19}" font-size="12">${fmt(row.value)} ${escape(row.unit)} (${row.kind === "max" ? "≤" : "≥"} ${fmt(row.target)}: ${verdict})</text>`,
    );
    y += rowHeight;
  }
  parts.push(`<line x1="${targetX}" y1="${y - rowHeight * targets.length}" x2="${targetX}" y2="${y}" stroke="#000" stroke-dasharray="4 3"/>`);
  y += 16;

  const palette = ["#1565c0", "#ef6c00", "#6a1b9a", "#00838f"];
  for (const group of groups) {
    parts.push(`<text x="20" y="${y + 10}" font-size="15" font-weight="bold">${escape(group.title)}</text>`);
    y += 22;
    for (const row of group.rows) {
      // Each row on its own scale: its rows mix milliseconds and requests per second.
      const max = Math.max(...row.values.map((v) => v.value));
      parts.push(`<text x="20" y="${y + 14}" font-size="13">${escape(row.label)}</text>`);
      row.values.forEach((entry, i) => {
        const w = Math.max(2, (barWidth * entry.value) / max);
        const by = y + i * 16;
        parts.push(`<rect x="${x0}" y="${by + 2}" width="${w.toFixed(1)}" height="13" fill="${palette[i % palette.length]}" rx="2"/>`);
        parts.push(`<text x="${x0 + w + 6}" y="${by + 13}" font-size="11">${escape(entry.name)}: ${fmt(entry.value)} ${escape(row.unit)}</text>`);
      });
      y += Math.max(rowHeight, row.values.length * 16 + 8);
    }
    y += 10;
  }
  const height = y + 10;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    ...parts,
    `</svg>`,
  ].join("\n");
}
