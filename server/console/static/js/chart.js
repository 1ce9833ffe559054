// A small SVG bar chart: deliveries per hour over the last 24 hours, failures in red.

const NS = "http://www.w3.org/2000/svg";
const HOUR = 3600 * 1000;

function el(tag, attrs, text) {
  const node = document.createElementNS(NS, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

export function failing(delivery) {
  return (
    delivery.status === "FAILED" ||
    (delivery.status === "PENDING" && (delivery.attempt_count || 0) > 0)
  );
}

// `deliveries`: the webhook's deliveries created in the window (newest first).
export function hourlyChart(deliveries, now = Date.now()) {
  const end = Math.ceil(now / HOUR) * HOUR;
  const start = end - 24 * HOUR;
  const bins = Array.from({ length: 24 }, () => ({ total: 0, failed: 0 }));
  for (const delivery of deliveries) {
    const at = Number(delivery.creation_timestamp);
    if (at < start || at >= end) continue;
    const bin = bins[Math.floor((at - start) / HOUR)];
    bin.total += 1;
    if (failing(delivery)) bin.failed += 1;
  }
  const peak = Math.max(1, ...bins.map((b) => b.total));
  const width = 720;
  const height = 140;
  const pad = { left: 34, right: 8, top: 10, bottom: 22 };
  const plotH = height - pad.top - pad.bottom;
  const barW = (width - pad.left - pad.right) / 24;
  const svg = el("svg", {
    viewBox: `0 0 ${width} ${height}`,
    class: "chart",
    role: "img",
    "aria-label": "Deliveries and failures per hour, last 24 hours",
  });
  for (const fraction of [0, 0.5, 1]) {
    const y = pad.top + plotH * (1 - fraction);
    svg.append(el("line", { x1: pad.left, x2: width - pad.right, y1: y, y2: y, class: "grid" }));
    svg.append(
      el("text", { x: pad.left - 6, y: y + 4, class: "axis", "text-anchor": "end" }, Math.round(peak * fraction)),
    );
  }
  bins.forEach((bin, i) => {
    const x = pad.left + i * barW + 2;
    const w = barW - 4;
    const okH = (plotH * (bin.total - bin.failed)) / peak;
    const badH = (plotH * bin.failed) / peak;
    const label = new Date(start + i * HOUR);
    const title = `${label.getHours()}:00 — ${bin.total} deliveries, ${bin.failed} failed`;
    const group = el("g", {});
    group.append(el("title", {}, title));
    if (bin.total === 0) {
      group.append(el("rect", { x, y: pad.top + plotH - 1, width: w, height: 1, class: "empty" }));
    }
    if (okH > 0) {
      group.append(el("rect", { x, y: pad.top + plotH - okH - badH, width: w, height: okH, class: "ok", rx: 2 }));
    }
    if (badH > 0) {
      group.append(el("rect", { x, y: pad.top + plotH - badH, width: w, height: badH, class: "bad", rx: 2 }));
    }
    svg.append(group);
    if (i % 4 === 0) {
      const hh = String(label.getHours()).padStart(2, "0");
      svg.append(el("text", { x: x + w / 2, y: height - 6, class: "axis", "text-anchor": "middle" }, `${hh}:00`));
    }
  });
  return svg;
}
