// The results browser's table (report/html.rs): COLUMNS and RUNS come from index.html.
const exact = new Set(["family", "status"]);
// A cell's text as HTML text: what a formatter returns becomes markup.
const esc = (v) => String(v ?? "").replace(/[&<>"']/g,
  (ch) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[ch]);
// A number as the table shows it: 4 significant digits, no trailing zeros.
const shown = (v) => Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(4)));
for (const c of COLUMNS) {
  if (c.formatter === "run") {
    c.formatter = (cell) => cell.getData().has_page
      ? `<a href="${esc(cell.getValue())}/index.html">${esc(cell.getValue())}</a>` : esc(cell.getValue());
    c.headerFilter = "input";
  } else if (c.formatter === "thumb") {
    c.formatter = (cell) => cell.getData().has_samples
      ? `<img class="thumb" loading="lazy" src="${esc(cell.getValue())}/samples.png" alt="samples">` : "";
  } else if (RUNS.some((r) => typeof r[c.field] === "number")) {
    // Numbers: shown to 4 significant digits, filtered by "1.5", ">1.5", "<=0.01".
    c.sorter = "number";
    c.formatter = (cell) => { const v = cell.getValue();
      return typeof v === "number" ? shown(v) : esc(v); };
    c.headerFilter = "input";
    c.headerFilterFunc = (want, value) => {
      if (typeof value !== "number") return false;
      const m = want.trim().match(/^(<=|>=|<|>|=)?\s*(-?[0-9.e+-]+)$/);
      if (!m) return false;
      const x = Number(m[2]);
      switch (m[1]) {
        case "<": return value < x; case ">": return value > x;
        case "<=": return value <= x; case ">=": return value >= x;
        default: return value === x || shown(value) === m[2];
      }
    };
  } else {
    c.headerFilter = "input";
    c.headerFilterFunc = (want, value) => exact.has(c.field)
      ? String(value) === want.trim() : String(value ?? "").includes(want);
  }
}
window.runsTable = new Tabulator("#runs", {
  data: RUNS, columns: COLUMNS, height: "65vh", layout: "fitDataFill",
  renderVertical: "virtual", index: "run_id",
});
const count = () => { document.getElementById("shown").textContent =
  `${window.runsTable.getDataCount("active")} of ${RUNS.length} runs shown`; };
window.runsTable.on("dataFiltered", () => setTimeout(count));
window.runsTable.on("tableBuilt", count);
