// Live progress of running exports on the Exports page: poll each one's JSON status URL, move its bar,
// and reload the page once it has finished (the row then shows its row count and download link).
"use strict";

const POLL_MS = 1000;
const TERMINAL = new Set(["completed", "failed", "errored", "cancelled"]);

function watch(bar) {
  const label = bar.parentElement.querySelector("[data-export-progress]");
  const fill = bar.querySelector(".progress-bar");
  const poll = async () => {
    let status;
    try {
      const response = await fetch(bar.dataset.exportStatusUrl, { headers: { Accept: "application/json" } });
      if (!response.ok) {
        throw new Error(`status ${response.status}`);
      }
      status = await response.json();
    } catch (error) {
      label.textContent = "Progress unavailable; retrying…";
      window.setTimeout(poll, POLL_MS * 3);
      return;
    }
    const percent = status.total ? Math.min(100, Math.round((100 * status.processed) / status.total)) : 0;
    fill.style.width = `${percent}%`;
    bar.setAttribute("aria-valuenow", String(percent));
    label.textContent = status.total === null ? status.status : `${status.processed} of ${status.total} rows`;
    if (TERMINAL.has(status.status)) {
      window.location.reload();
      return;
    }
    window.setTimeout(poll, POLL_MS);
  };
  poll();
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-export-status-url]").forEach(watch);
});
