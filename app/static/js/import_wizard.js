// The import wizard's behaviour: drag-and-drop upload with a progress bar, and polling of the import's JSON status
// while it is validated or run. No framework and no inline script (the CSP forbids it); pages work without it too.
"use strict";

(() => {
  const BUSY = new Set(["validating", "queued", "running", "undoing"]);
  const POLL_FIRST_MS = 400;
  const POLL_MAX_MS = 5000;
  const POLL_ERROR_MAX_MS = 15000;
  const LEAVE_AFTER_MS = 1200;

  function megabytes(bytes) {
    return `${(bytes / 1048576).toFixed(bytes < 10485760 ? 1 : 0)} MB`;
  }

  function setBar(bar, percent) {
    if (!bar) return;
    const value = Math.max(0, Math.min(100, Math.round(percent)));
    const fill = bar.querySelector("[data-progress-fill]");
    bar.setAttribute("aria-valuenow", String(value));
    fill.style.width = `${value}%`;
    fill.textContent = `${value}%`;
    fill.classList.toggle("progress-bar-animated", value > 0 && value < 100);
  }

  function showErrors(box, messages) {
    box.replaceChildren(...messages.map((text) => {
      const line = document.createElement("div");
      line.textContent = text;
      return line;
    }));
    box.classList.toggle("d-none", messages.length === 0);
  }

  // --- step 2: drop or pick a file, upload it with XMLHttpRequest (fetch has no upload progress) --------------
  function initUpload(form) {
    const zone = form.querySelector("[data-drop-zone]");
    const input = form.querySelector("[data-file-input]");
    const errors = form.querySelector("[data-upload-errors]");
    const progress = form.querySelector("[data-upload-progress]");
    const bar = progress.querySelector("[data-progress-bar]");
    const nameLine = form.querySelector("[data-file-name]");
    const maxBytes = Number(form.dataset.maxBytes);
    let uploading = false;

    function upload(file) {
      if (uploading) return;
      if (!file) {
        showErrors(errors, ["Choose a file to upload."]);
        return;
      }
      nameLine.textContent = `${file.name} (${megabytes(file.size)})`;
      if (maxBytes && file.size > maxBytes) {
        showErrors(errors, [`${file.name} is ${megabytes(file.size)}; files can be at most ${megabytes(maxBytes)}.`]);
        return;
      }
      if (file.size === 0) {
        showErrors(errors, [`${file.name} is empty.`]);
        return;
      }
      showErrors(errors, []);
      uploading = true;
      progress.classList.remove("d-none");
      setBar(bar, 0);
      const data = new FormData();
      data.append("csrf_token", form.querySelector("input[name=csrf_token]").value);
      data.append("file", file, file.name);
      const request = new XMLHttpRequest();
      request.open("POST", form.action);
      request.setRequestHeader("Accept", "application/json");
      request.upload.addEventListener("progress", (event) => {
        if (event.lengthComputable) setBar(bar, (100 * event.loaded) / event.total);
      });
      request.addEventListener("load", () => {
        uploading = false;
        let body = {};
        try {
          body = JSON.parse(request.responseText);
        } catch (_) {
          body = {};
        }
        if (request.status === 201 && body.next) {
          setBar(bar, 100);
          window.location.assign(body.next);
          return;
        }
        progress.classList.add("d-none");
        if (request.status === 413) {
          showErrors(errors, [`${file.name} is larger than the limit of ${megabytes(maxBytes)}.`]);
        } else if (body.errors && body.errors.length) {
          showErrors(errors, body.errors);
        } else {
          showErrors(errors, [body.detail || `The upload failed (HTTP ${request.status}). Reload the page and try again.`]);
        }
      });
      request.addEventListener("error", () => {
        uploading = false;
        progress.classList.add("d-none");
        showErrors(errors, ["The connection was lost during the upload. Check your network and try again."]);
      });
      request.send(data);
    }

    ["dragenter", "dragover"].forEach((type) => {
      zone.addEventListener(type, (event) => {
        event.preventDefault();
        if (event.dataTransfer) event.dataTransfer.dropEffect = "copy";
        zone.classList.add("drag-over");
      });
    });
    zone.addEventListener("dragleave", (event) => {
      if (!zone.contains(event.relatedTarget)) zone.classList.remove("drag-over");
    });
    zone.addEventListener("drop", (event) => {
      event.preventDefault();
      zone.classList.remove("drag-over");
      const files = event.dataTransfer ? event.dataTransfer.files : [];
      if (files.length > 1) {
        showErrors(errors, ["Drop one file at a time."]);
        return;
      }
      upload(files[0]);
    });
    // Dropping beside the zone must not make the browser open the file instead of the wizard.
    ["dragover", "drop"].forEach((type) => document.addEventListener(type, (event) => event.preventDefault()));
    zone.addEventListener("click", (event) => {
      if (event.target === zone) input.click();
    });
    zone.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        input.click();
      }
    });
    input.addEventListener("change", () => upload(input.files[0]));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      upload(input.files[0]);
    });
  }

  // --- steps 5 and 6: poll the status URL, move the bar, go on when the work ends --------------------------------
  function describe(figures) {
    const done = figures.rows_done || 0;
    const total = figures.total || 0;
    return total ? `${done.toLocaleString()} of ${total.toLocaleString()} rows` : `${done.toLocaleString()} rows`;
  }

  function rate(figures) {
    const parts = [];
    if (figures.rows_per_second) parts.push(`${Math.round(figures.rows_per_second).toLocaleString()} rows/s`);
    if (figures.seconds_left !== null && figures.seconds_left !== undefined && BUSY.has(figures.status)) {
      const seconds = Math.max(0, Math.round(figures.seconds_left));
      parts.push(seconds >= 90 ? `about ${Math.round(seconds / 60)} min left` : `about ${seconds} s left`);
    }
    return parts.join(" · ");
  }

  function initPoll(box) {
    const bar = box.querySelector("[data-progress-bar]");
    const text = box.querySelector("[data-progress-text]");
    const rateLine = box.querySelector("[data-progress-rate]");
    let delay = POLL_FIRST_MS;
    let lastDone = -1;

    function finish(figures) {
      if (figures.status === "completed" || figures.status === "validated") setBar(bar, 100);
      text.textContent = `${describe(figures)} · ${figures.status}`;
      const target = box.dataset.pollDone;
      window.setTimeout(() => {
        if (target === "reload") window.location.reload();
        else window.location.assign(target);
      }, LEAVE_AFTER_MS);
    }

    async function poll() {
      let figures;
      try {
        const response = await fetch(box.dataset.pollUrl, {
          headers: { Accept: "application/json" },
          credentials: "same-origin",
        });
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        figures = await response.json();
      } catch (_) {
        delay = Math.min(delay * 2, POLL_ERROR_MAX_MS);
        if (rateLine) rateLine.textContent = "Lost contact with the server; retrying…";
        window.setTimeout(poll, delay);
        return;
      }
      const total = figures.total || 0;
      setBar(bar, total ? (100 * (figures.rows_done || 0)) / total : 0);
      text.textContent = describe(figures);
      if (rateLine) rateLine.textContent = rate(figures);
      if (!BUSY.has(figures.status)) {
        finish(figures);
        return;
      }
      // Back off while nothing moves (a queued job, a slow chunk); come back quickly once rows flow again.
      delay = figures.rows_done === lastDone ? Math.min(delay * 1.5, POLL_MAX_MS) : POLL_FIRST_MS;
      lastDone = figures.rows_done;
      window.setTimeout(poll, delay);
    }

    poll();
  }

  // --- step 4: show at once which columns are ignored and which required fields are still unmapped ----------------
  function initMapping(form) {
    const required = (form.dataset.required || "").split(",").filter(Boolean);
    const banner = document.querySelector("[data-missing-required]");
    const selects = Array.from(form.querySelectorAll("select[data-mapping-select]"));

    function refreshMissing() {
      const mapped = new Set(selects.map((select) => select.value).filter(Boolean));
      const missing = required.filter((name) => !mapped.has(name));
      if (!banner) return;
      banner.querySelector("[data-missing-list]").textContent = missing.join(", ");
      banner.classList.toggle("d-none", missing.length === 0);
    }

    selects.forEach((select) => {
      const row = select.closest("[data-mapping-row]");
      select.addEventListener("change", () => {
        const ignored = select.value === "";
        row.classList.toggle("table-light", ignored);
        row.classList.toggle("text-muted", ignored);
        row.querySelector("td:last-child").textContent = ignored ? "ignored" : "your choice";
        refreshMissing();
      });
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("[data-progress-fill][data-percent]").forEach((fill) => {
      fill.style.width = `${Number(fill.dataset.percent) || 0}%`;
    });
    document.querySelectorAll("form[data-upload-form]").forEach(initUpload);
    document.querySelectorAll("[data-poll-url]").forEach(initPoll);
    document.querySelectorAll("form[data-required]").forEach(initMapping);
  });
})();
