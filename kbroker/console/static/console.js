// kbroker console: the little that needs a script.  Reads only the console's JSON
// endpoints and writes only text (textContent) and SVG point lists: nothing it
// receives is ever inserted as HTML.
"use strict";

function pollJson(url, intervalMs, onData) {
  let stopped = false;
  async function tick() {
    if (stopped) return;
    try {
      const response = await fetch(url, { cache: "no-store", headers: { Accept: "application/json" } });
      if (response.ok) onData(await response.json());
    } catch (err) {
      // the broker may be restarting: keep polling
    }
    setTimeout(tick, intervalMs);
  }
  tick();
  return () => { stopped = true; };
}

// -- group page: lag per partition and in total ------------------------------------------
function startGroupPolling(root) {
  const group = root.dataset.group;
  const intervalMs = Number(root.dataset.pollMs) || 2000;
  const rows = new Map();
  for (const row of root.querySelectorAll("#offsets tr[data-topic]")) {
    rows.set(row.dataset.topic + "\u0000" + row.dataset.partition, row);
  }
  pollJson("/api/group?id=" + encodeURIComponent(group), intervalMs, (data) => {
    document.getElementById("total-lag").textContent = String(data.total_lag);
    document.getElementById("group-state").textContent = data.state;
    document.getElementById("group-members").textContent = String(data.members);
    document.getElementById("group-protocol").textContent = data.protocol;
    document.getElementById("group-generation").textContent = String(data.generation);
    renderMembers(root.querySelector("#members tbody"), data.member_list);
    for (const p of data.partitions) {
      const row = rows.get(p.topic + "\u0000" + p.partition);
      if (!row) continue;
      row.querySelector(".committed").textContent = String(p.committed_offset);
      row.querySelector(".hw").textContent = p.high_watermark === null ? "-" : String(p.high_watermark);
      row.querySelector(".lag").textContent = p.lag === null ? "-" : String(p.lag);
    }
    document.getElementById("lag-updated").textContent = "Updated " + new Date().toLocaleTimeString() + ".";
  });
}

function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = text;
  row.appendChild(td);
  return td;
}

function renderMembers(tbody, members) {
  const rows = [];
  for (const m of members) {
    const row = document.createElement("tr");
    cell(row, m.group_instance_id ? m.member_id + " (" + m.group_instance_id + ")" : m.member_id);
    cell(row, m.client_id);
    cell(row, m.client_host);
    const assigned = cell(row, m.assignment.length ? "" : "-");
    m.assignment.forEach(([topic, partitions], i) => {
      if (i) assigned.appendChild(document.createTextNode("; "));
      if (!topic) {
        assigned.appendChild(document.createTextNode("(not decodable)"));
        return;
      }
      const link = document.createElement("a");
      link.href = "/topic?name=" + encodeURIComponent(topic);
      link.textContent = topic;
      assigned.appendChild(link);
      assigned.appendChild(document.createTextNode(": " + partitions.join(", ")));
    });
    rows.push(row);
  }
  if (!rows.length) {
    const row = document.createElement("tr");
    cell(row, "No active members.").colSpan = 4;
    rows.push(row);
  }
  tbody.replaceChildren(...rows);
}

// -- overview: throughput charts from successive cumulative samples -----------------------
function humanRate(value, unit) {
  if (unit === "B/s") {
    const units = ["B/s", "KiB/s", "MiB/s", "GiB/s"];
    let i = 0;
    while (value >= 1024 && i < units.length - 1) { value /= 1024; i++; }
    return value.toFixed(i ? 1 : 0) + " " + units[i];
  }
  return value.toFixed(value < 10 ? 1 : 0) + " " + unit;
}

function startCharts(root) {
  const intervalMs = Number(root.dataset.pollMs) || 1000;
  const maxPoints = Number(root.dataset.points) || 60;
  const charts = [...root.querySelectorAll("figure.chart")].map((figure) => ({
    series: figure.dataset.series,
    unit: figure.dataset.unit,
    line: figure.querySelector("polyline"),
    current: figure.querySelector(".current"),
    rates: [],
  }));
  let previous = null;
  pollJson("/api/throughput", intervalMs, (sample) => {
    const connections = document.getElementById("connections");
    if (connections) connections.textContent = String(sample.connections);
    if (previous !== null && sample.time_ms > previous.time_ms) {
      const seconds = (sample.time_ms - previous.time_ms) / 1000;
      for (const chart of charts) {
        const rate = Math.max(0, (sample[chart.series] - previous[chart.series]) / seconds);
        chart.rates.push(rate);
        if (chart.rates.length > maxPoints) chart.rates.shift();
        draw(chart, maxPoints);
        chart.current.textContent = humanRate(rate, chart.unit);
      }
    }
    previous = sample;
  });
}

function draw(chart, maxPoints) {
  const top = Math.max(1, ...chart.rates);
  const step = 300 / Math.max(1, maxPoints - 1);
  const offset = maxPoints - chart.rates.length;
  chart.line.setAttribute(
    "points",
    chart.rates.map((r, i) => ((offset + i) * step).toFixed(1) + "," + (98 - (r / top) * 94).toFixed(1)).join(" "),
  );
}

document.addEventListener("DOMContentLoaded", () => {
  const group = document.getElementById("group");
  if (group) startGroupPolling(group);
  const throughput = document.getElementById("throughput");
  if (throughput) startCharts(throughput);
});
